"""Read the primary source once into a time-sorted Parquet cache, then by window.

The cache is keyed by the source file's sha256 and the read options, so an
update reads only its window instead of re-parsing the whole file; a changed
file gets a new cache.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from conveyor.config import CsvOptions, SourceConfig, TableConfig
from conveyor.errors import SourceError
from conveyor.io.atomic import atomic_write
from conveyor.io.tables import EXTENSIONS, TableRead, Wording, read_user_table
from conveyor.io.userfiles import check_regular_file

log = logging.getLogger(__name__)


FILE_KINDS = EXTENSIONS  # extension -> reader kind


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _describe(table: TableConfig) -> str:
    if table.kind == "sql":
        where = table.url if table.url else f"sqlite:///{table.path}"
        return f"sql source {where} ({table.table or 'query'})"
    return f"{table.kind} file '{table.path}'"


SOURCE_FILE = Wording(
    SourceError, "file", empty="file '{path}' is empty",
    unreadable="cannot read file '{path}' as {kind}: {reason}",
    undecodable=("file '{path}' is not valid {encoding} text (byte {byte}); "
                 "set csv.encoding to the file's encoding"),
    tidy=True)


def read_file(path: Path, kind: str, csv: CsvOptions, sheet: str | int = 0) -> pd.DataFrame:
    """Read one file of a known kind, with errors that name the file and the fix."""
    frame = read_user_table(path, kind, TableRead.of(csv, sheet=sheet), SOURCE_FILE)
    if kind == "csv" and frame.shape[1] == 1 and len(csv.delimiter) == 1:
        header = str(frame.columns[0])
        guess = guess_delimiter(header, csv.delimiter)
        if guess is not None:
            raise SourceError(
                f"file '{path}' has one column '{header[:60]}': the delimiter looks like "
                f"{guess!r}, not {csv.delimiter!r}; set csv.delimiter"
            )
    return frame


def guess_delimiter(header: str, delimiter: str) -> str | None:
    """Return the delimiter a one-column header seems to use, if not ``delimiter``.

    >>> guess_delimiter("a;b;c", ","), guess_delimiter("a,b", ","), guess_delimiter("ab", ",")
    (';', None, None)
    """
    return next((d for d in (";", "\t", "|", ",") if d in header and d != delimiter), None)


def mixed_zones(values: pd.Series) -> tuple[str, str] | None:
    """Return a zone-aware and a naive example when text timestamps mix both, else None.

    Naive values are read as UTC, so a column mixing the two is ambiguous.

    >>> mixed_zones(pd.Series(["2024-01-01T10:00Z", "2024-01-01 11:00", None]))
    ('2024-01-01T10:00Z', '2024-01-01 11:00')
    >>> mixed_zones(pd.Series(["2024-01-01T10:00+01:00", "2024-01-01T11:00-05:00"])) is None
    True
    """
    if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
        return None
    text = values.dropna().astype(str).str.strip()
    text = text[text != ""]
    aware = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).to_numpy(dtype=bool)
    if not aware.any() or aware.all():
        return None
    return str(text.iloc[int(np.flatnonzero(aware)[0])]), str(
        text.iloc[int(np.flatnonzero(~aware)[0])])


def _sql_engine(table: TableConfig) -> Any:
    from sqlalchemy import create_engine

    if table.path is not None:
        check_regular_file(table.path, "SQLite file", SourceError)
        return create_engine(f"sqlite:///{table.path}")
    return create_engine(str(table.url))


def read_table(table: TableConfig) -> pd.DataFrame:
    """Read a whole table (file or SQL) as a DataFrame."""
    if table.kind != "sql":
        assert table.path is not None  # guaranteed by the config's validation
        return read_file(table.path, table.kind, table.csv, table.sheet)
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    engine = _sql_engine(table)
    try:
        with engine.connect() as conn:
            if table.query is not None:
                return pd.read_sql_query(text(table.query), conn)
            return pd.read_sql_table(str(table.table), conn)
    except (SQLAlchemyError, pd.errors.DatabaseError, ValueError) as exc:
        raise SourceError(f"cannot read {_describe(table)}: {exc}") from None
    finally:
        engine.dispose()


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
    mixed = mixed_zones(raw)
    if mixed is not None:
        raise SourceError(
            f"{where}: time column '{column}' mixes zone-aware and naive timestamps "
            f"({mixed[0]!r} vs {mixed[1]!r}); write every value with its UTC offset (naive "
            "values alone are read as UTC)"
        )
    if parsed.isna().all():
        raise SourceError(f"{where}: time column '{column}' is empty")
    return parsed


NUMERIC_MAJORITY = 0.9


def check_types(frame: pd.DataFrame, where: str, declared_text: set[str]) -> None:
    """Refuse a text column whose values are numbers but for a few: a wrong-type value.

    A column where at least 90 % of the values are numbers is meant to be numeric;
    the stray text is named with its row. Columns listed in ``columns.categorical``
    are taken as text and never checked.
    """
    for column in frame.columns:
        values = frame[column]
        if column in declared_text or not (values.dtype == object
                                           or pd.api.types.is_string_dtype(values)):
            continue
        present = values.dropna()
        present = present[present.astype(str).str.strip() != ""]
        if present.empty:
            continue
        numbers = pd.to_numeric(present, errors="coerce")
        share = float(numbers.notna().mean())
        if NUMERIC_MAJORITY <= share < 1.0:
            bad = numbers.isna().to_numpy()
            row = present.index[int(np.flatnonzero(bad)[0])]
            raise SourceError(
                f"{where}: column '{column}' is numeric but row {row} holds "
                f"{present.loc[row]!r} ({int(bad.sum())} such value(s)); fix the data, or list "
                "the column under columns.categorical if it is really text"
            )


def check_columns(frame: pd.DataFrame, time_column: str, target: str, where: str,
                  declared_text: set[str] | None = None) -> pd.DataFrame:
    """Check the stream's required columns and types; parse the time column to UTC."""
    if frame.empty:
        raise SourceError(f"{where} has a header but no rows")
    if target not in frame.columns:
        raise SourceError(f"{where} has no target column '{target}' (columns: "
                          f"{', '.join(map(str, frame.columns))}); set target.column")
    frame = frame.copy()
    frame[time_column] = parse_time(frame, time_column, where)
    check_types(frame.drop(columns=[time_column]), where, declared_text or set())
    return frame


