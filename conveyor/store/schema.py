"""Tables of the metadata database (SQLAlchemy Core, SQLite or PostgreSQL).

Times are ISO-8601 UTC strings, so they sort and compare the same way on
every backend. Bump ``SCHEMA_VERSION`` with every change and add a migration.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

SCHEMA_VERSION = 4

metadata = MetaData()

meta = Table(
    "meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

batches = Table(
    "batches", metadata,
    Column("id", Integer, primary_key=True),
    Column("window_index", Integer, nullable=False, unique=True),
    Column("window_start", String(40), nullable=False),
    Column("window_end", String(40), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("rows_with_target", Integer, nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("path", Text, nullable=False),
    Column("status", String(16), nullable=False),  # accepted | quarantined
    Column("verdict", String(16)),  # pass | cleaned | quarantined
    Column("reason", Text),
    Column("clean_plan", JSON),
    Column("clean_actions", JSON),
    Column("source", Text),  # the inbox file, or the stream's source
    Column("time_min", String(40)),
    Column("time_max", String(40)),
    Column("ingested_at", String(40), nullable=False),
)

inbox_files = Table(
    "inbox_files", metadata,
    Column("name", String(512), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # ingested | quarantined | duplicate
    Column("batch_id", Integer),
    Column("reason", Text),
    Column("processed_at", String(40), nullable=False),
)

column_stats = Table(
    "column_stats", metadata,
    Column("batch_id", Integer, ForeignKey("batches.id"), nullable=False),
    Column("column", String(256), nullable=False),
    Column("dtype", String(32), nullable=False),
    Column("missing_share", Float, nullable=False),
    Column("n_unique", Integer, nullable=False),
    Column("mean", Float),
    Column("std", Float),
    Column("min", Float),
    Column("q25", Float),
    Column("q50", Float),
    Column("q75", Float),
    Column("max", Float),
    Column("top", JSON),  # categorical: {level: share} of the most frequent levels
    Column("levels", JSON),  # categorical: {level: count}, up to 1,000 levels
    UniqueConstraint("batch_id", "column"),
)

profiles = Table(
    "profiles", metadata,  # mergeable distribution profile per batch and column (drift)
    Column("batch_id", Integer, ForeignKey("batches.id"), nullable=False),
    Column("column", String(256), nullable=False),
    Column("profile", JSON, nullable=False),
    UniqueConstraint("batch_id", "column"),
)

bin_edges = Table(
    "bin_edges", metadata,  # fixed once per numeric column, so profiles stay mergeable
    Column("column", String(256), primary_key=True),
    Column("edges", JSON, nullable=False),
)

drift = Table(
    "drift", metadata,
    Column("batch_id", Integer, ForeignKey("batches.id"), nullable=False),
    Column("column", String(256), nullable=False),
    Column("role", String(16), nullable=False),  # feature | target | prediction
    Column("kind", String(16), nullable=False),  # numeric | categorical
    Column("method", String(16), nullable=False),
    Column("statistic", Float),
    Column("p_value", Float),
    Column("drifted", Integer, nullable=False),
    Column("scores", JSON, nullable=False),
)

eda = Table(
    "eda", metadata,
    Column("batch_id", Integer, ForeignKey("batches.id"), primary_key=True),
    Column("data", JSON, nullable=False),
)

quality = Table(
    "quality", metadata,
    Column("batch_id", Integer, ForeignKey("batches.id"), nullable=False),
    Column("check", String(64), nullable=False),
    Column("column", String(256)),
    Column("value", Float, nullable=False),
    Column("threshold", Float),
    Column("verdict", String(8), nullable=False),  # pass | warn | fail
    Column("note", Text),
)

evaluations = Table(
    "evaluations", metadata,
    Column("id", Integer, primary_key=True),
    Column("batch_id", Integer, ForeignKey("batches.id"), nullable=False),
    Column("family", String(32), nullable=False),
    Column("variant", String(32)),  # preprocessing variant; null for the baseline row
    Column("params", JSON, nullable=False),
    Column("scheme", String(16), nullable=False),
    Column("metric", String(16), nullable=False),
    Column("score", Float),
    Column("metrics", JSON, nullable=False),
    Column("fit_seconds", Float, nullable=False),
    Column("predict_seconds", Float, nullable=False),
    Column("chosen", Integer, nullable=False, default=0),
    Column("train_rows", Integer),  # training rows per split the candidate was fitted on
    Column("rung", Integer),  # successive halving: on 1/3**rung of the rows; 0 = all of them
)

models = Table(
    "models", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("family", String(32), nullable=False),
    Column("variant", String(32)),
    Column("params", JSON, nullable=False),
    Column("stage", String(16), nullable=False),  # candidate | production | archived
    Column("path", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("batch_ids", JSON, nullable=False),
    Column("window_start", String(40), nullable=False),
    Column("window_end", String(40), nullable=False),
    Column("train_rows", Integer, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("config_hash", String(16), nullable=False),
    Column("libraries", JSON, nullable=False),
    Column("train_seconds", Float, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("reason", Text),
    Column("strategy", String(16)),  # retrain | incremental
    Column("strategy_note", Text),  # why this strategy, and how the model learned
    Column("parent_version", Integer),  # incremental: the version it was updated from
)

importance = Table(
    "importance", metadata,
    Column("version", Integer, ForeignKey("models.version"), nullable=False),
    Column("column", String(256), nullable=False),
    Column("importance", Float, nullable=False),
)

prequential = Table(
    "prequential", metadata,
    Column("batch_id", Integer, ForeignKey("batches.id"), nullable=False),
    Column("version", Integer, ForeignKey("models.version"), nullable=False),
    Column("role", String(16), nullable=False),  # production | fallback | staging | baseline
    Column("rows", Integer, nullable=False),
    Column("score", Float),
    Column("metrics", JSON, nullable=False),
    UniqueConstraint("batch_id", "role"),
)

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", String(40), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("batch_id", Integer),
    Column("version", Integer),
    Column("message", Text, nullable=False),
)

# every switch of production, in order: the registry's own history (events say why)
promotions = Table(
    "promotions", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", String(40), nullable=False),
    Column("kind", String(16), nullable=False),  # promotion | rollback
    Column("version", Integer, nullable=False),
    Column("batch_id", Integer),
)

inference_log = Table(
    "inference_log", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", String(40), nullable=False),
    Column("kind", String(8), nullable=False, default="file"),  # file | api
    Column("variant", String(16), nullable=False, default="production"),  # or staging
    Column("version", Integer, nullable=False),
    Column("input_path", Text, nullable=False),
    Column("input_sha256", String(64), nullable=False),
    Column("output_path", Text, nullable=False),
    Column("calls", Integer, nullable=False, default=1),
    Column("rows", Integer, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("rows_per_second", Float, nullable=False),
    Column("peak_mb", Float, nullable=False),
    Column("p99_ms", Float),
    Column("route_counts", JSON),  # rows per route: champion, missing, out_of_range, ...
)

stage_timings = Table(
    "stage_timings", metadata,
    Column("run", String(32), nullable=False),
    Column("batch_id", Integer),
    Column("stage", String(32), nullable=False),
    Column("seconds", Float, nullable=False),
    Column("peak_mb", Float, nullable=False),
)
