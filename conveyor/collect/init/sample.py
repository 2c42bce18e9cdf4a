"""Read the first rows of a data file for ``conveyor init``, sniffing CSV options.

CSV: delimiter and encoding sniffed from the first lines, the decimal mark from
the sampled values; Parquet by row groups; Excel via ``nrows``. The time column
of the whole file is read on its own where that is cheap.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from conveyor.collect.init.columns import TIME_SHARE
from conveyor.collect.sources import FILE_KINDS, parse_time
from conveyor.errors import InputError, SourceError
from conveyor.io.tables import TableRead, Wording, read_user_table
from conveyor.io.userfiles import check_regular_file

log = logging.getLogger(__name__)

SAMPLE_ROWS = 200_000
DELIMITERS = (",", ";", "\t", "|")
ENCODINGS = ("utf-8", "cp1252", "latin-1")
_DECIMAL_COMMA = re.compile(r"^[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+),\d+$")


@dataclass(frozen=True)
class Sample:
    """The first rows of a data file and how they were read."""

    path: Path
    kind: str
    frame: pd.DataFrame
    truncated: bool
    options: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def source_kind(path: Path) -> str:
    """Return the reader kind of a data file from its extension."""
    try:
        return FILE_KINDS[path.suffix.lower()]
    except KeyError:
        raise InputError(f"cannot tell the format of '{path}' from its extension; use one of "
                         f"{', '.join(sorted(FILE_KINDS))}") from None


def sniff_delimiter(text: str) -> str:
    """Return the delimiter that splits the first lines into the most, equally wide, fields.

    >>> sniff_delimiter("a;b;c\\n1;2,5;3\\n")
    ';'
    >>> sniff_delimiter('x,"y;z"\\n1,2\\n')
    ','
    """
    best, best_width = ",", 1
    for delimiter in DELIMITERS:
        rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if r][:50]
        if not rows:
            continue
        width = len(rows[0])
        if width > best_width and sum(len(r) == width for r in rows) >= 0.9 * len(rows):
            best, best_width = delimiter, width
    return best


def _head_text(path: Path, size: int = 1 << 16) -> tuple[str, str]:
    """Return the first complete lines of a text file and the encoding that decodes them."""
    with open(path, "rb") as handle:
        data = handle.read(size)
    if len(data) == size and b"\n" in data:
        data = data[: data.rindex(b"\n") + 1]  # a newline never splits a UTF-8 character
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding).removeprefix("\ufeff"), encoding
        except UnicodeDecodeError:
            continue
    raise InputError(f"file '{path}' is not text in {', '.join(ENCODINGS)}")  # pragma: no cover


def _decimal_comma(frame: pd.DataFrame) -> bool:
    """Return whether some text column is all numbers written with a decimal comma."""
    for column in frame.columns:
        values = frame[column]
        if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
            continue
        present = values.dropna().astype(str).str.strip()
        if len(present) and present.str.match(_DECIMAL_COMMA).mean() >= TIME_SHARE:
            return True
    return False


SAMPLE_FILE = Wording(
    InputError, "data file", empty="file '{path}' is empty",
    unreadable="cannot read '{path}' as {kind}: {reason}", undecodable=None,
    kinds={"csv": "CSV", "parquet": "Parquet", "excel": "an Excel workbook"})


def _read_csv(path: Path, options: dict[str, Any], rows: int | None = None,
              columns: list[str] | None = None) -> pd.DataFrame:
    read = TableRead(options["delimiter"], options["encoding"], options["decimal"], rows=rows,
                     columns=columns)
    return read_user_table(path, "csv", read, SAMPLE_FILE)


def read_sample(path: Path, max_rows: int = SAMPLE_ROWS) -> Sample:
    """Read the first ``max_rows`` rows of a data file, sniffing CSV options."""
    kind = source_kind(path)
    check_regular_file(path, "data file")
    notes: dict[str, str] = {}
    options: dict[str, Any] = {}
    total: int | None = None
    if kind == "csv":
        text, head_encoding = _head_text(path)
        if not text.strip():
            raise InputError(f"file '{path}' is empty")
        delimiter = "\t" if path.suffix.lower() == ".tsv" else sniff_delimiter(text)
        options = {"delimiter": delimiter, "encoding": head_encoding, "decimal": "."}
        frame = None
        for encoding in ENCODINGS[ENCODINGS.index(head_encoding):]:
            options["encoding"] = encoding
            try:
                frame = _read_csv(path, options, max_rows)
                break
            except UnicodeDecodeError:  # the head decoded, a later line does not
                continue
        assert frame is not None  # latin-1 decodes any byte
        if delimiter != "," and _decimal_comma(frame):
            options["decimal"] = ","
            frame = _read_csv(path, options, max_rows)
        notes["source.csv"] = "sniffed from the file's first lines"
    else:
        frame = read_user_table(path, kind, TableRead(rows=max_rows), SAMPLE_FILE)
        if kind == "parquet":
            total = pq.ParquetFile(path).metadata.num_rows
    if frame.empty:
        raise InputError(f"file '{path}' has no data rows")
    frame.columns = [str(c) for c in frame.columns]
    truncated = total > len(frame) if total is not None else len(frame) >= max_rows
    return Sample(path, kind, frame, truncated, options, notes)


def read_times(sample: Sample, column: str) -> pd.Series:
    """Return the time column of the whole file (of the sample for Excel), parsed to UTC."""
    where = f"'{sample.path}'"
    frame = sample.frame
    if sample.truncated and sample.kind == "csv":
        frame = _read_csv(sample.path, sample.options, columns=[column])
    elif sample.truncated and sample.kind == "parquet":
        frame = pq.read_table(sample.path, columns=[column]).to_pandas()
    elif sample.truncated:
        log.info("the time span is taken from the first %d rows of %s", len(frame), where)
    if pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
        raise InputError(f"time column '{column}' of {where} holds numbers, not dates or times; "
                         "write it as text such as 2024-05-01T10:00:00Z, or pass another --time")
    try:
        return parse_time(frame, column, where)
    except SourceError as exc:
        raise InputError(str(exc)) from None
