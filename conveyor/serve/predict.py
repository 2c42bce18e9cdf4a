"""Batch inference on a user's file: the input, unchanged, plus a ``predict`` column.

CSV input is read as text so every column is written back exactly as the user
wrote it; features are converted to the types seen in training only for the
model. The output is written atomically in the input's format.
"""

from __future__ import annotations

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

from conveyor.config import CsvOptions
from conveyor.errors import InputError
from conveyor.serve.bundle import LoadedModel
from conveyor.serve.routing import predict_routed, route_counts
from conveyor.workspace import atomic_write

FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet",
           ".xlsx": "excel"}
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
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise InputError(f"'{path}' has an unsupported extension '{path.suffix}'; use one of "
                         f"{sorted(FORMATS)}") from None


def read_input(path: Path, csv: CsvOptions) -> pd.DataFrame:
    """Read the user's file; CSV columns stay text exactly as written."""
    if not path.is_file():
        raise InputError(f"input file '{path}' not found")
    kind = file_format(path)
    try:
        if kind == "csv":
            sep = "\t" if path.suffix.lower() == ".tsv" else csv.delimiter
            frame = pd.read_csv(path, sep=sep, encoding=csv.encoding, dtype=str,
                                keep_default_na=False)
        elif kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_excel(path, engine="openpyxl")
    except UnicodeDecodeError as exc:
        raise InputError(f"input file '{path}' is not valid {csv.encoding} text "
                         f"(byte {exc.start}); re-save it as {csv.encoding}") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"input file '{path}' is empty") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise InputError(f"cannot read input file '{path}' as {kind}: {exc}") from None
    return frame


def features_frame(frame: pd.DataFrame, schema: dict[str, dict[str, Any]],
                   source: str, offset: int = 0) -> pd.DataFrame:
    """Return the model's features converted to their training types.

    Empty text is a missing value; a non-number in a numeric column is refused.
    """
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise InputError(f"'{source}' lacks required column(s) {missing}; the model needs "
                         f"{list(schema)}")
    out = {}
    for column, spec in schema.items():
        values = frame[column]
        if spec["kind"] == "numeric":
            text = values.astype("string").str.strip() if values.dtype == object or \
                pd.api.types.is_string_dtype(values) else values
            if pd.api.types.is_string_dtype(text):
                text = text.mask(text == "")
            numbers = pd.to_numeric(text, errors="coerce")
            bad = numbers.isna() & text.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(f"'{source}' column '{column}' must be numeric; row "
                                 f"{offset + row + 1} holds {values.iloc[row]!r}")
            out[column] = numbers.astype(float)
        elif spec["kind"] == "datetime":
            text = values.mask(values.astype("string") == "") if values.dtype == object or \
                pd.api.types.is_string_dtype(values) else values
            parsed = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
            bad = parsed.isna() & text.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(f"'{source}' column '{column}' must hold timestamps; row "
                                 f"{offset + row + 1} holds {values.iloc[row]!r}")
            out[column] = parsed
        else:
            categories = values.astype(object)
            out[column] = categories.where(~(categories.isna() | (categories == "")), np.nan)
    return pd.DataFrame(out, index=frame.index)


def output_path(source: Path, out_dir: Path, version: int) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return out_dir / f"{source.stem}-predict-v{version:06d}-{stamp}{source.suffix.lower()}"


def _csv_header(path: Path, csv: CsvOptions, sep: str) -> list[str]:
    import csv as csvlib

    try:
        with open(path, encoding=csv.encoding, newline="") as handle:
            header = next(csvlib.reader(handle, delimiter=sep), None)
    except UnicodeDecodeError as exc:
        raise InputError(f"input file '{path}' is not valid {csv.encoding} text "
                         f"(byte {exc.start}); re-save it as {csv.encoding}") from None
    if not header:
        raise InputError(f"input file '{path}' is empty")
    if header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    if len(set(header)) != len(header):
        raise InputError(f"input file '{path}' repeats column name(s) "
                         f"{sorted({h for h in header if header.count(h) > 1})}")
    return header


def _csv_chunks(path: Path, csv: CsvOptions, block_bytes: int = 1 << 20
                ) -> Iterator[pa.RecordBatch]:
    """Stream a CSV as text columns (values kept exactly as written), block by block.

    Arrow's streaming reader reads up to a fixed number of blocks (~32) ahead of the
    consumer, so its memory is a multiple of the block size: small blocks (1 MiB)
    keep it near 32 MiB whatever the file's size; :func:`_regroup` then joins them
    into chunks large enough for fast prediction. (With 6 MiB blocks the readahead
    held ~200 MiB, and files smaller than that looked cheaper than larger ones.)
    """
    sep = "\t" if path.suffix.lower() == ".tsv" else csv.delimiter
    names = _csv_header(path, csv, sep)
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1,
                                       block_size=block_bytes, encoding=csv.encoding,
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
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
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
                # a value holds the delimiter, a quote or a newline: quote only where needed
                table.to_pandas().to_csv(handle, index=False, header=self.header, sep=self.sep,
                                         lineterminator="\n")
        self.header = False

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        if self.kind == "excel":
            pd.concat(self.frames, ignore_index=True).to_excel(self.tmp, index=False,
                                                               engine="openpyxl")


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
    if not path.is_file():
        raise InputError(f"input file '{path}' not found")
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
                predictions, reasons = predict_routed(loaded.model, loaded.fallback,
                                                      loaded.router, features)
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
