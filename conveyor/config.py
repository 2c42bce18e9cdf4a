"""Typed configuration: every knob of every stage, read from ``conveyor.yaml``.

The file is parsed once, at the edge (CLI or API), into these pydantic models.
Stages receive the slice they need. Unknown keys are errors, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from conveyor.errors import ConfigError
from conveyor.io.userfiles import check_regular_file

log = logging.getLogger(__name__)

REGRESSION_METRICS = ("mae", "rmse", "r2")
CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CsvOptions(Section):
    delimiter: str = Field(",", description="Field separator, e.g. ',' ';' or '\\t' for TSV.")
    encoding: str = Field("utf-8", description="Text encoding of the file.")
    decimal: str = Field(".", description="Decimal mark of numbers.")


class TableConfig(Section):
    """Where a table lives: a file (CSV/TSV, Parquet, Excel) or a SQL table or query."""

    kind: Literal["csv", "parquet", "excel", "sql"] = Field(
        "csv", description="csv | parquet | excel | sql (SQLAlchemy URL or SQLite file)."
    )
    path: Path | None = Field(
        None, description="The file (relative to the config's folder); for sql, a SQLite file."
    )
    url: str | None = Field(
        None, description="sql: a SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db."
    )
    table: str | None = Field(None, description="sql: the table to read.")
    query: str | None = Field(None, description="sql: a SELECT to run instead of a table.")
    csv: CsvOptions = Field(default_factory=CsvOptions, description="CSV/TSV reading options.")
    sheet: str | int = Field(0, description="Excel sheet name or index.")

    @model_validator(mode="after")
    def _located(self) -> TableConfig:
        self._check_location()
        return self

    def _check_location(self) -> None:
        if self.kind == "sql":
            if (self.url is None) == (self.path is None):
                raise ValueError("a sql source needs exactly one of 'url' or 'path' (SQLite)")
            if (self.table is None) == (self.query is None):
                raise ValueError("a sql source needs exactly one of 'table' or 'query'")
        elif self.path is None:
            raise ValueError(f"a {self.kind} source needs 'path'")


class SourceConfig(TableConfig):
    kind: Literal["csv", "parquet", "excel", "sql", "inbox"] = Field(  # type: ignore[assignment]
        "csv",
        description="csv | parquet | excel | sql, or inbox: a folder where new files arrive.",
    )
    time_column: str = Field(..., description="Column with the event time; windows are cut on it.")
    pattern: str = Field("*", description="inbox: glob of the files to pick up, e.g. '*.csv'.")

    @model_validator(mode="after")
    def _located(self) -> SourceConfig:
        if self.kind == "inbox":
            if self.path is None:
                raise ValueError("an inbox source needs 'path' (the folder files arrive in)")
            return self
        self._check_location()
        return self


class EnrichConfig(TableConfig):
    """A secondary table joined to every batch by key (and as of time, when set)."""

    name: str = Field(..., description="A name for logs and events.")
    keys: list[str] = Field(..., min_length=1, description="Key columns present in both tables.")
    time_column: str | None = Field(
        None, description="As-of join: the secondary table's time column (nearest earlier row)."
    )
    stream_time_column: str | None = Field(
        None, description="The stream's column to match on time; null means source.time_column."
    )
    tolerance: str | None = Field(
        None, description="As-of join: the oldest match allowed, a pandas offset such as 1h."
    )
    columns: list[str] | None = Field(
        None, description="Columns to add; null means all but the keys and time."
    )
    prefix: str = Field("", description="Prefix for the added columns (avoids name clashes).")


class TargetDerive(Section):
    source: str = Field(..., description="Column the target is computed from; it is never a "
                        "feature (it would leak the answer).")
    op: Literal["gt", "ge", "lt", "le", "eq", "ne", "in"] = Field(
        ..., description="Comparison of `source` with `value`: gt, ge, lt, le, eq, ne, in."
    )
    value: float | str | list[float | str] = Field(..., description="What `source` is compared "
                                                   "with (a list for `in`).")
    labels: tuple[str, str] = Field(("yes", "no"), description="Class names when the "
                                    "comparison holds / does not hold.")


class TargetConfig(Section):
    column: str = Field(..., description="Column to predict.")
    task: Literal["regression", "classification"] = Field(
        "regression", description="Kind of prediction."
    )
    derive: TargetDerive | None = Field(
        None, description="Compute the target from another column (e.g. delayed = arr_delay "
        "> 15) when batches are read; the raw batch stays as the source wrote it."
    )

    @property
    def source_column(self) -> str:
        """The column the source must have: the target, or what it is derived from."""
        return self.derive.source if self.derive else self.column


class ColumnsConfig(Section):
    features: list[str] | None = Field(
        None, description="Feature columns; null means every column but target, time and exclude."
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Columns never used as features (ids, values known only after the fact).",
    )
    categorical: list[str] | None = Field(
        None,
        description="Numeric-looking columns to treat as categories (codes); text columns "
        "always are.",
    )


class DerivedFeature(Section):
    name: str = Field(..., description="Name of the new column.")
    op: Literal["diff", "ratio", "log1p", "clip", "frequency"] = Field(
        ..., description="diff: a - b; ratio: a / b; log1p: sign(a)·log(1+|a|); clip: a to "
        "[lower, upper]; frequency: share of a's level in the training window."
    )
    columns: list[str] = Field(..., min_length=1, max_length=2, description="Input columns.")
    lower: float | None = Field(None, description="clip: lower bound.")
    upper: float | None = Field(None, description="clip: upper bound.")

    @model_validator(mode="after")
    def _arity(self) -> DerivedFeature:
        needed = 2 if self.op in ("diff", "ratio") else 1
        if len(self.columns) != needed:
            raise ValueError(f"op '{self.op}' takes {needed} column(s), got {self.columns}")
        return self


class FeaturesConfig(Section):
    calendar: list[Literal["hour", "weekday", "month", "day", "weekend", "holiday"]] = Field(
        default_factory=list,
        description="Parts of source.time_column to add as features (holiday: US federal).",
    )
    timezone: str = Field("UTC", description="IANA time zone the calendar parts are read in.")
    derived: list[DerivedFeature] = Field(
        default_factory=list, description="Columns computed from other columns."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'; use an IANA name such as "
                             "America/New_York") from None
        return value


class StreamConfig(Section):
    window: str = Field("7D", description="Pandas offset of one batch window, e.g. 7D, 1D, 12h.")
    rows: int | None = Field(
        None, ge=1, description="Batches of this many rows instead of time windows; null: windows."
    )
    initial_batches: int = Field(
        1, ge=1, description="Windows ingested by the first update before the first training."
    )

    @field_validator("window")
    @classmethod
    def _valid_offset(cls, value: str) -> str:
        import pandas as pd

        try:
            delta = pd.Timedelta(pd.tseries.frequencies.to_offset(value))  # type: ignore[arg-type]
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"'{value}' is not a fixed pandas offset such as 7D, 1D or 12h"
            ) from exc
        if delta <= pd.Timedelta(0):
            raise ValueError("the window must be positive")
        return value


class Threshold(Section):
    """A check's limits: above ``warn`` it warns, above ``fail`` it fails."""

    warn: float = Field(..., ge=0, description="Warn above this value.")
    fail: float = Field(..., ge=0, description="Fail above this value.")

    @model_validator(mode="after")
    def _ordered(self) -> Threshold:
        if self.warn > self.fail:
            raise ValueError(f"warn ({self.warn}) must not exceed fail ({self.fail})")
        return self


