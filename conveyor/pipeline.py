"""One function per mode: what the CLI, ``run.py`` and the API call.

``update`` is :func:`conveyor.controller.update.update` (read that module to see
what an update does, stage by stage); the other modes open the workspace, call one
stage and close it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from conveyor.collect import sources
from conveyor.collect.enrich import make_enricher
from conveyor.config import Config
from conveyor.controller.state import Stages, UpdateResult
from conveyor.controller.update import update
from conveyor.errors import ConveyorError, InputError, ModelError
from conveyor.serve.bundle import load_version
from conveyor.serve.predict import predict_file
from conveyor.serve.routing import is_fallback_route
from conveyor.store import Store
from conveyor.store.db import utcnow
from conveyor.train.data import BATCH_COLUMN
from conveyor.validate import registry
from conveyor.validate.interpret import explain_answer
from conveyor.workspace import Workspace

log = logging.getLogger(__name__)

__all__ = ["BATCH_COLUMN", "Stages", "UpdateResult", "update", "inference", "summary",
           "replay", "explain", "models", "promote", "rollback"]

def open_workspace(config: Config) -> tuple[Workspace, Store]:
    workspace = Workspace.of(config).create()
    return workspace, Store.open(workspace.db_url)


# -- modes --------------------------------------------------------------------------------


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
                              augment=make_enricher(config, loaded.features, store),
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
        fallback = sum(n for route, n in result.routes.items() if is_fallback_route(route))
        log.info("inference with v%d: %d rows in %.2f s -> %s (the fallback answered %d "
                 "rows; rows per route %s)", loaded.version, result.rows, result.seconds,
                 result.output, fallback, result.routes)
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


def batches_left(config: Config) -> int | None:
    """Updates a replay still has to run: the source's windows after the cursor (None when
    the source cannot say, e.g. an inbox folder)."""
    from conveyor.collect.registry import open_source

    workspace, store = open_workspace(config)
    try:
        source = open_source(config, workspace, store)
        counter = getattr(source, "windows_left", None)
        return None if counter is None else int(counter(store.next_window_index()))
    finally:
        store.close()


def explain(config: Config, file: Path, row: int) -> dict[str, Any]:
    """Explain the production version's prediction for row ``row`` (0-based) of ``file``,
    by the model that answered it: the champion, or the fallback when a proven routing
    rule sent the row there (``route`` and ``route_reason`` say which and why)."""
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
        augment = make_enricher(config, loaded.features, store)
        frame = augment(frame) if augment else frame
        features = features_frame(frame.iloc[[row]], loaded.manifest["schema"], str(file))
        out = explain_answer(loaded.model, loaded.fallback, loaded.router, features)
        if out["route"] == "fallback":
            family = (loaded.manifest.get("fallback") or {}).get("family")
            return {"version": loaded.version, "family": family, "row": row, **out}
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
