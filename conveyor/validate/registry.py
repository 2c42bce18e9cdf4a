"""The model registry: registration, stages, promotion, rollback and retention.

Stages: ``candidate`` (trained, not chosen), ``staging`` (the newest challenger
that passed every check but did not beat production; served to a share of
requests by the API), ``production`` (exactly one), ``archived`` (a former
production) and ``deleted`` (its files removed by the retention policy; the
row and lineage stay). Every switch of production happens in one transaction
with an event that says why.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from sqlalchemy import select, update

from conveyor.config import Config
from conveyor.errors import ConveyorError, ModelError
from conveyor.serve.bundle import library_versions, save_model, version_key
from conveyor.storage import locate
from conveyor.store import Store, schema
from conveyor.store.db import utcnow
from conveyor.train.trained import SearchRecord, Trained
from conveyor.validate.decide import Decision, Verdict
from conveyor.workspace import Workspace

log = logging.getLogger(__name__)


def list_models(store: Store) -> pd.DataFrame:
    """Return every version, newest first, with its stage and headline metrics."""
    models = store.frame("models")
    if models.empty:
        return models
    return models.sort_values("version", ascending=False).reset_index(drop=True)


def describe(store: Store, version: int) -> dict[str, Any]:
    """Return a version's row with the raw batches (and sha256s) it was trained on."""
    row = store.model(version)
    if row is None:
        raise ModelError(f"no model version {version}; `conveyor models` lists them")
    batches = store.frame("batches").set_index("id")
    row["trained_on"] = [
        {"batch_id": int(b), "window_start": batches.loc[b, "window_start"],
         "window_end": batches.loc[b, "window_end"], "rows": int(batches.loc[b, "rows"]),
         "sha256": batches.loc[b, "sha256"], "path": batches.loc[b, "path"]}
        for b in row["batch_ids"] if b in batches.index]
    return row


def production_stack(history: list[tuple[str, int]]) -> list[int]:
    """The versions production would return to, one rollback at a time: a promotion puts
    its version on top, a rollback takes the top off (down to the version it restored).

    >>> production_stack([("promotion", 1), ("promotion", 2), ("promotion", 3),
    ...                   ("rollback", 2)])
    [1, 2]
    """
    stack: list[int] = []
    for kind, version in history:
        if kind == "rollback" and version in stack:
            while stack and stack[-1] != version:
                stack.pop()
        else:
            stack.append(version)
    return stack


def previous_production(store: Store) -> int | None:
    """Return the version a rollback returns to: the one production replaced, skipping
    versions undone by earlier rollbacks (a second rollback goes further back) and
    versions whose files retention deleted."""
    current = store.production()
    if current is None:
        return None
    stack = production_stack(store.production_history())
    while stack and stack[-1] == current["version"]:
        stack.pop()
    for version in reversed(stack):
        row = store.model(version)
        if row is not None and row["stage"] != "deleted":
            return version
    return None


def promote(store: Store, version: int, reason: str, batch_id: int | None = None,
            kind: str = "promotion") -> None:
    """Make ``version`` production in one transaction (the old one is archived)."""
    row = store.model(version)
    if row is None:
        raise ModelError(f"no model version {version}; `conveyor models` lists them")
    if row["stage"] == "deleted":
        raise ModelError(f"v{version} was deleted by the retention policy; choose another")
    if row["stage"] == "production":
        raise ConveyorError(f"v{version} is already production")
    with store.transaction() as conn:
        store.promote(conn, version, reason, batch_id=batch_id, kind=kind)
    log.debug("v%d is production (%s): %s", version, kind, reason)


def rollback(store: Store, reason: str) -> int:
    """Switch production back to the previous production version; return it."""
    target = previous_production(store)
    if target is None:
        raise ModelError("nothing to roll back to: there was no production model before this one")
    promote(store, target, reason, kind="rollback")
    return target


def set_staging(store: Store, version: int, reason: str) -> None:
    """Make ``version`` the staging model (the previous staging becomes a candidate)."""
    with store.transaction() as conn:
        conn.execute(update(schema.models).where(schema.models.c.stage == "staging")
                     .values(stage="candidate"))
        conn.execute(update(schema.models).where(schema.models.c.version == version)
                     .values(stage="staging", reason=reason))


def staging(store: Store) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        row = conn.execute(select(schema.models).where(schema.models.c.stage == "staging")
                           ).mappings().first()
    return dict(row) if row else None


def apply_retention(store: Store, workspace: Workspace, keep: int) -> list[int]:
    """Delete the files of old versions beyond the newest ``keep`` non-production ones.

    Production, its predecessor, the staging model and the first production
    model (the never-updated baseline every update is compared with) are never
    deleted; the rows stay (stage ``deleted``) so lineage and metrics remain
    queryable.
    """
    models = list_models(store)
    if models.empty:
        return []
    first = store.first_production()
    protected = {v for v in (previous_production(store),
                             None if first is None else first["version"]) if v is not None}
    alive = models[models["stage"].isin(["candidate", "archived"])]
    alive = alive[~alive["version"].isin(protected)]
    doomed = [int(v) for v in alive["version"].iloc[keep:]]
    for version in doomed:
        row = store.model(version)
        assert row is not None
        with store.transaction() as conn:
            conn.execute(update(schema.models).where(schema.models.c.version == version)
                         .values(stage="deleted"))
        folder, key = locate(workspace.model_folder(row["path"], version))
        folder.delete(key)
    if doomed:
        log.info("retention: deleted the files of %d old version(s)", len(doomed))
    return doomed