QUARANTINE_CHECKS = ("rows", "duplicate_share", "missing_target_share", "missing_columns",
                     "type_violation_share", "out_of_range_share", "unseen_category_share",
                     "missing_share", "outlier_share")


class DriftConfig(Section):
    enabled: bool = Field(True, description="Compare each batch with the reference window "
                          "(the production model's training batches).")
    numeric_method: Literal["ks", "wasserstein", "psi", "js"] = Field(
        "ks", description="Deciding method for numbers: Kolmogorov-Smirnov, Wasserstein "
        "(in reference IQRs), population stability index, Jensen-Shannon distance."
    )
    categorical_method: Literal["chi2", "psi", "js"] = Field(
        "chi2", description="Deciding method for categories: chi-square, PSI, Jensen-Shannon."
    )
    alpha: float = Field(0.01, gt=0, lt=1, description="ks/chi2: p-value below which a "
                         "column may have drifted ...")
    min_effect: float = Field(0.1, ge=0, description="... if its effect (KS D, Cramer's V) "
                              "also exceeds this; p alone flags trivial shifts on big batches.")
    psi_threshold: float = Field(0.2, gt=0, description="psi: drifted above this.")
    js_threshold: float = Field(0.1, gt=0, le=1, description="js: drifted above this.")
    wasserstein_threshold: float = Field(0.1, gt=0, description="wasserstein: drifted above "
                                         "this many reference IQRs.")
    share_threshold: float = Field(0.3, gt=0, le=1, description="Dataset alarm: share of "
                                   "features that drifted.")
    bins: int = Field(20, ge=4, le=200, description="Quantile bins per numeric column, fixed "
                      "from the first batch so profiles of any batches can be merged.")
    on_alarm: Literal["reset", "retrain", "ignore"] = Field(
        "reset", description="On a dataset alarm: reset (refit production's configuration on "
        "a window that starts at the drift point; the window grows again from there, and the "
        "reference moves with the new production model), retrain (refit on the usual window "
        "instead of an incremental update), or ignore (record only)."
    )
    reset_batches: int = Field(1, ge=1, description="reset: batches kept in the training "
                               "window, the drifted one included (1: start at the drift point).")


