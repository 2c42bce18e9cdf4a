"""Batch inference on a user's file: the input, unchanged, plus a ``predict`` column.

CSV input is read as text so every column is written back exactly as the user
wrote it; features are converted to the types seen in training only for the
model. The output is written atomically in the input's format.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from conveyor.config import CsvOptions
from conveyor.errors import InputError
from conveyor.serve.bundle import LoadedModel
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


def peak_memory_mb() -> float:
    """Return this process's peak resident memory in MiB."""
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
                   source: str) -> pd.DataFrame:
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
                raise InputError(f"'{source}' column '{column}' must be numeric; row {row + 1} "
                                 f"holds {values.iloc[row]!r}")
            out[column] = numbers.astype(float)
        elif spec["kind"] == "datetime":
            text = values.mask(values.astype("string") == "") if values.dtype == object or \
                pd.api.types.is_string_dtype(values) else values
            parsed = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
            bad = parsed.isna() & text.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(f"'{source}' column '{column}' must hold timestamps; row "
                                 f"{row + 1} holds {values.iloc[row]!r}")
            out[column] = parsed
        else:
            categories = values.astype(object)
            out[column] = categories.where(~(categories.isna() | (categories == "")), np.nan)
    return pd.DataFrame(out, index=frame.index)


def write_output(frame: pd.DataFrame, path: Path, kind: str, csv: CsvOptions) -> None:
    """Write the output table atomically in the given format."""
    def write(tmp: Path) -> None:
        if kind == "csv":
            sep = "\t" if path.suffix.lower() == ".tsv" else csv.delimiter
            frame.to_csv(tmp, index=False, sep=sep, encoding=csv.encoding)
        elif kind == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_excel(tmp, index=False, engine="openpyxl")

    atomic_write(path, write)


def output_path(source: Path, out_dir: Path, version: int) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return out_dir / f"{source.stem}-predict-v{version:06d}-{stamp}{source.suffix.lower()}"


def predict_file(path: Path, loaded: LoadedModel, out_dir: Path, csv: CsvOptions,
                 augment: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
                 ) -> InferenceResult:
    """Predict every row of ``path``; return where the output was written.

    ``augment`` adds derived columns (e.g. enrichment joins) to the frame the
    model sees; the written output keeps only the input's columns plus ``predict``.
    """
    start = time.perf_counter()
    frame = read_input(path, csv)
    if frame.empty:
        raise InputError(f"input file '{path}' has no rows to predict")
    if PREDICT_COLUMN in frame.columns:
        raise InputError(f"input file '{path}' already has a '{PREDICT_COLUMN}' column; "
                         "rename or drop it")
    model_input = augment(frame) if augment is not None else frame
    features = features_frame(model_input, loaded.manifest["schema"], str(path))
    predictions = loaded.model.predict(features)
    output = frame.copy()
    output[PREDICT_COLUMN] = predictions
    target = output_path(path, out_dir, loaded.version)
    write_output(output, target, file_format(path), csv)
    return InferenceResult(target, len(frame), time.perf_counter() - start, peak_memory_mb())
