"""The controller: one function per mode, wiring the stages in order.

Reading :func:`update` top to bottom tells what an update does: collect the
next window, check its quality, score production on it (prequential), train
and validate challengers on the sliding window, register the best and promote
it when it beats production.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from conveyor.analyze import drift
from conveyor.analyze.clean import apply_plan
from conveyor.analyze.eda import batch_eda
from conveyor.analyze.quality import (
    BatchQuality,
    Reference,
    assess,
    reference_from_stats,
)
from conveyor.analyze.report import write_quality_report
from conveyor.collect import inbox, rawstore, sources, stream
from conveyor.collect.enrich import enrich, load_enrichment, make_enricher
from conveyor.collect.profile import batch_profile
from conveyor.config import Config
from conveyor.errors import ConveyorError, InputError, ModelError, SourceError
from conveyor.io.atomic import atomic_write_text
from conveyor.learn import BATCH_COLUMN, Stages, UpdateResult, drift_row, drift_settings, learn
from conveyor.prepare.roles import Roles, resolve_roles
from conveyor.prepare.target import derive_target
from conveyor.serve.bundle import load_version
from conveyor.serve.predict import predict_file
from conveyor.store import Store
from conveyor.store.db import utcnow
from conveyor.validate import registry
from conveyor.validate.interpret import explain_row
from conveyor.workspace import Workspace

log = logging.getLogger(__name__)

__all__ = ["BATCH_COLUMN", "Stages", "UpdateResult", "update", "inference", "summary",
           "replay", "status", "explain", "models", "promote", "rollback"]

def open_workspace(config: Config) -> tuple[Workspace, Store]:
    workspace = Workspace.of(config).create()
    return workspace, Store.open(workspace.db_url)


# -- collect ------------------------------------------------------------------------------


def _collect(config: Config, workspace: Workspace, store: Store,
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
        collected = _next_from_stream(config, cache, store.next_window_index())
        if collected is None:
            break
        window, frame = collected
        frame = enrich(frame, enrichments, config.source.time_column)
        ingested.append(_ingest(config, workspace, store, window, frame, str(config.source.path
                                                                             or "sql")))
    if not ingested:
        return [], "stream exhausted: no new data after the last window; nothing to update"
    return ingested, f"ingested {len(ingested)} batch(es)"


def _next_from_stream(config: Config, cache: Path,
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
            alarm = _measure_drift(config, store, conn, batch_id, cleaned.frame, roles)
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


def _measure_drift(config: Config, store: Store, conn: Any, batch_id: int, frame: pd.DataFrame,
                   roles: Roles) -> str | None:
    """Profile the batch, compare it with the reference window, record it; return the alarm."""
    columns = [c for c in [*roles.features, config.target.column] if c in frame.columns]
    edges = store.bin_edges()
    new_edges = {c: drift.edges_for(frame[c], config.drift.bins) for c in columns
                 if c not in edges and pd.api.types.is_numeric_dtype(frame[c])
                 and not pd.api.types.is_bool_dtype(frame[c])}
    edges.update(new_edges)
    profiles = drift.profile_frame(frame[columns], edges)
    store.insert_rows(conn, "bin_edges", [
        {"column": c, "edges": [float(x) if np.isfinite(x) else str(x) for x in e]}
        for c, e in new_edges.items()])
    store.insert_rows(conn, "profiles", [{"batch_id": batch_id, "column": c,
                                          "profile": drift.profile_to_json(p)}
                                         for c, p in profiles.items()])
    reference = drift.merge_reference(store.reference_profiles(conn))
    if not reference:
        return None
    settings = drift_settings(config)
    target = config.target.column
    features = drift.compare({c: p for c, p in reference.items() if c != target},
                             {c: p for c, p in profiles.items() if c != target}, settings)
    on_target = drift.compare({c: p for c, p in reference.items() if c == target},
                              {c: p for c, p in profiles.items() if c == target}, settings)
    rows = [{"batch_id": batch_id, "role": "feature", **r} for r in features.to_rows()]
    rows += [{"batch_id": batch_id, "role": "target", **r} for r in on_target.to_rows()]
    store.insert_rows(conn, "drift", [drift_row(r) for r in rows])
    if not features.drifted:
        return None
    top = sorted((c for c in features.columns if c.drifted), key=lambda c: -c.statistic)[:5]
    reason = (f"data drift: {features.share_drifted:.0%} of features drifted "
              f"(threshold {settings.share_threshold:.0%}): "
              + ", ".join(f"{c.column} ({c.method} {c.statistic:.2f})" for c in top))
    store.add_event(conn, "data_drift", reason, batch_id=batch_id)
    log.warning("batch %d: %s", batch_id, reason)
    return reason


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
    import json

    note = {"window_index": window.index, "window_start": window.start.isoformat(),
            "raw_file": raw_path, "reason": quality.reason(),
            "failed_checks": [c.__dict__ for c in quality.blocking]}
    atomic_write_text(workspace.quarantine / f"batch-{window.index:06d}" / "reason.json",
                      json.dumps(note, indent=2))


# -- modes --------------------------------------------------------------------------------


def update(config: Config) -> UpdateResult:
    """Run one update: ingest the next window and carry it through every stage."""
    workspace = Workspace.of(config).create()
    threads = threadpool_limits(config.compute.threads) if config.compute.threads else \
        contextlib.nullcontext()
    with workspace.lock(config.lock.timeout_seconds), threads:
        store = Store.open(workspace.db_url)
        try:
            return _update_locked(config, workspace, store)
        finally:
            store.close()


def _update_locked(config: Config, workspace: Workspace, store: Store) -> UpdateResult:
    stages = Stages(store, uuid.uuid4().hex[:12])
    with stages.stage("collect"):
        batches, message = _collect(config, workspace, store)
    if not batches:
        return UpdateResult(False, message, exhausted=True)
    stages.batch_id = batches[-1]["id"]
    ids = [b["id"] for b in batches]
    rows = sum(b["rows"] for b in batches)
    accepted = [b for b in batches if b["status"] == "accepted"]
    if not accepted:
        stages.save()
        reasons = "; ".join(f"batch {b['id']}: {b['reason']}" for b in batches)
        return UpdateResult(False, f"quarantined (kept in the raw store): {reasons}", ids, rows)
    alarms = [b["drift_alarm"] for b in accepted if b.get("drift_alarm")]
    result = learn(config, workspace, store, accepted, stages,
                   drift_alarm="; ".join(alarms) or None)
    stages.save()
    result.batch_ids, result.rows = ids, rows
    return result


def inference(config: Config, file: Path) -> Path:
    """Predict a file with the production model; return the output's path."""
    workspace, store = open_workspace(config)
    try:
        row = store.production()
        if row is None:
            raise ModelError("no production model yet; run `python run.py -mode update` first")
        loaded = load_version(workspace, row)
        out_dir = config.serve.output_dir or workspace.predictions
        result = predict_file(Path(file), loaded, out_dir, config.source.csv,
                              augment=make_enricher(config, loaded.features),
                              route_columns=config.serve.route_columns,
                              version_column=config.serve.version_column)
        per_1k = 1000 * 1000 * result.seconds / max(result.rows, 1)
        store.record("inference_log", at=utcnow(), version=loaded.version,
                     input_path=str(Path(file).resolve()),
                     input_sha256=sources.file_sha256(Path(file)), output_path=str(result.output),
                     rows=result.rows, seconds=result.seconds,
                     rows_per_second=result.rows / max(result.seconds, 1e-9),
                     peak_mb=result.peak_mb, route_counts=result.routes)
        budget = config.serve.max_latency_ms
        if budget is not None and per_1k > budget:
            with store.transaction() as conn:
                store.add_event(conn, "latency_budget", f"inference of {result.rows} rows took "
                                f"{per_1k:.0f} ms per 1,000 rows, over serve.max_latency_ms "
                                f"{budget:.0f}", version=loaded.version)
            log.warning("inference over the latency budget: %.0f ms per 1,000 rows", per_1k)
        log.info("inference with v%d: %d rows in %.2f s -> %s (routes %s)", loaded.version,
                 result.rows, result.seconds, result.output, result.routes)
        return result.output
    finally:
        store.close()


