"""Collect: take the next window (or inbox file), store it untouched, measure its quality,
clean it, profile it and compare it with the reference, all recorded in one transaction.

The batches come from the configured source (:mod:`conveyor.collect.registry`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pandas as pd

from conveyor.analyze import drift
from conveyor.analyze.batch_drift import measure_drift
from conveyor.analyze.clean import apply_plan
from conveyor.analyze.eda import batch_eda
from conveyor.analyze.quality import BatchQuality, Reference, assess, reference_from_stats
from conveyor.analyze.report import write_quality_report
from conveyor.collect import rawstore, stream
from conveyor.collect.enrich import enrich, load_enrichment
from conveyor.collect.profile import batch_profile
from conveyor.collect.registry import open_source
from conveyor.collect.table_stream import next_from_stream
from conveyor.config import Config
from conveyor.errors import SourceError
from conveyor.io.atomic import atomic_write_text
from conveyor.prepare.roles import resolve_roles
from conveyor.prepare.target import derive_target
from conveyor.store import Store
from conveyor.workspace import Workspace

__all__ = ["collect", "next_from_stream"]

log = logging.getLogger(__name__)


Keep = Callable[[dict[str, Any], pd.DataFrame], None]  # an accepted batch, its cleaned rows


def collect(config: Config, workspace: Workspace, store: Store, keep: Keep | None = None,
            ) -> tuple[list[dict[str, Any]], str]:
    """Ingest the next window(s) or inbox file; return the new catalog rows and a message.

    ``keep`` receives each accepted batch with its cleaned rows, so that the update's
    later steps need not read and clean it again."""
    enrichments = [(spec, load_enrichment(spec, workspace.cache)) for spec in config.enrich]
    first_update = store.next_window_index() == 0
    wanted = config.stream.initial_batches if first_update else 1
    source = open_source(config, workspace, store)
    ingested: list[dict[str, Any]] = []
    for _ in range(wanted):
        batch = source.next_batch(store.next_window_index())
        if batch is None:
            break
        frame = enrich(batch.frame, enrichments, config.source.time_column)
        row = _ingest(config, workspace, store, batch.window, frame, batch.name, keep)
        batch.ingested(row)
        ingested.append(row)
    return ingested, source.message(len(ingested))


def _ingest(config: Config, workspace: Workspace, store: Store, window: stream.Window,
            frame: pd.DataFrame, source_name: str, keep: Keep | None) -> dict[str, Any]:
    """Store one batch's rows untouched, measure them, and catalog them in one transaction.

    What is measured and cleaned is the stored batch (the bytes written, decoded), the
    rows every later reader of the raw store gets."""
    data = rawstore.encode(frame)
    existing = store.batch_by_sha(rawstore.digest(data))
    if existing is not None:
        raise SourceError(f"batch of window {window.index} is identical to batch "
                          f"{existing['id']} (same sha256); refusing to ingest it twice")
    location, sha = rawstore.write_batch(workspace.raw_store, window.index, data)
    path = workspace.catalog_path(location)
    # after the raw copy: stored as the source wrote it
    frame = derive_target(rawstore.decode(data), config.target)
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
            alarm = measure_drift(config, store, conn, batch_id, cleaned.frame, roles,
                                  {} if reference is None else reference.profiles)
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
    if keep is not None and status == "accepted":
        keep({**row, "id": batch_id}, cleaned.frame)
    return {**row, "id": batch_id, "drift_alarm": alarm}


def _reference(store: Store) -> Reference | None:
    """The one summary of the production model's training batches that quality and
    drift both compare a new batch with (None before the first model)."""
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
    profiles = drift.merge_reference(store.stored_profiles(production["batch_ids"]))
    return replace(reference_from_stats(stats, levels), profiles=profiles)


def _write_quarantine_note(workspace: Workspace, window: stream.Window, raw_path: str,
                           quality: BatchQuality) -> None:
    note = {"window_index": window.index, "window_start": window.start.isoformat(),
            "raw_file": raw_path, "reason": quality.reason(),
            "failed_checks": [c.__dict__ for c in quality.blocking]}
    atomic_write_text(workspace.quarantine / f"batch-{window.index:06d}" / "reason.json",
                      json.dumps(note, indent=2))
