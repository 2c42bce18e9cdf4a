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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from conveyor.config import CsvOptions
from conveyor.errors import InputError
from conveyor.io.atomic import atomic_write
from conveyor.serve.bundle import LoadedModel
from conveyor.serve.inputs import (
    FORMATS,
    MISSING_MARKERS,
    check_input_file,
    chunks,
    features_frame,
    file_format,
    read_input,
)
from conveyor.serve.output import ChunkWriter, output_path
from conveyor.serve.routing import answered_by, predict_routed, route_counts

__all__ = ["FORMATS", "MISSING_MARKERS", "PREDICT_COLUMN", "InferenceResult",
           "check_input_file", "features_frame", "file_format", "output_path", "peak_memory_mb",
           "predict_file", "predict_rows", "read_input"]

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


def predict_rows(loaded: LoadedModel, features: pd.DataFrame, path: Path | str,
                 offset: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Routed predictions of one chunk (of a file or a request), which rows the fallback
    answered and the route reasons; a row the model cannot answer, or answers with a
    non-finite number, raises an ``InputError`` naming it."""
    first, last = offset + 1, offset + len(features)
    try:
        predictions, to_fallback, reasons = predict_routed(
            loaded.model, loaded.fallback, loaded.router, features)
    except ValueError as exc:  # scikit-learn's word for input it cannot use
        reason = " ".join(str(exc).split())
        raise InputError(f"the model cannot predict rows {first}..{last} of '{path}': "
                         f"{reason}; check the values of those rows") from exc
    if predictions.dtype.kind == "f" and not np.isfinite(predictions).all():
        row = offset + int(np.flatnonzero(~np.isfinite(predictions))[0]) + 1
        raise InputError(f"the model's prediction for row {row} of '{path}' is not a finite "
                         "number: its values are far outside what the model was trained on; "
                         "fix the row, or enable serve.routing so a fallback answers it")
    return predictions, to_fallback, reasons


@dataclass(frozen=True)
class ChunkPredictor:
    """Predicts one chunk of an input file: the chunk with its added columns, and its
    rows per route."""

    loaded: LoadedModel
    path: Path
    augment: Callable[[pd.DataFrame], pd.DataFrame] | None
    route_columns: bool
    version_column: bool

    def __call__(self, chunk: pa.RecordBatch | pa.Table, offset: int
                 ) -> tuple[Any, Counter[str]]:
        frame = chunk.to_pandas()
        model_input = self.augment(frame) if self.augment is not None else frame
        features = features_frame(model_input, self.loaded.manifest["schema"], str(self.path),
                                  offset=offset)
        predictions, to_fallback, reasons = predict_rows(self.loaded, features, self.path,
                                                         offset)
        table = chunk.append_column(
            PREDICT_COLUMN, pa.array(predictions if predictions.dtype != object
                                     else predictions.tolist()))
        if self.route_columns:
            table = table.append_column("route", pa.array(answered_by(to_fallback).tolist()))
            table = table.append_column("route_reason", pa.array(reasons.tolist()))
        if self.version_column:
            table = table.append_column("model_version", pa.array(
                [self.loaded.version] * len(frame), pa.int64()))
        return table, Counter(route_counts(to_fallback, reasons))


def predict_file(path: Path, loaded: LoadedModel, out_dir: Path, csv: CsvOptions,
                 augment: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
                 chunk_rows: int = 50_000, route_columns: bool = False,
                 version_column: bool = False) -> InferenceResult:
    """Predict every row of ``path`` chunk by chunk; return where the output was written.

    Memory stays bounded by the chunk size whatever the file's size (chunks are
    predicted one after another: on worker threads they were no faster, measured
    on 400,000 rows, as the conversion holds the GIL). The input's
    columns and row order are kept and ``predict`` is appended; ``augment`` adds
    derived columns (e.g. enrichment joins) to what the model sees only. The
    output appears atomically: all of it, or nothing.
    """
    start = time.perf_counter()
    check_input_file(path)
    kind = file_format(path)
    target = output_path(path, out_dir, loaded.version)
    rows = 0
    routes: Counter[str] = Counter()
    added = [PREDICT_COLUMN] + (["route", "route_reason"] if route_columns else []) + (
        ["model_version"] if version_column else [])
    predicted = ChunkPredictor(loaded, path, augment, route_columns, version_column)

    def write(tmp: Path) -> None:
        nonlocal rows
        writer = ChunkWriter(tmp, kind, csv, path.suffix.lower() == ".tsv")
        try:
            for chunk in chunks(path, kind, csv, chunk_rows):
                clash = [c for c in added if c in chunk.schema.names]
                if clash:
                    raise InputError(f"input file '{path}' already has column(s) {clash} that "
                                     "inference adds; rename or drop them")
                table, counted = predicted(chunk, rows)
                routes.update(counted)
                writer.write(table)
                rows += chunk.num_rows
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read input file '{path}' as {kind}: {exc}") from None
        finally:
            writer.close()
        if rows == 0:
            raise InputError(f"input file '{path}' has no rows to predict")

    atomic_write(target, write)
    return InferenceResult(target, rows, time.perf_counter() - start, peak_memory_mb(),
                           dict(routes))
