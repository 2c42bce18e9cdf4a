"""Batch inference on a user's file: the input, unchanged, plus a ``predict`` column.

CSV input is read as text so every column is written back exactly as the user
wrote it; features are converted to the types seen in training only for the
model. The output is written atomically in the input's format.
"""

from __future__ import annotations

import re
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from conveyor.collect.sources import guess_delimiter, mixed_zones
from conveyor.config import CsvOptions
from conveyor.errors import InputError
from conveyor.io.atomic import atomic_write
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
from conveyor.serve.bundle import LoadedModel
from conveyor.serve.routing import predict_routed, route_counts

FORMATS = EXTENSIONS
PREDICT_COLUMN = "predict"


@dataclass(frozen=True)
class InferenceResult:
    """Where the predictions went and what the call cost."""

    output: Path
    rows: int
    seconds: float
    peak_mb: float
    routes: dict[str, int] = field(default_factory=dict)  # rows per route (see routing)


def peak_memory_mb() -> float:
    """Return this process's peak resident memory in MiB.

    Linux's VmHWM belongs to the process's own address space, whereas
    ``ru_maxrss`` keeps the high-water mark of a parent across fork and exec.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


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


def output_path(source: Path, out_dir: Path, version: int) -> Path:
    r"""Where the predictions for ``source`` go: its name (control characters such as a line
    break replaced, so the printed path is one line), the version and the time.

    >>> output_path(Path("a\nb.csv"), Path("/out"), 7).name[:20]
    'a_b-predict-v000007-'
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    stem = re.sub(r"[\x00-\x1f\x7f]", "_", source.stem)
    return out_dir / f"{stem}-predict-v{version:06d}-{stamp}{source.suffix.lower()}"


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


def _chunks(path: Path, kind: str, csv: CsvOptions, chunk_rows: int
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


class _Writer:
    """Writes output chunks in the input's format; CSV values pass through as text."""

    def __init__(self, tmp: Path, kind: str, csv: CsvOptions, tsv: bool) -> None:
        self.tmp, self.kind, self.csv = tmp, kind, csv
        self.sep = "\t" if tsv else csv.delimiter
        self.parquet: pq.ParquetWriter | None = None
        self.frames: list[pd.DataFrame] = []
        self.header = True

    def write(self, table: pa.Table) -> None:
        if self.kind == "parquet":
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.tmp, table.schema)
            self.parquet.write_table(table)
        elif self.kind == "excel":
            self.frames.append(table.to_pandas())
        else:
            self._write_csv(table)

    def _write_csv(self, table: pa.Table) -> None:
        options = pacsv.WriteOptions(include_header=self.header, delimiter=self.sep,
                                     quoting_style="none")
        with open(self.tmp, "ab") as handle:
            try:
                sink = pa.BufferOutputStream()
                pacsv.write_csv(table, sink, options)
                handle.write(sink.getvalue().to_pybytes())
            except pa.ArrowInvalid:
                # a value holds the delimiter, a quote or a line break: quote only those
                handle.write(self._quoted_csv(table).encode("utf-8"))
        self.header = False

    def _quoted_csv(self, table: pa.Table) -> str:
        """The chunk as CSV text, quoting a field only when it holds the delimiter, a quote,
        ``\n`` or ``\r`` (Python's csv module and pandas leave a lone ``\r`` unquoted, and
        readers take it for the end of a line)."""
        special = (self.sep, '"', "\n", "\r")

        def field(value: object) -> str:
            if value is None or isinstance(value, str):
                text = value or ""
            elif isinstance(value, bool):
                text = "true" if value else "false"  # as Arrow writes the other chunks
            else:
                whole = isinstance(value, float) and value.is_integer() and abs(value) < 1e15
                # numbers as Arrow writes them: 4, not 4.0
                text = str(int(value)) if whole and isinstance(value, float) else \
                    repr(value) if isinstance(value, float) else str(value)
            if any(c in text for c in special):
                return '"' + text.replace('"', '""') + '"'
            return text

        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
        lines = [self.sep.join(field(n) for n in table.column_names)] if self.header else []
        lines += [self.sep.join(field(c[i]) for c in columns) for i in range(table.num_rows)]
        return "".join(line + "\n" for line in lines)

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        if self.kind == "excel":
            pd.concat(self.frames, ignore_index=True).to_excel(self.tmp, index=False,
                                                               engine="openpyxl")


