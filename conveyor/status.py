"""``conveyor status``: the workspace at a glance, from a handful of SQL queries.

A person runs it to see where things stand, so it answers at once: no pandas, no
scikit-learn, and for the default SQLite catalog not even SQLAlchemy; the standard
library's sqlite3 opens the file read-only. A server database (``store.url``) is
read through SQLAlchemy with the same queries. Every value is plain JSON (no NaN,
versions spelled ``v11``, the arrival lag in hours).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from conveyor.config import Config
from conveyor.workspace import Workspace

Query = Callable[[str], list[dict[str, Any]]]
EVENT_KINDS = ("data_drift", "model_drift", "window_choice", "window_reset", "suspicious_score")


@contextlib.contextmanager
def catalog(workspace: Workspace) -> Iterator[Query]:
    """A function running one SQL query on the workspace's catalog, rows as dicts."""
    if workspace.database_url is None:
        connection = sqlite3.connect(f"{workspace.db_path.resolve().as_uri()}?mode=ro", uri=True)
        connection.row_factory = sqlite3.Row
        try:
            yield lambda sql: [dict(row) for row in connection.execute(sql)]
        finally:
            connection.close()
        return
    from sqlalchemy import create_engine, text

    engine = create_engine(workspace.database_url)
    try:
        with engine.connect() as conn:
            yield lambda sql: [dict(row) for row in conn.execute(text(sql)).mappings()]
    finally:
        engine.dispose()


def read_status(config: Config) -> dict[str, Any]:
    """The workspace's state as plain JSON values."""
    workspace = Workspace.of(config).create()  # refuses a hostile layout (links out of it)
    if workspace.database_url is None and not workspace.db_path.exists():
        from conveyor.store import Store  # an empty catalog: nothing ingested yet

        Store.open(workspace.db_url).close()
    with catalog(workspace) as query:
        counts = query(
            "SELECT count(*) AS batches,"
            " sum(CASE WHEN status = 'accepted' THEN 1 ELSE 0 END) AS accepted,"
            " sum(CASE WHEN status = 'quarantined' THEN 1 ELSE 0 END) AS quarantined,"
            " sum(rows) AS rows, max(time_max) AS data_until,"
            " max(window_end) AS next_window_start FROM batches")[0]
        newest_batch = query("SELECT id, window_start, window_end, rows, status, reason,"
                             " ingested_at, time_max, sha256 FROM batches"
                             " ORDER BY window_index DESC LIMIT 1")
        staged = {row["stage"]: row for row in query(
            "SELECT version, family, params, metrics, window_start, window_end, created_at,"
            " stage FROM models WHERE stage IN ('production', 'staging')")}
        newest_version = query("SELECT version, stage, strategy, created_at, reason"
                               " FROM models ORDER BY version DESC LIMIT 1")
        models = query("SELECT count(*) AS n FROM models")[0]["n"]
        events = {row["kind"]: int(row["n"]) for row in query(
            "SELECT kind, count(*) AS n FROM events GROUP BY kind")}
    return {
        "workspace": str(workspace.root),
        "target": f"{config.target.column} ({config.target.task})",
        "batches": int(counts["batches"]),
        "accepted": int(counts["accepted"] or 0),
        "quarantined": int(counts["quarantined"] or 0),
        "rows": int(counts["rows"] or 0),
        "data_until": counts["data_until"],
        "next_window_start": counts["next_window_start"],
        "models": int(models),
        "production": _version_state(staged.get("production"), config.metric),
        "staging": _version_state(staged.get("staging"), config.metric),
        "events": {kind: events.get(kind, 0) for kind in EVENT_KINDS},
        "last_batch": _last_batch(newest_batch[0]) if newest_batch else None,
        "last_version": None if not newest_version else {
            **newest_version[0], "version": f"v{newest_version[0]['version']}"},
        "disk_mb": disk_mb(workspace.root),
    }


def _json(value: Any) -> Any:
    """A JSON column's value: SQLite gives the text, PostgreSQL the object."""
    return json.loads(value) if isinstance(value, str) else value


def _version_state(row: dict[str, Any] | None, metric: str) -> dict[str, Any] | None:
    if row is None:
        return None
    holdout = (_json(row["metrics"]) or {}).get("holdout") or {}
    score = holdout.get(metric)
    finite = isinstance(score, int | float) and math.isfinite(score)
    return {"version": f"v{row['version']}", "family": row["family"],
            "params": _json(row["params"]), "metric": metric,
            "holdout": float(score) if finite and score is not None else None,
            "trained_on": [row["window_start"], row["window_end"]],
            "created_at": row["created_at"]}


def _hours_between(start: str | None, end: str | None) -> float | None:
    try:
        began, ended = dt.datetime.fromisoformat(str(start)), dt.datetime.fromisoformat(str(end))
        return round((ended - began).total_seconds() / 3600, 1)
    except (TypeError, ValueError):  # a missing or naive-versus-aware pair
        return None


def _last_batch(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": int(row["id"]), "window": [row["window_start"], row["window_end"]],
            "rows": int(row["rows"]), "status": row["status"], "reason": row["reason"],
            "ingested_at": row["ingested_at"],
            "arrival_lag_hours": _hours_between(row["time_max"], row["ingested_at"]),
            "sha256": row["sha256"]}


def disk_mb(root: Path) -> dict[str, float]:
    """Megabytes under each top folder of the workspace (and the files beside them)."""
    sizes: dict[str, float] = {}
    for entry in root.iterdir():
        if entry.is_symlink():
            continue
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*")
                                                  if p.is_file() and not p.is_symlink()]
        key = entry.name if entry.is_dir() else "other files"
        sizes[key] = sizes.get(key, 0.0) + sum(p.stat().st_size for p in files) / 2**20
    return {k: round(v, 1) for k, v in sorted(sizes.items())}
