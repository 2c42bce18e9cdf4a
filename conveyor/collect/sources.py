"""Read the primary source once into a time-sorted Parquet cache, then by window.

The cache is keyed by the source file's sha256 and the read options, so an
update reads only its window instead of re-parsing the whole file; a changed
file gets a new cache.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from conveyor.config import SourceConfig
from conveyor.errors import SourceError
from conveyor.workspace import atomic_write

log = logging.getLogger(__name__)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_table(source: SourceConfig) -> pd.DataFrame:
    """Read the whole source file as a DataFrame, with errors that name the file."""
    path = source.path
    if not path.is_file():
        raise SourceError(f"source file '{path}' not found (source.path in the config)")
    try:
        if source.kind == "csv":
            frame = pd.read_csv(path, sep=source.csv.delimiter, encoding=source.csv.encoding,
                                decimal=source.csv.decimal, low_memory=False)
        elif source.kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_excel(path, sheet_name=source.sheet, engine="openpyxl")
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"source file '{path}' is not valid {source.csv.encoding} text (byte {exc.start}); "
            "set source.csv.encoding to the file's encoding"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as exc:
        raise SourceError(f"cannot read source file '{path}' as {source.kind}: {exc}") from None
    if frame.empty:
        raise SourceError(f"source file '{path}' has no rows")
    return frame


def parse_time(frame: pd.DataFrame, column: str, where: str) -> pd.Series:
    """Parse ``column`` to UTC timestamps; fail naming the first bad value and its row."""
    if column not in frame.columns:
        raise SourceError(
            f"{where} has no time column '{column}' (columns: {', '.join(map(str, frame.columns))})"
            "; set source.time_column"
        )
    raw = frame[column]
    try:
        parsed = pd.to_datetime(raw, utc=True, errors="coerce", format="mixed")
    except (TypeError, ValueError) as exc:
        raise SourceError(f"{where}: time column '{column}' cannot be parsed: {exc}") from None
    bad = parsed.isna() & raw.notna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise SourceError(
            f"{where}: time column '{column}' has {int(bad.sum())} unparseable value(s), "
            f"first at row {row}: {raw.iloc[row]!r}"
        )
    if parsed.isna().all():
        raise SourceError(f"{where}: time column '{column}' is empty")
    return parsed


def build_cache(source: SourceConfig, target: str, cache_dir: Path) -> Path:
    """Return the time-sorted Parquet cache of the source, building it on first use."""
    if not source.path.is_file():
        raise SourceError(f"source file '{source.path}' not found (source.path in the config)")
    options = source.model_dump_json(exclude={"path"})
    key = hashlib.sha256((file_sha256(source.path) + options).encode()).hexdigest()[:16]
    cache = cache_dir / f"source-{key}.parquet"
    if cache.exists():
        return cache
    log.info("indexing source %s (once per file version)", source.path)
    frame = read_table(source)
    where = f"source file '{source.path}'"
    if target not in frame.columns:
        raise SourceError(f"{where} has no target column '{target}'; set target.column")
    frame[source.time_column] = parse_time(frame, source.time_column, where)
    frame = frame.dropna(subset=[source.time_column])
    frame = frame.sort_values(source.time_column, kind="stable").reset_index(drop=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    atomic_write(cache, lambda tmp: pq.write_table(table, tmp, row_group_size=65536))
    return cache


def time_bounds(cache: Path, time_column: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the first and last timestamp of the cached source."""
    times = pq.read_table(cache, columns=[time_column]).column(0)
    first = pd.Timestamp(pa.compute.min(times).as_py())
    last = pd.Timestamp(pa.compute.max(times).as_py())
    return first, last


def read_window(cache: Path, time_column: str, start: pd.Timestamp,
                end: pd.Timestamp) -> pd.DataFrame:
    """Return the rows with ``start <= time < end``, in source order."""
    table = pq.read_table(cache, filters=[(time_column, ">=", start.to_pydatetime()),
                                          (time_column, "<", end.to_pydatetime())])
    return table.to_pandas()


def first_time_at_or_after(cache: Path, time_column: str,
                           start: pd.Timestamp) -> pd.Timestamp | None:
    """Return the first timestamp ``>= start``, or None at the end of the stream."""
    times = pq.read_table(cache, columns=[time_column],
                          filters=[(time_column, ">=", start.to_pydatetime())]).column(0)
    if len(times) == 0:
        return None
    return pd.Timestamp(pa.compute.min(times).as_py())