def predict_rows(loaded: LoadedModel, features: pd.DataFrame, path: Path | str,
                 offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Routed predictions of one chunk (of a file or a request); a row the model cannot
    answer, or answers with a non-finite number, raises an ``InputError`` naming it."""
    first, last = offset + 1, offset + len(features)
    try:
        predictions, reasons = predict_routed(loaded.model, loaded.fallback, loaded.router,
                                              features)
    except ValueError as exc:  # scikit-learn's word for input it cannot use
        reason = " ".join(str(exc).split())
        raise InputError(f"the model cannot predict rows {first}..{last} of '{path}': "
                         f"{reason}; check the values of those rows") from exc
    if predictions.dtype.kind == "f" and not np.isfinite(predictions).all():
        row = offset + int(np.flatnonzero(~np.isfinite(predictions))[0]) + 1
        raise InputError(f"the model's prediction for row {row} of '{path}' is not a finite "
                         "number: its values are far outside what the model was trained on; "
                         "fix the row, or enable serve.routing so a fallback answers it")
    return predictions, reasons


def predict_file(path: Path, loaded: LoadedModel, out_dir: Path, csv: CsvOptions,
                 augment: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
                 chunk_rows: int = 50_000, route_columns: bool = False,
                 version_column: bool = False) -> InferenceResult:
    """Predict every row of ``path`` chunk by chunk; return where the output was written.

    Memory stays bounded by the chunk size whatever the file's size. The input's
    columns and row order are kept and ``predict`` is appended; ``augment`` adds
    derived columns (e.g. enrichment joins) to what the model sees only. The
    output appears atomically: all of it, or nothing.
    """
    start = time.perf_counter()
    check_input_file(path)
    kind = file_format(path)
    schema = loaded.manifest["schema"]
    target = output_path(path, out_dir, loaded.version)
    rows = 0
    routes: Counter[str] = Counter()
    added = [PREDICT_COLUMN] + (["route", "route_reason"] if route_columns else []) + (
        ["model_version"] if version_column else [])

    def write(tmp: Path) -> None:
        nonlocal rows
        writer = _Writer(tmp, kind, csv, path.suffix.lower() == ".tsv")
        try:
            for chunk in _chunks(path, kind, csv, chunk_rows):
                clash = [c for c in added if c in chunk.schema.names]
                if clash:
                    raise InputError(f"input file '{path}' already has column(s) {clash} that "
                                     "inference adds; rename or drop them")
                frame = chunk.to_pandas()
                model_input = augment(frame) if augment is not None else frame
                features = features_frame(model_input, schema, str(path), offset=rows)
                predictions, reasons = predict_rows(loaded, features, path, rows)
                routes.update(route_counts(reasons))
                table = chunk.append_column(
                    PREDICT_COLUMN, pa.array(predictions if predictions.dtype != object
                                             else predictions.tolist()))
                if route_columns:
                    table = table.append_column("route", pa.array(
                        np.where(reasons == "", "champion", "fallback").tolist()))
                    table = table.append_column("route_reason", pa.array(reasons.tolist()))
                if version_column:
                    table = table.append_column("model_version", pa.array(
                        [loaded.version] * len(frame), pa.int64()))
                writer.write(table)
                rows += len(frame)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read input file '{path}' as {kind}: {exc}") from None
        finally:
            writer.close()
        if rows == 0:
            raise InputError(f"input file '{path}' has no rows to predict")

    atomic_write(target, write)
    return InferenceResult(target, rows, time.perf_counter() - start, peak_memory_mb(),
                           dict(routes))
