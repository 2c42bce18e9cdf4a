"""Small repository functions over the metadata database.

Everything the pipeline records goes through :class:`Store`; reports read
tables back as DataFrames. SQLite runs in WAL mode with a busy timeout so
readers (inference, summary) never block the one writer (update).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import OperationalError

from conveyor.errors import ConveyorError
from conveyor.store import migrations, schema
from conveyor.store.schema import SCHEMA_VERSION

log = logging.getLogger(__name__)


def utcnow() -> str:
    """Return the current UTC time as an ISO-8601 string (seconds precision)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # the busy timeout first: switching a new database to WAL needs a lock that a process
    # opening it at the same moment may hold
    cursor.execute("PRAGMA busy_timeout=30000")
    # switching a new database to WAL takes an exclusive lock, and SQLite may answer
    # "database is locked" at once rather than call the busy handler while another
    # process opening it holds a shared lock (seen with six processes on a new
    # workspace): retry for as long as the busy timeout would have waited
    deadline = time.monotonic() + 30
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) \
                    or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """The metadata database of one workspace."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect, create the schema on first use, and check its version."""
        engine = create_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        try:
            store._init_schema()
        except OperationalError as exc:
            raise ConveyorError(f"cannot open the metadata database {url}: {exc.orig}") from None
        return store

    def _init_schema(self) -> None:
        """Create a new database, or upgrade an older one step by step (see migrations).

        Several processes may open a new or older workspace at the same moment (an
        update, an API worker, ``status``): the version and the tables are read first
        without writing; creation or migration then runs in one transaction that holds
        the database's write lock from its first statement and reads the version again
        under it, so exactly one process creates or upgrades the schema and the others
        find it done.
        """
        with self.engine.connect() as conn:
            found = _schema_version(conn)
            tables = set(inspect(conn).get_table_names())
        if found == SCHEMA_VERSION and set(schema.metadata.tables) <= tables:
            return
        _refuse_newer(found)
        with self.engine.begin() as conn:
            _lock_schema(conn)
            found = _schema_version(conn)
            _refuse_newer(found)
            if found is not None and found < SCHEMA_VERSION:
                applied = migrations.upgrade(conn, found, SCHEMA_VERSION)
                log.info("upgraded the metadata database schema %s -> %s (steps %s)",
                         found, SCHEMA_VERSION, applied)
                conn.execute(update(schema.meta).where(schema.meta.c.key == "schema_version")
                             .values(value=str(SCHEMA_VERSION)))
            schema.metadata.create_all(conn)
            if found is None:
                conn.execute(insert(schema.meta).values(key="schema_version",
                                                        value=str(SCHEMA_VERSION)))

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: everything inside commits together or not at all.

        When the database refuses to write (disk full, read-only file, locked too
        long) the transaction is rolled back and a ConveyorError gives the
        database's reason on one line (not the statement and its parameters).
        """
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            reason = " ".join(str(exc.orig).split())
            raise ConveyorError(f"the metadata database refused a write: {reason}; the "
                                "transaction was rolled back (check the free disk space and "
                                "the workspace's permissions)") from exc

    # -- batches --------------------------------------------------------------------------

    def next_window_index(self) -> int:
        """Return the index of the next window to ingest: the stream cursor."""
        with self.engine.connect() as conn:
            last = conn.execute(select(func.max(schema.batches.c.window_index))).scalar()
        return 0 if last is None else int(last) + 1

    # -- drift profiles -------------------------------------------------------------------

    def bin_edges(self) -> dict[str, np.ndarray]:
        """The fixed numeric bin edges per column (see analyze.drift); ±inf stored as text."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(schema.bin_edges)).mappings().all()
        return {r["column"]: np.asarray([float(e) for e in r["edges"]]) for r in rows}

    def stored_profiles(self, batch_ids: list[int]) -> dict[str, list[Any]]:
        """The stored drift profiles (JSON) of ``batch_ids``, per column;
        :func:`conveyor.analyze.drift.merge_reference` combines them."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(schema.profiles).where(
                schema.profiles.c.batch_id.in_(list(batch_ids)))).mappings().all()
        by_column: dict[str, list[Any]] = {}
        for row in rows:
            by_column.setdefault(row["column"], []).append(row["profile"])
        return by_column

    def batch(self, batch_id: int) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.batches).where(schema.batches.c.id == batch_id)
            ).mappings().first()
        if row is None:
            raise ConveyorError(f"no batch {batch_id} in the metadata database")
        return dict(row)

    def batch_by_sha(self, sha256: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.batches).where(schema.batches.c.sha256 == sha256)
            ).mappings().first()
        return dict(row) if row else None

    def add_batch(self, conn: Connection, **values: Any) -> int:
        values.setdefault("ingested_at", utcnow())
        result = conn.execute(insert(schema.batches).values(**values))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def inbox_file_by_sha(self, sha256: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.inbox_files).where(schema.inbox_files.c.sha256 == sha256)
                .where(schema.inbox_files.c.status == "ingested")
            ).mappings().first()
        return dict(row) if row else None

    def batch_columns(self, batch_id: int) -> list[str]:
        """Return the column names a batch had, from its stored meta-parameters."""
        with self.engine.connect() as conn:
            return list(conn.execute(
                select(schema.column_stats.c.column)
                .where(schema.column_stats.c.batch_id == batch_id)
            ).scalars())

    def column_stats(self, batch_ids: Sequence[int]) -> pd.DataFrame:
        """Return the stored meta-parameters of these batches."""
        table = schema.column_stats
        with self.engine.connect() as conn:
            result = conn.execute(select(table).where(table.c.batch_id.in_(list(batch_ids))))
            return pd.DataFrame(result.mappings().all(), columns=list(result.keys()))

    def meta_value(self, key: str) -> str | None:
        """Return a workspace-wide setting kept in the ``meta`` table."""
        with self.engine.connect() as conn:
            return _meta_in(conn, key)

    def set_meta_value(self, conn: Connection, key: str, value: str | None) -> None:
        """Keep a workspace-wide setting in the ``meta`` table (None: remove it), in
        ``conn``'s transaction."""
        conn.execute(delete(schema.meta).where(schema.meta.c.key == key))
        if value is not None:
            conn.execute(insert(schema.meta).values(key=key, value=value))

    def window_anchor(self) -> int | None:
        """Return the batch id the training window starts at (set by drift handling)."""
        value = self.meta_value("window_anchor")
        return None if value is None else int(value)

    def set_window_anchor(self, conn: Connection, batch_id: int) -> None:
        """Start the training window at ``batch_id`` from now on (never before an earlier
        anchor), in ``conn``'s transaction."""
        current = _meta_in(conn, "window_anchor")
        self.move_window_anchor(conn, batch_id if current is None else
                                max(int(current), batch_id))

    def move_window_anchor(self, conn: Connection, batch_id: int | None) -> None:
        """Start the training window at ``batch_id`` (None: no anchor, the newest
        ``train.window_batches``), earlier or later than before, in ``conn``'s transaction:
        drift handling by evidence may give history back."""
        self.set_meta_value(conn, "window_anchor", None if batch_id is None else str(batch_id))

    def accepted_batches(self, limit: int | None = None,
                         min_id: int | None = None) -> list[dict[str, Any]]:
        """Return the newest ``limit`` accepted batches (None: all; id >= ``min_id``),
        oldest first."""
        query = select(schema.batches).where(schema.batches.c.status == "accepted")
        if min_id is not None:
            query = query.where(schema.batches.c.id >= min_id)
        with self.engine.connect() as conn:
            rows = conn.execute(
                query.order_by(schema.batches.c.window_index.desc()).limit(limit)
            ).mappings().all()
        return [dict(r) for r in reversed(rows)]

    # -- generic inserts ------------------------------------------------------------------

    def insert_rows(self, conn: Connection, table: str,
                    rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            conn.execute(insert(schema.metadata.tables[table]), [dict(r) for r in rows])

    def add_event(self, conn: Connection, kind: str, message: str,
                  batch_id: int | None = None, version: int | None = None) -> None:
        conn.execute(insert(schema.events).values(
            at=utcnow(), kind=kind, message=message, batch_id=batch_id, version=version))

    def record(self, table: str, **values: Any) -> None:
        """Insert one row in its own transaction."""
        with self.transaction() as conn:
            conn.execute(insert(schema.metadata.tables[table]).values(**values))

    # -- models ---------------------------------------------------------------------------

    def next_version(self) -> int:
        with self.engine.connect() as conn:
            last = conn.execute(select(func.max(schema.models.c.version))).scalar()
        return 1 if last is None else int(last) + 1

    def model(self, version: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.models).where(schema.models.c.version == version)
            ).mappings().first()
        return dict(row) if row else None

    def production(self) -> dict[str, Any] | None:
        """Return the production model's row, or None before the first promotion."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(schema.models).where(schema.models.c.stage == "production")
            ).mappings().first()
        return dict(row) if row else None

    def first_production(self) -> dict[str, Any] | None:
        """Return the first model ever promoted: the never-updated baseline.

        None before the first promotion, and once retention deleted the baseline's
        files (stage ``deleted``): it can no longer be loaded, and scoring it must
        not fail every later update.
        """
        with self.engine.connect() as conn:
            version = conn.execute(
                select(schema.promotions.c.version)
                .where(schema.promotions.c.kind == "promotion")
                .order_by(schema.promotions.c.id)
                .limit(1)
            ).scalar()
        row = None if version is None else self.model(int(version))
        return None if row is None or row["stage"] == "deleted" else row

    def promote(self, conn: Connection, version: int, reason: str,
                batch_id: int | None = None, kind: str = "promotion") -> None:
        """Make ``version`` production and archive the previous one, in ``conn``'s transaction."""
        conn.execute(update(schema.models).where(schema.models.c.stage == "production")
                     .values(stage="archived"))
        conn.execute(update(schema.models).where(schema.models.c.version == version)
                     .values(stage="production", reason=reason))
        conn.execute(insert(schema.promotions).values(at=utcnow(), kind=kind, version=version,
                                                      batch_id=batch_id))
        self.add_event(conn, kind, reason, batch_id=batch_id, version=version)

    def production_history(self) -> list[tuple[str, int]]:
        """Every switch of production, oldest first: (kind, version), kind ``promotion`` or
        ``rollback``."""
        with self.engine.connect() as conn:
            return [(str(kind), int(v)) for kind, v in conn.execute(
                select(schema.promotions.c.kind, schema.promotions.c.version)
                .order_by(schema.promotions.c.id))]

    # -- reading for reports --------------------------------------------------------------

    def frame(self, table: str) -> pd.DataFrame:
        """Return a whole table as a DataFrame (reports only read stored figures)."""
        with self.engine.connect() as conn:
            result = conn.execute(select(schema.metadata.tables[table]))
            return pd.DataFrame(result.mappings().all(), columns=list(result.keys()))

    def count(self, table: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(
                select(func.count()).select_from(schema.metadata.tables[table])).scalar() or 0)


