"""The input of batch inference: a user's file read and checked, chunk by chunk.

CSV is read as text so every column is written back exactly as the user wrote
it; :func:`features_frame` converts the model's columns to the types seen in
training, refusing values it cannot convert with their column and row.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from conveyor.collect.sources import guess_delimiter, mixed_zones
from conveyor.config import CsvOptions
from conveyor.errors import InputError
from conveyor.io.tables import (
    EXTENSIONS,
    INPUT,
    TableRead,
    check_names,
    csv_header,
    file_kind,
    read_user_table,
    separator,
)
from conveyor.io.userfiles import check_regular_file

FORMATS = EXTENSIONS


def file_format(path: Path) -> str:
    kind = file_kind(path)
    if kind is None:
        raise INPUT.fail(INPUT.unsupported, path, suffix=path.suffix,
                         extensions=sorted(FORMATS))
    return kind


def check_input_file(path: Path) -> None:
    """Refuse a path that is not a readable regular file, saying what it is instead."""
    check_regular_file(path)


def read_input(path: Path, csv: CsvOptions) -> pd.DataFrame:
    """Read the user's file; CSV columns stay text exactly as written."""
    return read_user_table(path, None, TableRead.of(csv, as_text=True, check_header=True))


# the markers pandas reads as missing by default, so as the source is read for training
MISSING_MARKERS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN",
                             "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN",
                             "None", "n/a", "nan", "null"})


def _as_text(values: pd.Series) -> pd.Series:
    """Text cells stripped, with the missing markers as missing; other dtypes unchanged."""
    if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
        return values
    text = values.astype("string").str.strip()
    return text.mask(text.isin(MISSING_MARKERS))


def _arrow_numbers(text: pd.Series) -> pd.Series | None:
    """Text read as numbers by Arrow's parser (a tenth of pandas' time on a CSV chunk);
    None when the column is not text or a value is not a number, so pandas reads it and
    the error names the row."""
    if not pd.api.types.is_string_dtype(text):
        return None
    try:
        parsed = pc.cast(pa.Array.from_pandas(text.astype("string[pyarrow]")), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return pd.Series(parsed.to_numpy(zero_copy_only=False), index=text.index)


def _missing_columns(frame: pd.DataFrame, missing: list[str], schema: dict[str, Any],
                     source: str) -> InputError:
    """The error for absent columns, with near misses and a wrong delimiter pointed out."""
    names = [str(c) for c in frame.columns]
    message = f"'{source}' lacks required column(s) {missing}"
    near = [n for n in names if n not in schema and any(
        n.strip().casefold() == m.casefold() for m in missing)]
    guess = guess_delimiter(names[0], "") if len(names) == 1 else None
    if guess is not None:
        message += (f": it has one column '{names[0][:60]}', so its delimiter looks like "
                    f"{guess!r}; save it with the delimiter of source.csv.delimiter")
    elif near:
        message += (f"; it has {', '.join(map(repr, near))}: names must match exactly (case "
                    "and spaces too)")
    return InputError(f"{message}; the model needs {list(schema)}")


def features_frame(frame: pd.DataFrame, schema: dict[str, dict[str, Any]],
                   source: str, offset: int = 0) -> pd.DataFrame:
    """Return the model's features converted to their training types.

    Empty text and the usual missing markers (``NA``, ``null``...) are missing
    values; a non-number in a numeric column, a non-time in a time column, or times
    with and without a UTC offset in one column are refused.
    """
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise _missing_columns(frame, missing, schema, source)
    out: dict[str, pd.Series] = {}
    for column, spec in schema.items():
        values = frame[column]
        if spec["kind"] == "numeric":
            text = _as_text(values)
            numbers = _arrow_numbers(text)
            if numbers is None:
                numbers = pd.to_numeric(text, errors="coerce")
            bad = numbers.isna() & text.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(f"'{source}' column '{column}' must be numeric; row "
                                 f"{offset + row + 1} holds {values.iloc[row]!r}")
            out[column] = numbers.astype(float)
        elif spec["kind"] == "datetime":
            text = _as_text(values)
            parsed = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
            bad = parsed.isna() & text.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(f"'{source}' column '{column}' must hold timestamps; row "
                                 f"{offset + row + 1} holds {values.iloc[row]!r}")
            mixed = mixed_zones(text)
            if mixed is not None:
                raise InputError(f"'{source}' column '{column}' mixes times with a UTC offset "
                                 f"and naive ones ({mixed[0]!r} vs {mixed[1]!r}); write every "
                                 "value with its offset")
            out[column] = parsed
        else:  # levels are compared as written (unstripped), as in training
            categories = values.astype(object)
            absent = categories.isna() | categories.isin(MISSING_MARKERS)
            out[column] = categories.where(~absent, np.nan)
    return pd.DataFrame(out, index=frame.index)


# ISO 8601 as datetime.fromisoformat reads it: a date, a time to the microsecond, an offset
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?"
                       r"(?:Z|[+-]\d\d:\d\d)?)?")


