"""Enrichment: secondary tables joined to each batch by key, or as of time.

An as-of join takes, for every stream row, the secondary row with the same
keys and the nearest earlier (or equal) timestamp within ``tolerance``, so a
weather table keyed by hour fills flights whose exact hour is missing.
Columns come from the secondary table with an optional prefix; the stream's
own columns are never changed and its row order is kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from conveyor.collect.sources import cache_key, file_sha256, parse_time, read_table
from conveyor.config import Config, EnrichConfig
from conveyor.errors import InputError, SourceError
from conveyor.io.cache import cached_frame
from conveyor.prepare.history import HistoryIndex
from conveyor.store import Store
from conveyor.workspace import Workspace

log = logging.getLogger(__name__)


def load_enrichment(spec: EnrichConfig, cache_dir: Path | None = None) -> pd.DataFrame:
    """Read a secondary table and keep its keys, time and the columns to add.

    With ``cache_dir``, a table read from a file (a CSV, a spreadsheet, a SQLite file)
    is kept there as Parquet, keyed by the file's sha256 and the table's settings:
    a spreadsheet takes a second to parse, and inference, the API and every update
    read the same table again.
    """
    return cached_frame(_cache_path(spec, cache_dir), lambda: _load(spec))


def _cache_path(spec: EnrichConfig, cache_dir: Path | None) -> Path | None:
    """Where a file table's cache lives, or None (no cache folder, a server database)."""
    if cache_dir is None or spec.path is None or not spec.path.is_file():
        return None
    return cache_dir / f"enrich-{cache_key(file_sha256(spec.path), spec)}.parquet"


def _load(spec: EnrichConfig) -> pd.DataFrame:
    table = read_table(spec)
    where = f"enrichment '{spec.name}'"
    missing = [c for c in [*spec.keys, *([spec.time_column] if spec.time_column else [])]
               if c not in table.columns]
    if missing:
        raise SourceError(f"{where} lacks key column(s) {missing}; check enrich[].keys / "
                          "time_column")
    keys = [*spec.keys, *([spec.time_column] if spec.time_column else [])]
    columns = spec.columns or [c for c in table.columns if c not in keys]
    unknown = [c for c in columns if c not in table.columns]
    if unknown:
        raise SourceError(f"{where} has no column(s) {unknown}; check enrich[].columns")
    table = table[keys + columns].copy()
    if spec.time_column:
        table[spec.time_column] = parse_time(table, spec.time_column, where)
    else:
        duplicated = table.duplicated(subset=spec.keys)
        if duplicated.any():
            log.warning("%s: %d duplicate key rows; keeping the first", where,
                        int(duplicated.sum()))
            table = table[~duplicated]
    return table.rename(columns={c: spec.prefix + c for c in columns})


def prepared(table: pd.DataFrame, spec: EnrichConfig) -> pd.DataFrame:
    """The secondary table as :func:`join` merges it: keys as text, the time as
    nanoseconds in ``__time``, rows without a key dropped, sorted by time. Build it once
    to join many small batches (API requests) to the same table."""
    right = table.copy()
    for key in spec.keys:  # keys compared as text so 'N123' and categorical codes line up
        right[key] = right[key].astype("string")
    if spec.time_column is None:
        return right
    right["__time"] = right.pop(spec.time_column).dt.as_unit("ns")
    return right.dropna(subset=spec.keys).sort_values("__time", kind="stable")