def _schema_version(conn: Connection) -> int | None:
    """Return the database's schema version, or None for a new (empty) database."""
    if not inspect(conn).has_table("meta"):
        return None
    row = conn.execute(
        select(schema.meta.c.value).where(schema.meta.c.key == "schema_version")).scalar()
    return None if row is None else int(row)


def _refuse_newer(found: int | None) -> None:
    if found is not None and found > SCHEMA_VERSION:
        raise ConveyorError(
            f"the workspace database has schema version {found}, newer than this "
            f"conveyor ({SCHEMA_VERSION}); upgrade conveyor"
        )


def _lock_schema(conn: Connection) -> None:
    """Take the database's write lock for the rest of ``conn``'s transaction.

    SQLite: ``BEGIN IMMEDIATE`` (Python's sqlite3 driver would otherwise run the
    DDL outside any transaction, one statement at a time). PostgreSQL: a
    transaction-scoped advisory lock. Other databases: nothing.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})


_SCHEMA_LOCK_KEY = 0x636F6E76  # "conv": the advisory lock id of schema creation


def dumps(value: Any) -> str:
    """JSON text for values that may hold numpy scalars."""
    return json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o))


def _meta_in(conn: Connection, key: str) -> str | None:
    """A ``meta`` value as ``conn`` sees it (inside its transaction, if any)."""
    value = conn.execute(select(schema.meta.c.value).where(schema.meta.c.key == key)).scalar()
    return None if value is None else str(value)
