"""``source.kind`` csv, parquet, excel or sql: the source's time-sorted cache, cut into
windows (or row-count batches), one per update step."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from conveyor.collect import sources, stream
from conveyor.collect.protocol import Batch
from conveyor.config import Config
from conveyor.store import Store
from conveyor.workspace import Workspace


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


class TableStream:
    """A file or SQL table read once into the cache; the cursor is the next window index."""

    def __init__(self, config: Config, cache: Path) -> None:
        self.config, self.cache = config, cache

    @classmethod
    def open(cls, config: Config, workspace: Workspace, store: Store) -> TableStream:
        """Build (or reuse) the source's cache."""
        cache = sources.build_cache(config.source, config.target.source_column, workspace.cache,
                                    set(config.columns.categorical or []))
        return cls(config, cache)

    def next_batch(self, cursor: int) -> Batch | None:
        found = next_from_stream(self.config, self.cache, cursor)
        if found is None:
            return None
        window, frame = found
        return Batch(window, frame, str(self.config.source.path or "sql"))

    def windows_left(self, cursor: int) -> int:
        """How many non-empty windows (or row batches) start at or after ``cursor``."""
        import pyarrow.parquet as pq

        if self.config.stream.rows is not None:
            total = pq.ParquetFile(self.cache).metadata.num_rows
            return max(0, -(-total // self.config.stream.rows) - cursor)
        time_column = self.config.source.time_column
        times = pd.Series(pq.read_table(self.cache, columns=[time_column]).column(0)
                          .to_pandas())
        origin = times.min()
        width = stream.window_width(self.config.stream.window)
        indexes = ((times - origin) // width).astype("int64")
        return int(indexes[indexes >= cursor].nunique())

    def message(self, ingested: int) -> str:
        if not ingested:
            return "stream exhausted: no new data after the last window; nothing to update"
        return f"ingested {ingested} batch(es)"