class QualityConfig(Section):
    min_rows: int = Field(20, ge=1, description="Fewer rows than this fails the batch.")
    missing_share: Threshold = Field(
        Threshold(warn=0.2, fail=0.5),
        description="Per feature: share of missing values (a failing feature is left out of "
        "training on that window).",
    )
    duplicate_share: Threshold = Field(
        Threshold(warn=0.01, fail=0.2), description="Share of rows repeating an earlier row."
    )
    missing_target_share: Threshold = Field(
        Threshold(warn=0.1, fail=0.5), description="Share of rows without a target."
    )
    type_violation_share: Threshold = Field(
        Threshold(warn=0.0, fail=0.05),
        description="Per numeric feature: share of values that are not numbers.",
    )
    out_of_range_share: Threshold = Field(
        Threshold(warn=0.01, fail=0.3),
        description="Per numeric feature: share outside quality.ranges (enforced by "
        "clean.out_of_range) or else the reference's range + margin (reported only).",
    )
    outlier_share: Threshold = Field(
        Threshold(warn=0.05, fail=0.5),
        description="Per numeric feature: share beyond the reference quartiles ± iqr_k·IQR.",
    )
    unseen_category_share: Threshold = Field(
        Threshold(warn=0.01, fail=0.5),
        description="Per categorical feature: share of levels the reference never saw.",
    )
    range_margin: float = Field(
        0.1, ge=0, description="Learned ranges are widened by this share of their width."
    )
    iqr_k: float = Field(3.0, gt=0, description="Outlier fence in interquartile ranges.")
    ranges: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="Fixed valid ranges per column, e.g. {age: [0, 120]}."
    )
    quarantine_on: list[str] = Field(
        default_factory=lambda: ["rows", "duplicate_share", "missing_target_share",
                                 "missing_columns"],
        description="Checks whose failure quarantines the whole batch; other failures are "
        "cleaned.",
    )

    @field_validator("quarantine_on")
    @classmethod
    def _known_checks(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(QUARANTINE_CHECKS))
        if unknown:
            raise ValueError(f"unknown check(s) {unknown}; choose from {list(QUARANTINE_CHECKS)}")
        return value


class CleanConfig(Section):
    drop_duplicates: bool = Field(True, description="Drop exact duplicate rows before training.")
    type_violations: Literal["coerce", "drop_rows"] = Field(
        "coerce", description="Values that are not numbers in a numeric feature: made missing "
        "(coerce) or their rows dropped."
    )
    out_of_range: Literal["clip", "drop_rows", "keep"] = Field(
        "clip", description="Values outside a range declared in quality.ranges: clipped to it, "
        "rows dropped, or kept."
    )
    drop_failed_columns: bool = Field(
        True, description="Leave features that fail missing_share out of training."
    )


class VariantConfig(Section):
    numeric_impute: Literal["median", "mean", "none"] = Field(
        "median", description="Missing numbers: filled with the median or mean, or left as NaN "
        "(none: only for families that take NaN natively: tree, forest, hgb)."
    )
    missing_indicators: bool = Field(
        False, description="Add a 0/1 column per numeric feature that had missing values."
    )
    scale: Literal["standard", "robust", "quantile", "none"] = Field(
        "standard", description="Scaling of numbers: z-score, median/IQR, quantile-to-normal, "
        "or none."
    )
    categorical: Literal["onehot", "ordinal", "target", "native"] = Field(
        "onehot", description="Categories: one-hot (rare levels grouped), ordinal codes, "
        "target encoding (cross-fitted), or native (ordinal codes, NaN kept, declared "
        "categorical to hgb)."
    )


