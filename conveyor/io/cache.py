"""Frames kept as Parquet in the workspace cache: read when present and usable, else
built and written (atomically; a cache that cannot be written is only not kept)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from conveyor.io.atomic import atomic_write

log = logging.getLogger(__name__)


def cached_frame(path: Path | None, build: Callable[[], pd.DataFrame],
                 usable: Callable[[pd.DataFrame], bool] = lambda frame: True) -> pd.DataFrame:
    """The frame kept at ``path`` when it reads and is ``usable``; else ``build()``, kept
    there for next time (``path`` None: no cache)."""
    if path is not None and path.exists():
        try:
            kept = pq.read_table(path).to_pandas()
            if usable(kept):
                return kept
            log.warning("ignoring the cache %s: it does not fit what it stands for", path)
        except (OSError, pa.ArrowException) as exc:  # built again below
            log.warning("ignoring unreadable cache %s: %s", path, exc)
    frame = build()
    if path is not None:
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            atomic_write(path, lambda tmp: pq.write_table(table, tmp))
        except (OSError, pa.ArrowException) as exc:  # a cache is optional
            log.debug("%s not cached: %s", path.name, exc)
    return frame