def summary(config: Config) -> Path:
    """Build the monitoring report from stored figures; return the HTML path."""
    from conveyor.report.summary import write_summary

    workspace, store = open_workspace(config)
    try:
        return write_summary(store, workspace.reports, config)
    finally:
        store.close()


def replay(config: Config, batches: int | None,
           progress: Callable[[UpdateResult], None] | None = None) -> list[UpdateResult]:
    """Run updates until ``batches`` are done or the stream ends."""
    results: list[UpdateResult] = []
    while batches is None or len(results) < batches:
        result = update(config)
        if result.exhausted:
            break
        results.append(result)
        if progress:
            progress(result)
    return results


def status(config: Config) -> dict[str, Any]:
    """Return a short description of the workspace's state."""
    workspace, store = open_workspace(config)
    try:
        batches = store.frame("batches")
        production = store.production()
        last = None
        if len(batches):
            newest = batches.sort_values("window_index").iloc[-1]
            stats = store.frame("column_stats")
            stats = stats[stats["batch_id"] == newest["id"]].drop(columns=["batch_id"])
            lag = pd.Timestamp(newest["ingested_at"]) - pd.Timestamp(newest["time_max"])
            last = {"id": int(newest["id"]), "window": [newest["window_start"],
                                                         newest["window_end"]],
                    "time_span": [newest["time_min"], newest["time_max"]],
                    "arrival_lag": str(lag), "rows": int(newest["rows"]),
                    "sha256": newest["sha256"], "status": newest["status"],
                    "columns": {r.pop("column"): {k: v for k, v in r.items() if v is not None}
                                for r in stats.to_dict("records")}}
        return {
            "workspace": str(workspace.root),
            "batches": len(batches),
            "accepted": int((batches["status"] == "accepted").sum()) if len(batches) else 0,
            "quarantined": int((batches["status"] == "quarantined").sum()) if len(batches) else 0,
            "last_window_end": batches["window_end"].max() if len(batches) else None,
            "models": store.count("models"),
            "production": None if production is None else {
                "version": production["version"], "family": production["family"],
                "params": production["params"], "metrics": production["metrics"]},
            "last_batch": last,
        }
    finally:
        store.close()