def default_variants() -> dict[str, VariantConfig]:
    return {
        "onehot": VariantConfig(),
        "robust": VariantConfig(missing_indicators=True, scale="robust", categorical="target"),
        "native": VariantConfig(numeric_impute="none", scale="none", categorical="native"),
    }


class PrepareConfig(Section):
    max_categories: int = Field(
        30, ge=2, description="One-hot levels kept per categorical column; rarer ones are grouped."
    )
    min_frequency: int = Field(
        5, ge=1, description="A category seen fewer times than this is grouped as infrequent."
    )
    variants: dict[str, VariantConfig] = Field(
        default_factory=default_variants,
        description="Named preprocessing variants the search pairs with model families.",
    )


class FamilyConfig(Section):
    enabled: bool = Field(True, description="Whether the search tries this family.")
    grid: dict[str, list[Any]] = Field(
        default_factory=dict, description="Hyperparameter grid: estimator parameter -> values."
    )
    variants: list[str] | None = Field(
        None, description="Preprocessing variants to pair with this family; null: the "
        "family's default (onehot and robust for linear, sgd, knn; native for trees)."
    )


def default_families() -> dict[str, FamilyConfig]:
    return {
        "linear": FamilyConfig(grid={"alpha": [0.1, 1.0, 10.0]}),
        "knn": FamilyConfig(grid={"n_neighbors": [10, 30]}),
        "tree": FamilyConfig(grid={"max_depth": [6, 10], "min_samples_leaf": [20]}),
    }


class SearchConfig(Section):
    sampler: Literal["grid", "random"] = Field(
        "grid", description="grid: every combination; random: n_candidates drawn from the grid."
    )
    n_candidates: int = Field(
        20, ge=1, description="Random sampler: candidates drawn per update (across families)."
    )
    halving: bool = Field(
        False, description="Successive halving (factor 3): score every candidate on 1/9 (or "
        "1/27, ...) of each training split first (every 9th row, so the sample spans the "
        "split's whole period), the best third of them on three times more rows, and so on; "
        "at least two reach the full splits. Every rung is stored in the evaluations table."
    )
    warm_start: bool = Field(
        True, description="Budgeted search: once the meta-learner has shown on later batches "
        "that it can rank candidates, try its most promising first; false: cheapest first."
    )
    cost_tolerance: float = Field(
        0.0, ge=0.0, le=0.5, description="Take the best candidate of the cheapest family "
        "(linear, sgd, tree, knn, hgb, forest) among those whose score is within this "
        "relative distance of the best (0.01: 1%); a cheaper model is cheaper at every refit "
        "and prediction after. 0: the best score wins."
    )
    explore: float = Field(
        0.25, ge=0.0, le=1.0, description="Warm start: share of the search order given to "
        "candidates drawn at random from the rest (every 1/explore-th slot), so the "
        "meta-learner keeps seeing configurations it would not pick; 0: its order only."
    )


class ComputeConfig(Section):
    backend: Literal["local", "dask"] = Field(
        "local", description="Where the search runs: local processes (joblib) or a Dask cluster."
    )
    n_jobs: int = Field(1, description="Parallel candidate fits; -1 uses every core; with dask, "
                        "1 or -1 means one per worker.")
    threads: int | None = Field(
        1, ge=1, description="OpenMP/BLAS threads per process during update; null: the "
        "libraries' default (all cores). One is the safe choice: gradient boosting's spinning "
        "OpenMP threads slow down ~50x when the cores are shared (measured: a latency check "
        "took 3.7 s instead of 0.05 s per 1,000 rows)."
    )
    dask_address: str | None = Field(
        None, description="Dask scheduler address (tcp://host:8786); null starts a local "
        "cluster in this process."
    )


