"""Collect: take the next window (or inbox file), store it untouched, measure its quality,
clean it, profile it and compare it with the reference, all recorded in one transaction.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from conveyor.analyze.batch_drift import measure_drift
from conveyor.analyze.clean import apply_plan
from conveyor.analyze.eda import batch_eda
from conveyor.analyze.quality import BatchQuality, Reference, assess, reference_from_stats
from conveyor.analyze.report import write_quality_report
from conveyor.collect import inbox, rawstore, sources, stream
from conveyor.collect.enrich import enrich, load_enrichment
from conveyor.collect.profile import batch_profile
from conveyor.config import Config
from conveyor.errors import ConveyorError, SourceError
from conveyor.io.atomic import atomic_write_text
from conveyor.prepare.roles import resolve_roles
from conveyor.prepare.target import derive_target
from conveyor.store import Store
from conveyor.store.db import utcnow
from conveyor.workspace import Workspace

log = logging.getLogger(__name__)


def collect(config: Config, workspace: Workspace, store: Store,
             ) -> tuple[list[dict[str, Any]], str]:
    """Ingest the next window(s) or inbox file; return the new catalog rows and a message."""
    enrichments = [(spec, load_enrichment(spec)) for spec in config.enrich]
    first_update = store.next_window_index() == 0
    wanted = config.stream.initial_batches if first_update else 1
    if config.source.kind == "inbox":
        return _collect_inbox(config, workspace, store, enrichments, wanted)
    cache = sources.build_cache(config.source, config.target.source_column, workspace.cache,
                                set(config.columns.categorical or []))
    ingested: list[dict[str, Any]] = []
    for _ in range(wanted):
        collected = next_from_stream(config, cache, store.next_window_index())
        if collected is None:
            break
        window, frame = collected
        frame = enrich(frame, enrichments, config.source.time_column)
        ingested.append(_ingest(config, workspace, store, window, frame, str(config.source.path
                                                                             or "sql")))
    if not ingested:
        return [], "stream exhausted: no new data after the last window; nothing to update"
    return ingested, f"ingested {len(ingested)} batch(es)"


def next_from_stream(config: Config, cache: Path,
                      index: int) -> tuple[stream.Window, pd.DataFrame] | None:
    """Return the next non-empty window (or row-count batch) at or after ``index``."""
    time_column = config.source.time_column
    if config.stream.rows is not None:
        size = config.stream.rows
        frame = sources.read_rows(cache, index * size, (index + 1) * size)
        if frame.empty:
            return None
        times = frame[time_column]
        return stream.Window(index, times.min(), times.max()), frame
    origin, _ = sources.time_bounds(cache, time_column)
    width = stream.window_width(config.stream.window)
    start = stream.window_at(origin, width, index).start
    next_time = sources.first_time_at_or_after(cache, time_column, start)
    if next_time is None:
        return None
    window = stream.window_at(origin, width, stream.index_of(origin, width, next_time))
    return window, sources.read_window(cache, time_column, window.start, window.end)


def _collect_inbox(config: Config, workspace: Workspace, store: Store,
                   enrichments: list[tuple[Any, pd.DataFrame]],
                   wanted: int) -> tuple[list[dict[str, Any]], str]:
    """Take the oldest unprocessed inbox file(s), one batch each."""
    assert config.source.path is not None
    processed = set(store.frame("inbox_files")["name"])
    ingested: list[dict[str, Any]] = []
    for path in inbox.pending_files(config.source.path, config.source.pattern, processed):
        if len(ingested) >= wanted:
            break
        sha, size = sources.file_sha256(path), path.stat().st_size
        record = {"name": path.name, "sha256": sha, "size_bytes": size, "processed_at": utcnow()}
        if store.inbox_file_by_sha(sha) is not None:
            store.record("inbox_files", **record, status="duplicate",
                         reason="same bytes as an already processed file")
            log.warning("inbox file %s repeats an earlier file (same sha256); skipped", path.name)
            continue
        try:
            frame = sources.read_file(path, inbox.file_kind(path), config.source.csv,
                                      config.source.sheet)
            frame = sources.check_columns(frame, config.source.time_column,
                                          config.target.source_column,
                                          f"inbox file '{path.name}'",
                                          set(config.columns.categorical or []))
            _check_schema(store, frame, path.name, config.train.window_batches)
        except ConveyorError as exc:
            folder = inbox.quarantine_file(path, workspace.quarantine, str(exc))
            with store.transaction() as conn:
                store.insert_rows(conn, "inbox_files", [{**record, "status": "quarantined",
                                                         "reason": str(exc)}])
                store.add_event(conn, "quarantine", f"{path.name}: {exc}")
            return ingested, f"inbox file quarantined to {folder}: {exc}"
        frame = frame.sort_values(config.source.time_column, kind="stable")
        times = frame[config.source.time_column]
        window = stream.Window(store.next_window_index(), times.min(), times.max())
        frame = enrich(frame.reset_index(drop=True), enrichments, config.source.time_column)
        row = _ingest(config, workspace, store, window, frame, path.name)
        store.record("inbox_files", **record, status="ingested", batch_id=row["id"])
        ingested.append(row)
    if not ingested:
        return [], f"no new files in the inbox {config.source.path}; nothing to update"
    return ingested, f"ingested {len(ingested)} inbox file(s)"


def _check_schema(store: Store, frame: pd.DataFrame, name: str, recent: int) -> None:
    """Refuse a batch that lacks columns every one of the ``recent`` newest batches had.

    One file with extra columns does not make them required: a column becomes part of
    the schema once every batch of the training window has it.
    """
    previous = store.accepted_batches(recent)
    if not previous:
        return
    columns = [store.batch_columns(b["id"]) for b in previous]
    everywhere = set.intersection(*map(set, columns))
    known = [c for c in columns[-1] if c in everywhere]
    missing = [c for c in known if c not in frame.columns]
    if missing:
        raise SourceError(f"'{name}' lacks column(s) {missing} that earlier batches had "
                          "(a different schema); fix the file and drop it in the inbox again "
                          "under a new name")


def _ingest(config: Config, workspace: Workspace, store: Store, window: stream.Window,
            frame: pd.DataFrame, source_name: str) -> dict[str, Any]:
    """Store one batch's rows untouched, measure them, and catalog them in one transaction."""
    data = rawstore.encode(frame)
    existing = store.batch_by_sha(rawstore.digest(data))
    if existing is not None:
        raise SourceError(f"batch of window {window.index} is identical to batch "
                          f"{existing['id']} (same sha256); refusing to ingest it twice")
    location, sha = rawstore.write_batch(workspace.raw_store, window.index, data)
    path = workspace.catalog_path(location)
    frame = derive_target(frame, config.target)  # after the raw copy: stored as the source wrote it
    roles = resolve_roles(frame, config.columns, config.target.column, config.source.time_column)
    reference = _reference(store)
    quality = assess(frame, list(roles.features), config.target.column, config.quality,
                     config.clean, reference)
    status = "accepted" if quality.passed else "quarantined"
    cleaned = apply_plan(frame, quality.plan, config.target.column)
    target = frame[config.target.column]
    times = frame[config.source.time_column]
    row = {"window_index": window.index, "window_start": window.start.isoformat(),
           "window_end": window.end.isoformat(), "rows": len(frame),
           "rows_with_target": int(target.notna().sum()), "sha256": sha,
           "path": path, "status": status,
           "verdict": quality.verdict, "reason": quality.reason() or None,
           "clean_plan": quality.plan.to_dict(), "clean_actions": cleaned.actions,
           "source": source_name,
           "time_min": times.min().isoformat(), "time_max": times.max().isoformat()}
    with store.transaction() as conn:
        batch_id = store.add_batch(conn, **row)
        store.insert_rows(conn, "column_stats",
                          [{"batch_id": batch_id, **p} for p in batch_profile(frame)])
        store.insert_rows(conn, "quality", [
            {"batch_id": batch_id, "check": c.check, "column": c.column, "value": c.value,
             "threshold": c.threshold, "verdict": c.verdict, "note": c.note}
            for c in quality.checks])
        store.insert_rows(conn, "eda", [{"batch_id": batch_id, "data": batch_eda(
            cleaned.frame, [c for c in roles.numeric if c in cleaned.frame.columns],
            config.target.column, config.target.task)}])
        alarm = None
        if status == "accepted" and config.drift.enabled:
            alarm = measure_drift(config, store, conn, batch_id, cleaned.frame, roles)
        if status == "quarantined":
            store.add_event(conn, "quarantine", quality.reason(), batch_id=batch_id)
    write_quality_report(workspace.reports / "quality", {**row, "id": batch_id}, quality,
                         cleaned.actions, reference)
    if status == "quarantined":
        _write_quarantine_note(workspace, window, path, quality)
        log.warning("batch %d (%s) quarantined: %s", batch_id, window.start, quality.reason())
    for warning in quality.warnings():
        log.debug("batch %d quality warning: %s", batch_id, warning)
    log.info("batch %d: window %s .. %s, %d rows, %s", batch_id, window.start, window.end,
             len(frame), quality.verdict)
    return {**row, "id": batch_id, "drift_alarm": alarm}


def _reference(store: Store) -> Reference | None:
    """Summary of the production model's training batches (None before the first model)."""
    production = store.production()
    if production is None:
        return None
    stats = store.column_stats(production["batch_ids"])
    if stats.empty:
        return None
    levels: dict[str, set[str]] = {}
    for column, value in zip(stats["column"], stats["levels"], strict=True):
        if isinstance(value, dict):
            levels.setdefault(column, set()).update(value)
    batches = store.frame("batches").set_index("id")["rows"]
    stats = stats.assign(rows=stats["batch_id"].map(batches))
    return reference_from_stats(stats, levels)


def _write_quarantine_note(workspace: Workspace, window: stream.Window, raw_path: str,
                           quality: BatchQuality) -> None:
    note = {"window_index": window.index, "window_start": window.start.isoformat(),
            "raw_file": raw_path, "reason": quality.reason(),
            "failed_checks": [c.__dict__ for c in quality.blocking]}
    atomic_write_text(workspace.quarantine / f"batch-{window.index:06d}" / "reason.json",
                      json.dumps(note, indent=2))