def _iso_times(values: list[Any], index: pd.Index) -> pd.Series | None:
    """ISO 8601 text (or missing values) as UTC times, read by the standard library; None
    for anything else, or a mix of times with and without an offset (features_frame
    reads those or names the problem)."""
    stamps: list[dt.datetime | None] = []
    naive: set[bool] = set()
    for value in values:
        text = value.strip() if isinstance(value, str) else value
        if text is None or text in MISSING_MARKERS:
            stamps.append(None)
            continue
        if not isinstance(text, str) or ISO_TIME.fullmatch(text) is None:
            return None
        try:
            stamp = dt.datetime.fromisoformat(text)
        except ValueError:  # shaped like a time but not one (minute 99): pandas says why
            return None
        naive.add(stamp.tzinfo is None)
        stamps.append(stamp if stamp.tzinfo is None
                      else stamp.astimezone(dt.UTC).replace(tzinfo=None))
    if len(naive) != 1:  # a mix, or no time at all
        return None
    times = pd.to_datetime(pd.Series(stamps, dtype=object, index=index))
    return times.dt.tz_localize("UTC")


def records_features(records: list[dict[str, Any]], schema: dict[str, dict[str, Any]],
                     source: str = "request") -> pd.DataFrame:
    """:func:`features_frame` of JSON records that hold every column of ``schema``, built
    from the Python values: numbers already numbers and text in category columns need no
    pandas pass per column (for one API row that pass costs more than the prediction).
    Any other column (numbers as text, times) goes through :func:`features_frame`, so
    the frame is the same either way (a test compares them).
    """
    out: dict[str, Any] = {}
    rest: list[str] = []
    index = pd.RangeIndex(len(records))
    for column, spec in schema.items():
        values = [record[column] for record in records]
        kinds = {type(v) for v in values}
        if spec["kind"] == "numeric" and kinds <= {int, float, type(None)}:
            out[column] = np.array([np.nan if v is None else v for v in values], dtype=float)
        elif spec["kind"] == "categorical" and kinds <= {str, type(None)}:
            out[column] = pd.Series([np.nan if v is None or v in MISSING_MARKERS else v
                                     for v in values], index=index, dtype=object)
        elif spec["kind"] != "datetime" or (times := _iso_times(values, index)) is None:
            rest.append(column)
        else:
            out[column] = times
    if rest:
        converted = features_frame(pd.DataFrame({c: [r[c] for r in records] for c in rest}),
                                   {c: schema[c] for c in rest}, source)
        out.update({c: converted[c] for c in rest})
    return pd.DataFrame({c: out[c] for c in schema}, index=index)


def _csv_chunks(path: Path, csv: CsvOptions, block_bytes: int = 1 << 20
                ) -> Iterator[pa.RecordBatch]:
    """Stream a CSV as text columns (values kept exactly as written), block by block.

    Arrow's streaming reader reads up to a fixed number of blocks (~32) ahead of the
    consumer, so its memory is a multiple of the block size: small blocks (1 MiB)
    keep it near 32 MiB whatever the file's size; :func:`_regroup` then joins them
    into chunks large enough for fast prediction. (With 6 MiB blocks the readahead
    held ~200 MiB, and files smaller than that looked cheaper than larger ones.)
    """
    sep = separator(path, csv.delimiter)
    names = csv_header(path, csv.encoding, sep)
    # Arrow parses the header itself: its skip_rows counts lines, not records, so a quoted
    # column name holding a line break (a multi-line header cell) would shift every row
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=block_bytes, encoding=csv.encoding,
                                       use_threads=False),
        parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=False,
            quoted_strings_can_be_null=False, null_values=[]),
    )
    yield from reader


def _regroup(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Join small record batches into tables of at least ``rows`` rows (the last: fewer)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield pa.Table.from_batches(pending)
            pending, count = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def chunks(path: Path, kind: str, csv: CsvOptions, chunk_rows: int
            ) -> Iterator[pa.Table]:
    if kind == "csv":
        yield from _regroup(_csv_chunks(path, csv), chunk_rows)
    elif kind == "parquet":
        parquet = pq.ParquetFile(path)
        check_names(path, parquet.schema_arrow.names)
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            yield pa.Table.from_batches([batch])
    else:  # Excel sheets are limited to ~1M rows: read at once
        yield pa.Table.from_pandas(read_input(path, csv), preserve_index=False)