def cache_key(content: str, table: TableConfig) -> str:
    """The name part of a Parquet cache of ``table``: its content's sha256 and its read
    settings (where the file lies is not part of it)."""
    settings = table.model_dump_json(exclude={"path"})
    return hashlib.sha256((content + settings).encode()).hexdigest()[:16]


def build_cache(source: SourceConfig, target: str, cache_dir: Path,
                declared_text: set[str] | None = None) -> Path:
    """Return the time-sorted Parquet cache of the source, building it on first use.

    Files are keyed by their sha256; a SQL source is read and keyed by its content.
    """
    if source.kind == "sql":
        table = read_table(source)
        content = pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes()
        frame: pd.DataFrame | None = table
        key_text = hashlib.sha256(content).hexdigest()
    else:
        assert source.path is not None
        check_regular_file(source.path, "source file", SourceError, hint=(
            " (source.path in the config); for the bundled demo data run `conveyor demo "
            "--prepare-only` (or `make demo`)"))
        frame, key_text = None, file_sha256(source.path)
    cache = cache_dir / f"source-{cache_key(key_text, source)}.parquet"
    if cache.exists():
        return cache
    log.info("indexing %s (once per version of the data)", _describe(source))
    if frame is None:
        frame = read_table(source)
    frame = check_columns(frame, source.time_column, target, _describe(source), declared_text)
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


def count_rows(cache: Path) -> int:
    """Return the number of rows in the cached source."""
    return int(pq.ParquetFile(cache).metadata.num_rows)


def read_rows(cache: Path, start: int, stop: int) -> pd.DataFrame:
    """Return rows ``start <= i < stop`` of the time-sorted cache (row-count batches)."""
    table = pq.read_table(cache)
    return table.slice(start, max(stop - start, 0)).to_pandas()