# -- registration -------------------------------------------------------------------------


def register(store: Store, workspace: Workspace, config: Config, trained: Trained,
             batch_id: int) -> int:
    """Save a trained version's files and catalog it (with the search's evaluations)
    as a candidate; return its version number."""
    version = _free_version(store, workspace)
    window = trained.window
    lineage = {"batch_ids": [b["id"] for b in window],
               "batch_sha256": [b["sha256"] for b in window],
               "window_start": window[0]["window_start"], "window_end": window[-1]["window_end"],
               "train_rows": trained.train_rows, "config_hash": config.digest(),
               "strategy": trained.origin.value, "parent_version": trained.parent}
    metrics = {"validation": trained.validation_metrics,
               "holdout": trained.validation.challenger,  # as served: router + fallback
               "latency_ms_per_1k_rows": trained.sanity.latency_ms}
    if trained.routing is not None:
        metrics["routing"] = trained.routing.to_json()
    manifest = {"family": trained.family, "variant": trained.variant, "params": trained.params,
                "task": config.target.task, "target": config.target.column,
                "schema": trained.schema, "metrics": metrics, "lineage": lineage,
                "engineered": trained.engineered, "strategy": trained.origin.value,
                "prediction_profile": trained.predictions,
                # regression predictions are clipped to this range (train.bounded)
                "prediction_bounds": getattr(trained.model, "bounds_", None),
                "fallback": None if trained.fallback is None else {
                    "family": trained.fallback.named_steps["model"].__class__.__name__,
                    "candidate": trained.fallback_candidate,
                    "routing": trained.router.get_params(),
                    "rules": None if trained.routing is None else trained.routing.rules},
                "strategy_note": trained.note,
                "libraries": library_versions(), "created_at": utcnow()}
    location, sha, size = save_model(workspace.models_store, version, trained.model, manifest,
                                     {"explain.json": trained.explanation}, trained.fallback,
                                     trained.router)
    with store.transaction() as conn:
        store.insert_rows(conn, "models", [{
            "version": version, "family": trained.family, "variant": trained.variant,
            "params": trained.params, "stage": "candidate",
            "path": workspace.catalog_path(location), "sha256": sha, "size_bytes": size,
            "batch_ids": lineage["batch_ids"], "window_start": lineage["window_start"],
            "window_end": lineage["window_end"], "train_rows": trained.train_rows,
            "metrics": metrics, "config_hash": lineage["config_hash"],
            "libraries": manifest["libraries"], "train_seconds": trained.train_seconds,
            "created_at": manifest["created_at"], "strategy": trained.origin.value,
            "strategy_note": trained.note, "parent_version": trained.parent}])
        if trained.search is not None:
            store.insert_rows(conn, "evaluations",
                              _evaluation_rows(trained.search, batch_id, config.metric))
        store.insert_rows(conn, "importance", [
            {"version": version, "column": c, "importance": v}
            for c, v in trained.explanation["importance"].items()])
    return version


def _free_version(store: Store, workspace: Workspace) -> int:
    """The next version number whose folder does not exist yet."""
    version = store.next_version()
    models = workspace.models_store
    while models.exists(version_key(version)):
        # a crash after the folder's rename but before its row: never listed nor served
        log.warning("model folder %s has no registry row (an interrupted update); skipping "
                    "its number", models.location(version_key(version)))
        version += 1
    return version


def _evaluation_rows(search: SearchRecord, batch_id: int, metric: str) -> list[dict[str, Any]]:
    rows = [{
        "batch_id": batch_id, "family": e.candidate.family, "variant": e.candidate.variant,
        "params": e.candidate.params, "scheme": search.scheme, "metric": metric,
        "score": e.score, "metrics": e.metrics, "fit_seconds": e.fit_seconds,
        "predict_seconds": e.predict_seconds, "chosen": int(e is search.best),
        "train_rows": e.rows, "rung": e.rung}
        for e in search.evaluations]
    if search.baseline is not None:
        scores, seconds = search.baseline
        rows.append({"batch_id": batch_id, "family": "baseline", "variant": None,
                     "params": {}, "scheme": search.scheme, "metric": metric,
                     "score": scores[metric], "metrics": scores,
                     "fit_seconds": seconds, "predict_seconds": 0.0, "chosen": 0,
                     "train_rows": search.evaluations[0].rows if search.evaluations else None,
                     "rung": 0})
    return rows


def settle(store: Store, workspace: Workspace, version: int, decision: Decision,
           batch_id: int, keep_versions: int) -> None:
    """Carry out a decision on a new version, then apply the retention policy."""
    if decision.verdict is Verdict.PROMOTE:
        promote(store, version, decision.reason, batch_id=batch_id)
    else:
        if decision.verdict is Verdict.STAGE:
            set_staging(store, version, decision.reason)
        with store.transaction() as conn:
            store.add_event(conn, "kept", decision.reason, batch_id=batch_id, version=version)
    apply_retention(store, workspace, keep_versions)
    log.debug("v%d %s: %s", version, "promoted" if decision.promoted else "kept as candidate",
              decision.reason)
