"""The model registry: stages, promotion, rollback and retention.

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

from conveyor.errors import ConveyorError, ModelError
from conveyor.storage import locate
from conveyor.store import Store, schema
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


def previous_production(store: Store) -> int | None:
    """Return the version that was production before the current one, if any."""
    events = store.frame("events")
    promotions = events[events["kind"].isin(["promotion", "rollback"])].sort_values("id")
    current = store.production()
    if current is None or promotions.empty:
        return None
    versions = [int(v) for v in promotions["version"]]
    # walk back from the newest switch to the first one that names another version
    for version in reversed(versions[:-1]):
        if version != current["version"] and store.model(version) is not None:
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
    log.info("v%d is production (%s): %s", version, kind, reason)


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