class TrainConfig(Section):
    window_batches: int = Field(
        8, ge=1, description="Sliding training window: the newest N accepted batches."
    )
    max_rows: int | None = Field(
        None, ge=100, description="Cap on training rows (newest kept); null means no cap."
    )
    sample_every: int = Field(
        1, ge=1, description="Train and validate on every N-th row of the window, counted "
        "back from the newest (a sample spread over the whole window), for fits N times "
        "cheaper; 1 uses every row. Prequential scores still use whole batches."
    )
    families: dict[str, FamilyConfig] = Field(
        default_factory=default_families,
        description="Model families to search: linear, sgd, knn, tree, forest, hgb.",
    )
    strategy: Literal["auto", "refit", "retrain", "incremental"] = Field(
        "auto", description="auto: update the production model incrementally when its family "
        "can and nothing drifted, else refit its configuration on the window; search all "
        "candidates for the first model, when production's error drifts (model drift) and "
        "every retrain_every batches; refit: like auto, but production's configuration is "
        "always refit on the window, never updated incrementally (a refit validated by "
        "production itself costs one fit); retrain: always search; incremental: like auto "
        "without the scheduled search."
    )
    retrain_every: int = Field(
        4, ge=1, description="auto: search all candidates at least every N accepted batches "
        "(one update each; the updates between are incremental or refits)."
    )
    knn_memory: int = Field(
        50_000, ge=100, description="kNN: rows kept in its time-ordered memory (newest kept)."
    )
    budget_seconds: float | None = Field(
        None, gt=0, description="Search time budget per update, successive halving's rungs "
        "included: no new candidate starts after it is spent; cheap and (by the "
        "meta-learner) promising candidates run first. null: no limit."
    )
    search: SearchConfig = Field(default_factory=SearchConfig,
                                 description="How candidates are drawn from the grids.")

    @field_validator("families")
    @classmethod
    def _known_families(cls, value: dict[str, FamilyConfig]) -> dict[str, FamilyConfig]:
        from conveyor.train.families import FAMILIES

        unknown = sorted(set(value) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown family {unknown}; choose from {sorted(FAMILIES)}")
        if not any(f.enabled for f in value.values()):
            raise ValueError("at least one family must be enabled")
        return value


class ModelDriftConfig(Section):
    enabled: bool = Field(True, description="Watch the production model's prequential error.")
    delta: float = Field(
        0.05, ge=0, description="Page-Hinkley: tolerated rise of the relative error per batch."
    )
    threshold: float = Field(
        0.5, gt=0, description="Page-Hinkley: alarm when the cumulative rise exceeds this."
    )
    min_batches: int = Field(1, ge=1, description="Batches scored before an alarm may fire.")
    policy: Literal["retrain", "widen_search", "rollback"] = Field(
        "retrain",
        description="On alarm: retrain on the newest retrain_batches only; widen_search: also "
        "try every family with its default grid; rollback: return to the previous production.",
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


class RoutingConfig(Section):
    enabled: bool = Field(True, description="Keep a robust fallback model beside the champion "
                          "and send unusual rows to it.")
    max_missing_share: float = Field(0.5, ge=0, le=1, description="Rows missing more than "
                                     "this share of features go to the fallback.")
    range_margin: float = Field(0.1, ge=0, description="Numbers outside the training range "
                                "widened by this share of its width go to the fallback.")
    unseen_categories: bool = Field(True, description="Rows with a category never seen in "
                                    "training go to the fallback.")
    anomaly: bool = Field(True, description="Rows an IsolationForest (fitted on the training "
                          "window) finds most isolated go to the fallback.")
    contamination: float = Field(0.005, gt=0, le=0.5, description="Share of training rows the "
                                 "IsolationForest treats as anomalous.")


class ServeConfig(Section):
    output_dir: Path | None = Field(
        None, description="Where inference writes; null means <workspace>/predictions."
    )
    routing: RoutingConfig = Field(default_factory=RoutingConfig,
                                   description="Flexible prediction: champion or fallback per row.")
    route_columns: bool = Field(False, description="Add `route` and `route_reason` columns to "
                                "inference output (and fields to API responses).")
    version_column: bool = Field(False, description="Add a `model_version` column to inference "
                                 "output (API responses always name the version).")
    max_latency_ms: float | None = Field(
        None, gt=0, description="Budget per 1,000 predicted rows; a slower inference call or "
        "API flush records a `latency_budget` warning event. null: no budget."
    )
    host: str = Field("127.0.0.1", description="API: address to listen on.")
    port: int = Field(8000, ge=1, le=65535, description="API: port.")
    max_body_bytes: int = Field(
        1_000_000, ge=1024, description="API: largest request body accepted (413 above)."
    )
    max_records: int = Field(10_000, ge=1, description="API: most records in one request.")
    reload_seconds: float = Field(
        2.0, gt=0, description="API: how often to look for a newly promoted model."
    )
    challenger_share: float = Field(
        0.0, ge=0, le=1,
        description="API: share of requests answered by the staging model (sticky by key).",
    )
    log_seconds: float = Field(
        5.0, gt=0, description="API: how often request figures are written to the database."
    )


class StoreConfig(Section):
    url: str | None = Field(
        None, description="Metadata database URL (e.g. postgresql+psycopg://user:pw@host/db); "
        "null: SQLite in <workspace>/conveyor.db."
    )
    raw_url: str | None = Field(
        None, description="Where raw batches are written: a folder (relative to the config) or "
        "an fsspec URL such as s3://bucket/conveyor/raw (needs that filesystem's package, e.g. "
        "s3fs); null: <workspace>/raw. Every process must reach it; batches already stored "
        "stay where the catalog says they are."
    )
    models_url: str | None = Field(
        None, description="Where model versions are written, as raw_url; null: "
        "<workspace>/models."
    )


class LockConfig(Section):
    timeout_seconds: float = Field(
        30, ge=0, description="How long a second writer waits for the workspace lock."
    )


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


def _describe(error: Any) -> str:  # pydantic's ErrorDetails
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; see docs/configuration.md)"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif "input" in error and not isinstance(error["input"], dict):
        message += f" (got {error['input']!r})"
    return f"{key}: {message}"


def _workspace_at(base_dir: Path, configured: Path) -> Path:
    """The workspace folder a config names, refused when it would hold the config's own
    folder (``workspace: .`` or ``../..`` would put raw/, models/... among the user's
    files); one outside the config's folder is allowed but said before it is created."""
    base, workspace = base_dir.resolve(), (base_dir / configured).resolve()
    if base.is_relative_to(workspace):
        raise ConfigError(
            f"invalid config: workspace '{configured}' is '{workspace}', which holds the "
            f"config's own folder '{base}'; conveyor fills its workspace with raw/, models/, "
            "logs/...: give it a folder of its own, e.g. `workspace: workspace`")
    if not workspace.is_relative_to(base) and not workspace.exists():
        log.warning("workspace '%s' is outside the config's folder '%s'; creating it there",
                    workspace, base)
    return workspace


# a config is a few kilobytes; anything near this is not one
MAX_CONFIG_BYTES = 1 << 20


def _refuse_aliases(text: str, path: Path) -> None:
    """Refuse YAML anchors and aliases: nine nested aliases expand to billions of nodes
    (a "billion laughs"), and conveyor's configs never need them. Linear in the text."""
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise ConfigError(
                    f"invalid config: '{path}' line {line} uses a YAML anchor or "
                    "alias (& or *); conveyor does not expand them: write the value out")
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {exc}") from None


def parse_config(data: dict[str, Any], base_dir: Path) -> Config:
    """Validate a config mapping; relative paths are resolved against ``base_dir``."""
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        lines = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"invalid config: {lines}") from None
    workspace = _workspace_at(base_dir, config.workspace)
    updates: dict[str, Any] = {"workspace": workspace}

    def located(table: Any) -> Any:
        if table.path is None:
            return table
        return table.model_copy(update={"path": (base_dir / table.path).resolve()})

    def stored_at(url: str | None) -> str | None:  # a folder relative to the config, or a URL
        return url if url is None or "://" in url else str((base_dir / url).resolve())

    updates["store"] = config.store.model_copy(update={
        "raw_url": stored_at(config.store.raw_url),
        "models_url": stored_at(config.store.models_url)})
    updates["source"] = located(config.source)
    updates["enrich"] = [located(e) for e in config.enrich]
    if config.serve.output_dir is not None:
        updates["serve"] = config.serve.model_copy(
            update={"output_dir": (base_dir / config.serve.output_dir).resolve()}
        )
    return config.model_copy(update=updates)


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file."""
    path = Path(path)
    check_regular_file(path, "config file", ConfigError, hint=(
        "; pass -config PATH or run from the folder that holds conveyor.yaml"))
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file '{path}' is {path.stat().st_size:,} bytes, over the "
                          f"{MAX_CONFIG_BYTES:,} a config may have; is it the right file?")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file '{path}' is not UTF-8 text (byte {exc.start})") from None
    _refuse_aliases(text, path)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping of sections")
    return parse_config(data, path.resolve().parent)
