"""Explicit schema migrations: each step upgrades the database by one version.

A step is a list of DDL statements that SQLite and PostgreSQL both accept
(``ADD COLUMN`` of nullable columns, ``INSERT ... SELECT``) or of functions
of the connection (for a new table that must be filled); other new tables are
created by ``metadata.create_all`` after the steps run. Everything runs in the same
transaction as the version bump, so an interrupted upgrade leaves the old
schema in place.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, insert, select, text

from conveyor.store import schema


def _promotions_from_events(conn: Connection) -> None:
    """The history of production switches, until now kept only as events."""
    schema.promotions.create(conn)
    events = schema.events
    rows = conn.execute(select(events.c.at, events.c.kind, events.c.version, events.c.batch_id)
                        .where(events.c.kind.in_(["promotion", "rollback"]))
                        .where(events.c.version.is_not(None))
                        .order_by(events.c.id)).mappings().all()
    if rows:
        conn.execute(insert(schema.promotions), [dict(r) for r in rows])


MIGRATIONS: dict[int, list[str | Callable[[Connection], None]]] = {
    # 1 -> 2: preprocessing variants, training strategy, lineage of incremental updates,
    # route counts of inference calls (new tables: drift, profiles, bin_edges)
    2: [
        "ALTER TABLE evaluations ADD COLUMN variant VARCHAR(32)",
        "ALTER TABLE models ADD COLUMN variant VARCHAR(32)",
        "ALTER TABLE models ADD COLUMN strategy VARCHAR(16)",
        "ALTER TABLE models ADD COLUMN strategy_note TEXT",
        "ALTER TABLE models ADD COLUMN parent_version INTEGER",
        "ALTER TABLE inference_log ADD COLUMN route_counts JSON",
    ],
    # 2 -> 3: successive halving's cheaper rungs are stored with the rows they fitted on
    3: [
        "ALTER TABLE evaluations ADD COLUMN train_rows INTEGER",
        "ALTER TABLE evaluations ADD COLUMN rung INTEGER",
    ],
    # 3 -> 4: state of its own instead of events read back: the training window's anchor
    # (meta.window_anchor, from the newest window_reset) and production's history
    # (the promotions table, from the promotion and rollback events)
    4: [
        "INSERT INTO meta (key, value) SELECT 'window_anchor', "
        "CAST(MAX(batch_id) AS VARCHAR(32)) FROM events "
        "WHERE kind = 'window_reset' AND batch_id IS NOT NULL GROUP BY kind",
        _promotions_from_events,
    ],
}


def upgrade(conn: Connection, current: int, target: int) -> list[int]:
    """Run the steps from ``current`` to ``target``; return the versions applied.

    >>> sorted(MIGRATIONS)[0]
    2
    """
    applied = []
    for version in range(current + 1, target + 1):
        for statement in MIGRATIONS.get(version, []):
            if callable(statement):
                statement(conn)
            else:
                conn.execute(text(statement))
        applied.append(version)
    return applied
