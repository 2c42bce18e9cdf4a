"""Evaluation, promotion, model-drift watch and model retention."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from conveyor.config.base import Section


class ModelDriftConfig(Section):
    enabled: bool = Field(True, description="Watch the production model's prequential error.")
    delta: float = Field(
        0.05, ge=0, description="Page-Hinkley: tolerated rise of the relative error per batch."
    )
    threshold: float = Field(
        0.5, gt=0, description="Page-Hinkley: alarm when the cumulative rise exceeds this."
    )
    min_batches: int = Field(1, ge=1, description="Batches scored before an alarm may fire.")
    policy: Literal["evidence", "retrain", "widen_search", "rollback"] = Field(
        "evidence",
        description="On alarm: evidence: compare candidate training windows on the newest rows "
        "and keep the best (as drift.on_alarm: evidence); retrain: retrain on the newest "
        "retrain_batches only; widen_search: also try every family with its default grid; "
        "rollback: return to the previous production.",
    )
    retrain_batches: int = Field(
        2, ge=1, description="retrain: how many of the newest batches the new window starts with."
    )


class ValidateConfig(Section):
    scheme: Literal["holdout", "kfold", "timeseries"] = Field(
        "holdout",
        description="holdout: the newest part of the window; kfold: contiguous unshuffled "
        "blocks; timeseries: expanding folds, each tested on the block after it.",
    )
    holdout_share: float = Field(
        0.25, gt=0, lt=1,
        description="Share of the newest rows held out when there is no production model yet.",
    )
    n_splits: int = Field(3, ge=2, description="Folds of the kfold and timeseries schemes.")
    metric: str | None = Field(
        None, description="Selection metric; null means mae (regression) or f1 (classification)."
    )
    promotion_margin: float = Field(
        0.0, ge=0, description="Relative improvement over production a challenger needs."
    )
    model_drift: ModelDriftConfig = Field(default_factory=ModelDriftConfig,
                                          description="Model-drift detection and handling.")
    max_latency_ms: float = Field(
        2000.0, gt=0,
        description="A challenger must predict 1,000 rows within this many milliseconds.",
    )


class RegistryConfig(Section):
    keep_versions: int = Field(
        20, ge=0,
        description="Model files kept besides production, its predecessor and staging; older "
        "candidate/archived versions lose their files (rows and lineage stay).",
    )
    keep_reports: int = Field(
        5, ge=1, description="Summaries (HTML with its Markdown and JSON) kept in the "
        "workspace's reports folder; older ones are deleted when a new one is written.",
    )