def explain(config: Config, file: Path, row: int) -> dict[str, Any]:
    """Explain the production model's prediction for row ``row`` (0-based) of ``file``."""
    from conveyor.serve.predict import features_frame, read_input

    workspace, store = open_workspace(config)
    try:
        production = store.production()
        if production is None:
            raise ModelError("no production model yet; run `python run.py -mode update` first")
        loaded = load_version(workspace, production)
        frame = read_input(Path(file), config.source.csv)
        if not 0 <= row < len(frame):
            raise InputError(f"row {row} is outside '{file}' (rows 0..{len(frame) - 1})")
        augment = make_enricher(config, loaded.features)
        frame = augment(frame) if augment else frame
        features = features_frame(frame.iloc[[row]], loaded.manifest["schema"], str(file))
        out = explain_row(loaded.model, features)
        return {"version": loaded.version, "family": loaded.manifest["family"],
                "params": loaded.manifest["params"], "row": row, **out}
    finally:
        store.close()


def models(config: Config) -> pd.DataFrame:
    """Return the registry, newest version first."""
    _, store = open_workspace(config)
    try:
        return registry.list_models(store)
    finally:
        store.close()


def model_detail(config: Config, version: int) -> dict[str, Any]:
    """Return one version with the raw batches it was trained on."""
    _, store = open_workspace(config)
    try:
        return registry.describe(store, version)
    finally:
        store.close()


def promote(config: Config, version: int, reason: str) -> None:
    """Make a version production by hand (under the workspace lock)."""
    workspace = Workspace.of(config).create()
    with workspace.lock(config.lock.timeout_seconds):
        store = Store.open(workspace.db_url)
        try:
            _verify_version(workspace, store, version)
            registry.promote(store, version, reason)
        finally:
            store.close()


def _verify_version(workspace: Workspace, store: Store, version: int | None) -> None:
    """Refuse to make ``version`` production when its file fails verification (a version
    that does not exist or was deleted is left to the registry to refuse)."""
    row = store.model(version) if version is not None else None
    if row is not None and row["stage"] != "deleted":
        load_version(workspace, row)


def rollback(config: Config, reason: str) -> int:
    """Switch production back to its predecessor; return the version now in production."""
    workspace = Workspace.of(config).create()
    with workspace.lock(config.lock.timeout_seconds):
        store = Store.open(workspace.db_url)
        try:
            _verify_version(workspace, store, registry.previous_production(store))
            return registry.rollback(store, reason)
        finally:
            store.close()


def ensure_error(exc: BaseException) -> ConveyorError:
    """Wrap an unexpected exception as a ConveyorError with its type in the message."""
    if isinstance(exc, ConveyorError):
        return exc
    return ConveyorError(f"{type(exc).__name__}: {exc}")
