"""The whole ``conveyor.yaml``: every section, and the checks that span sections."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, create_model, model_validator

from conveyor.config.base import Section
from conveyor.config.columns import ColumnsConfig, FeaturesConfig, TargetConfig, positive_span
from conveyor.config.drift import DriftConfig, DriftSection, drift_section
from conveyor.config.quality import CleanConfig, QualityConfig
from conveyor.config.serve import LockConfig, ServeConfig, StoreConfig
from conveyor.config.source import EnrichConfig, SourceConfig, StreamConfig, span_seconds
from conveyor.config.train import ComputeConfig, PrepareConfig, TrainConfig
from conveyor.config.validate import RegistryConfig, ValidateConfig

REGRESSION_METRICS = ("mae", "rmse", "r2")
CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")


class Config(Section):
    workspace: Path = Field(Path("workspace"), description="State folder, relative to the config.")
    seed: int = Field(42, description="Seed for every random choice.")
    source: SourceConfig = Field(..., description="The primary table: the stream.")
    enrich: list[EnrichConfig] = Field(
        default_factory=list, description="Secondary tables joined to each batch."
    )
    target: TargetConfig = Field(..., description="What to predict.")
    columns: ColumnsConfig = Field(default_factory=ColumnsConfig,
                                   description="Which columns are features.")
    stream: StreamConfig = Field(default_factory=StreamConfig,
                                 description="How the source is cut into batches.")
    drift: DriftConfig = Field(default_factory=DriftConfig,
                               description="Data drift against the reference window.")
    quality: QualityConfig = Field(default_factory=QualityConfig,
                                   description="Thresholds of the data-quality gate.")
    clean: CleanConfig = Field(default_factory=CleanConfig,
                               description="Cleaning before training.")
    features: FeaturesConfig = Field(default_factory=FeaturesConfig,
                                     description="Feature engineering (part of the model).")
    prepare: PrepareConfig = Field(default_factory=PrepareConfig,
                                   description="Preprocessing of features.")
    train: TrainConfig = Field(default_factory=TrainConfig,
                               description="Training window and model families.")
    validate_: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate",
                                      description="Evaluation scheme, metric, promotion.")
    registry: RegistryConfig = Field(default_factory=RegistryConfig,
                                     description="Model retention.")
    serve: ServeConfig = Field(default_factory=ServeConfig, description="Inference output.")
    lock: LockConfig = Field(default_factory=LockConfig, description="The writer lock.")
    store: StoreConfig = Field(default_factory=StoreConfig,
                               description="Where the metadata database lives.")
    compute: ComputeConfig = Field(default_factory=ComputeConfig,
                                   description="Parallelism of the search: local or Dask.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _derived_target_source_is_not_a_feature(cls, data: Any) -> Any:
        target = data.get("target") if isinstance(data, dict) else None
        derive = target.get("derive") if isinstance(target, dict) else None
        if isinstance(derive, dict) and derive.get("source"):
            columns = dict(data.get("columns") or {})
            exclude = list(columns.get("exclude") or [])
            if derive["source"] not in exclude:
                columns["exclude"] = [*exclude, derive["source"]]
            data = {**data, "columns": columns}
        return data

    @model_validator(mode="after")
    def _metric_fits_task(self) -> Config:
        allowed = (
            REGRESSION_METRICS if self.target.task == "regression" else CLASSIFICATION_METRICS
        )
        if self.validate_.metric is not None and self.validate_.metric not in allowed:
            raise ValueError(
                f"validate.metric '{self.validate_.metric}' does not fit task "
                f"'{self.target.task}'; choose from {list(allowed)}"
            )
        roles = {self.target.column, self.source.time_column}
        if self.columns.features and roles & set(self.columns.features):
            raise ValueError("columns.features must not contain the target or the time column")
        return self

    @model_validator(mode="after")
    def _history_sees_only_known_labels(self) -> Config:
        target = self.target.column
        label_delay = self.target.label_delay or self.stream.window
        if not positive_span(label_delay):
            raise ValueError(f"target.label_delay '{label_delay}' is not a positive time span "
                             "such as 7D or 12h")
        known = span_seconds(label_delay)
        names = [h.output for h in self.features.history]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"features.history: two features are named {repeated}; give "
                             "each a distinct name")
        for spec in self.features.history:
            where = f"features.history '{spec.output}'"
            if spec.output in (target, self.source.time_column):
                raise ValueError(f"{where}: the name is the target's or the time column's")
            if target in spec.by or self.target.source_column in spec.by:
                raise ValueError(f"{where}: the target cannot be a key (by)")
            if spec.column not in (target, self.target.source_column):
                continue
            reach = spec.lag if spec.lag is not None else spec.delay
            if reach is not None and span_seconds(reach) < known:
                raise ValueError(
                    f"{where}: the target is known only {label_delay} after a row's time "
                    f"(target.label_delay), so its {'lag' if spec.lag else 'delay'} "
                    f"{reach} would read labels not known yet; use at least {label_delay}")
        return self

    @model_validator(mode="after")
    def _variants_fit_families(self) -> Config:
        from conveyor.train.families import FAMILIES

        variants = self.prepare.variants
        for name, family in self.train.families.items():
            if not family.enabled:
                continue
            spec = FAMILIES[name]
            for variant in family.variants or spec.variants:
                if variant not in variants:
                    raise ValueError(
                        f"train.families.{name}.variants: '{variant}' is not defined in "
                        f"prepare.variants; defined: {sorted(variants)}"
                    )
                chosen = variants[variant]
                leaves_nan = chosen.numeric_impute == "none" or chosen.categorical == "native"
                if leaves_nan and not spec.takes_nan:
                    raise ValueError(
                        f"train.families.{name}: variant '{variant}' leaves missing values or "
                        f"raw category codes in, which {name} cannot take; pair it with a "
                        "variant that imputes and encodes (e.g. onehot)"
                    )
        return self

    @property
    def metric(self) -> str:
        if self.validate_.metric:
            return self.validate_.metric
        return "mae" if self.target.task == "regression" else "f1"

    def digest(self) -> str:
        """Return a short hash of the effective configuration (for model lineage)."""
        text = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.cache
def _model(drift: type[DriftSection]) -> type[Config]:
    if drift is DriftConfig:
        return Config
    return create_model("Config", __base__=Config, __module__=__name__, __doc__=Config.__doc__,
                        drift=(drift, Field(default_factory=drift,
                                            description=Config.model_fields["drift"].description)))


def config_model() -> type[Config]:
    """The model configs are validated with: :class:`Config`, or (after a drift method was
    registered at run time) a subclass whose ``drift`` section has that method's keys."""
    return _model(drift_section())
