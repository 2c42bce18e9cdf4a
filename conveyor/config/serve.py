"""Inference and the API, the metadata store and the writer lock."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from conveyor.config.base import Section


class RoutingConfig(Section):
    enabled: bool = Field(True, description="Keep a robust fallback model beside the champion "
                          "and send it the unusual rows of each rule where it is proven better "
                          "than the champion (see min_rows, confidence).")
    max_missing_share: float = Field(0.5, ge=0, le=1, description="Rule `missing`: rows "
                                     "missing more than this share of features.")
    range_margin: float = Field(0.1, ge=0, description="Rule `out_of_range:<column>`: numbers "
                                "outside the training range widened by this share of its "
                                "width (never for a time-like column).")
    unseen_categories: bool = Field(True, description="Rule `unseen_category:<column>`: a "
                                    "category never seen in training (never for an "
                                    "identifier-like column).")
    anomaly: bool = Field(True, description="Rule `anomaly`: rows an IsolationForest (fitted "
                          "on the training window) finds most isolated.")
    contamination: float = Field(0.005, gt=0, le=0.5, description="Share of training rows the "
                                 "IsolationForest treats as anomalous.")
    min_rows: int = Field(50, ge=2, description="A rule sends rows to the fallback only with "
                          "at least this many flagged rows of evidence, from two batches or "
                          "more (held-out rows and past batches as served)...")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="... and only when the "
                              "fallback's mean loss on them is lower by a one-sided t test "
                              "across batches at this confidence.")
    evidence_batches: int = Field(8, ge=1, description="How many of the newest batches' "
                                  "prequential evidence a new version's rules are decided on.")


class BatchConfig(Section):
    max_rows: int = Field(1000, ge=1, description="API: most rows predicted in one call; "
                          "concurrent requests are gathered up to this many rows (a larger "
                          "request is predicted alone). 1: no batching.")
    max_wait_ms: float = Field(5.0, ge=0, le=1000, description="API: longest wait for "
                               "concurrent requests to join a batch, taken only while recent "
                               "batches held several requests (a lone client never waits); 0: "
                               "batch only what arrived during the previous prediction.")


class ServeConfig(Section):
    output_dir: Path | None = Field(
        None, description="Where inference writes; null means <workspace>/predictions."
    )
    batch: BatchConfig = Field(default_factory=BatchConfig, description="API: adaptive "
                               "micro-batching of concurrent requests.")
    routing: RoutingConfig = Field(default_factory=RoutingConfig,
                                   description="Flexible prediction: champion or fallback per row.")
    route_columns: bool = Field(False, description="Add `route` (champion or fallback) and "
                                "`route_reason` columns to inference output (API responses "
                                "always carry both per record).")
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