def join(batch: pd.DataFrame, table: pd.DataFrame, spec: EnrichConfig,
         stream_time: str, ready: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return ``batch`` with the secondary table's columns appended (``ready``: the
    table already :func:`prepared`).

    >>> batch = pd.DataFrame({"k": ["a", "a", "b"], "t": pd.to_datetime(
    ...     ["2024-01-01 10:30", "2024-01-01 13:00", "2024-01-01 10:00"], utc=True)})
    >>> weather = pd.DataFrame({"k": ["a", "a", "b"], "t": pd.to_datetime(
    ...     ["2024-01-01 10:00", "2024-01-01 11:00", "2024-01-01 09:00"], utc=True),
    ...     "temp": [1.0, 2.0, 3.0]})
    >>> spec = EnrichConfig(name="w", kind="csv", path="x", keys=["k"], time_column="t",
    ...                     tolerance="1h")
    >>> join(batch, weather, spec, "t")["temp"].tolist()
    [1.0, nan, 3.0]
    """
    added = [c for c in table.columns if c not in spec.keys and c != spec.time_column]
    clash = [c for c in added if c in batch.columns]
    if clash:
        raise SourceError(f"enrichment '{spec.name}' would overwrite column(s) {clash}; set "
                          "enrich[].prefix or enrich[].columns")
    missing = [c for c in spec.keys if c not in batch.columns]
    if missing:
        raise SourceError(f"enrichment '{spec.name}': the stream lacks key column(s) {missing}")
    if batch.empty:
        return batch.assign(**{c: pd.Series(dtype=table[c].dtype) for c in added})
    left = batch[spec.keys].copy()
    left["__row"] = range(len(batch))
    for key in spec.keys:
        left[key] = left[key].astype("string")
    right = prepared(table, spec) if ready is None else ready
    if spec.time_column is None:
        merged = left.merge(right, on=spec.keys, how="left")
    else:
        time_key = spec.stream_time_column or stream_time
        left["__time"] = batch[time_key].dt.as_unit("ns").to_numpy()
        left = left.dropna(subset=spec.keys).sort_values("__time", kind="stable")
        tolerance = pd.Timedelta(spec.tolerance) if spec.tolerance else None
        merged = pd.merge_asof(left, right, on="__time", by=spec.keys, direction="backward",
                               tolerance=tolerance)
    values = merged.set_index("__row")[added].reindex(range(len(batch)))
    values.index = batch.index
    return pd.concat([batch, values], axis=1)


def enrich(batch: pd.DataFrame, tables: list[tuple[EnrichConfig, pd.DataFrame]],
           stream_time: str, ready: list[pd.DataFrame] | None = None) -> pd.DataFrame:
    """Apply every enrichment in config order (``ready``: the tables :func:`prepared`)."""
    for i, (spec, table) in enumerate(tables):
        batch = join(batch, table, spec, stream_time, None if ready is None else ready[i])
    return batch


@dataclass(frozen=True)
class Enricher:
    """Joins the enrichment tables to prediction input that lacks their columns, and adds
    the history features (:mod:`conveyor.prepare.history`) from the ingested rows.

    ``added`` names the columns the tables and the history provide, so callers know
    which of a model's inputs a user need not send.
    """

    tables: list[tuple[EnrichConfig, pd.DataFrame]]
    added: frozenset[str]
    features: tuple[str, ...]
    time_column: str
    history: HistoryIndex | None = None
    history_mark: int | None = None  # the newest batch the history holds
    # each table as the join merges it, built once: copying, re-typing and sorting a
    # 26,000-row weather table took longer than the model's prediction of one request
    ready: list[pd.DataFrame] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ready", [prepared(t, spec) for spec, t in self.tables])

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        if all(c in frame.columns for c in self.features):
            return frame
        time_column = self.time_column
        if self.needs_time and time_column not in frame.columns:
            needed = " and ".join(
                (["join the enrichment tables"] if self.joins_as_of else [])
                + (["compute the history features"] if self.history is not None else []))
            raise InputError(f"the input lacks the time column '{time_column}' needed to "
                             f"{needed} (or give their columns directly)")
        base = frame.drop(columns=[c for c in self.added if c in frame.columns])
        if time_column in base.columns:
            base[time_column] = parse_time(base, time_column, "the input")
        joined = enrich(base, self.tables, time_column, self.ready)
        if self.history is not None:
            joined = pd.concat([joined, self.history.features(joined)], axis=1)
        kept = [c for c in frame.columns if c in self.added]
        joined[kept] = frame[kept]
        return joined

    @property
    def joins_as_of(self) -> bool:
        """Whether a table is joined as of the rows' time."""
        return any(spec.time_column for spec, _ in self.tables)

    @property
    def needs_time(self) -> bool:
        """Whether the input's rows need their time: an as-of join or history features."""
        return self.joins_as_of or self.history is not None


def make_enricher(config: Config, features: list[str],
                  store: Store | None = None) -> Enricher | None:
    """Return the enricher for a model's input columns, or None when it needs none.

    History features the model reads are computed from the ingested batches in their
    horizon (read through ``store``, the workspace's catalog)."""
    history = [h for h in config.features.history if h.output in features]
    if not config.enrich and not history:
        return None
    workspace = Workspace.of(config)
    cache = workspace.cache if workspace.root.exists() else None
    tables = [(spec, load_enrichment(spec, cache)) for spec in config.enrich]
    added = frozenset(c for spec, table in tables for c in table.columns
                      if c not in spec.keys and c != spec.time_column)
    if not history:
        return Enricher(tables, added, tuple(features), config.source.time_column)
    index, mark = recent_history(config, workspace, store, [h.output for h in history])
    return Enricher(tables, added | {h.output for h in history}, tuple(features),
                    config.source.time_column, index, mark)


def recent_history(config: Config, workspace: Workspace, store: Store | None,
                   names: list[str]) -> tuple[HistoryIndex, int | None]:
    """The history index of rows not ingested yet: every accepted batch in the horizon
    of the newest one; and the newest batch's id."""
    from conveyor.train.data import BatchFrames, history_batches

    opened = store is None
    store = Store.open(workspace.db_url) if store is None else store
    try:
        catalog = store.accepted_batches()
    finally:
        if opened:
            store.close()
    batches = history_batches(config, catalog)
    rows = BatchFrames(config, workspace).history(batches)
    return HistoryIndex(config, rows, names), catalog[-1]["id"] if catalog else None
