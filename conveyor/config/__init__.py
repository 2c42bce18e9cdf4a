"""Typed configuration: every knob of every stage, read from ``conveyor.yaml``.

The file is parsed once, at the edge (CLI or API), into these pydantic models.
Stages receive the slice they need. Unknown keys are errors, so a typo never
silently falls back to a default.

One module per group of sections: ``source`` (the stream and its tables),
``columns`` (target, features), ``quality`` and ``drift`` (the analyze stage),
``train``, ``validate``, ``serve`` (and the store and lock), ``root`` (the whole
file) and ``loader`` (reading and validating it).
"""

from conveyor.config.base import Section
from conveyor.config.columns import (
    ColumnsConfig,
    DerivedFeature,
    FeaturesConfig,
    HistoryFeature,
    TargetConfig,
    TargetDerive,
)
from conveyor.config.drift import DriftConfig, DriftSection, drift_section
from conveyor.config.loader import MAX_CONFIG_BYTES, load_config, parse_config
from conveyor.config.quality import CleanConfig, QualityConfig, Threshold
from conveyor.config.root import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    Config,
    config_model,
)
from conveyor.config.serve import BatchConfig, LockConfig, RoutingConfig, ServeConfig, StoreConfig
from conveyor.config.source import (
    CsvOptions,
    EnrichConfig,
    SourceConfig,
    StreamConfig,
    TableConfig,
)
from conveyor.config.train import (
    ComputeConfig,
    FamilyConfig,
    PrepareConfig,
    SearchConfig,
    TrainConfig,
    VariantConfig,
    default_families,
    default_variants,
)
from conveyor.config.validate import ModelDriftConfig, RegistryConfig, ValidateConfig

__all__ = [
    "CLASSIFICATION_METRICS", "MAX_CONFIG_BYTES", "REGRESSION_METRICS",
    "BatchConfig", "CleanConfig", "ColumnsConfig", "ComputeConfig", "Config", "CsvOptions",
    "DerivedFeature", "DriftConfig", "DriftSection", "EnrichConfig", "FamilyConfig",
    "FeaturesConfig", "HistoryFeature", "LockConfig", "ModelDriftConfig", "PrepareConfig",
    "QualityConfig", "RegistryConfig", "RoutingConfig",
    "SearchConfig", "Section", "ServeConfig", "SourceConfig", "StoreConfig", "StreamConfig",
    "TableConfig", "TargetConfig", "TargetDerive", "Threshold", "TrainConfig", "ValidateConfig",
    "VariantConfig", "config_model", "default_families", "default_variants", "drift_section",
    "load_config", "parse_config",
]
