"""Meta-parameters of a batch: per-column type, missingness and summary statistics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

TOP_LEVELS = 5
MAX_LEVELS = 1000


def _finite(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def column_profile(series: pd.Series) -> dict[str, Any]:
    """Return the meta-parameters of one column.

    >>> p = column_profile(pd.Series([1.0, 2.0, None, 5.0]))
    >>> p["dtype"], p["missing_share"], p["mean"], p["max"]
    ('numeric', 0.25, 2.6666666666666665, 5.0)
    >>> column_profile(pd.Series(["a", "b", "a", None]))["top"]
    {'a': 0.5, 'b': 0.25}
    """
    n = len(series)
    missing = float(series.isna().mean()) if n else 0.0
    row: dict[str, Any] = {"missing_share": missing, "n_unique": int(series.nunique()),
                           "mean": None, "std": None, "min": None, "q25": None, "q50": None,
                           "q75": None, "max": None,
                           "top": None, "levels": None}
    values = series.dropna()
    if pd.api.types.is_bool_dtype(series) or not (
        pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series)
    ):
        row["dtype"] = "categorical"
        counts = values.astype(str).value_counts()
        row["top"] = {str(k): float(v) / max(n, 1) for k, v in counts.head(TOP_LEVELS).items()}
        row["levels"] = {str(k): int(v) for k, v in counts.head(MAX_LEVELS).items()}
    elif pd.api.types.is_datetime64_any_dtype(series):
        row["dtype"] = "datetime"
    else:
        row["dtype"] = "numeric"
        numbers = values.astype(float)
        # ±inf or 1e308 make a statistic inf or NaN, reported as None; numpy's warnings
        # about it would only reach the user's console
        with np.errstate(invalid="ignore", over="ignore"):
            if len(numbers):
                q25, q50, q75 = numbers.quantile([0.25, 0.5, 0.75]).tolist()
                row.update(mean=_finite(numbers.mean()), min=_finite(numbers.min()),
                           q25=_finite(q25), q50=_finite(q50), q75=_finite(q75),
                           max=_finite(numbers.max()),
                           std=_finite(numbers.std(ddof=1)) if len(numbers) > 1 else None)
    return row


def batch_profile(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Return one meta-parameter row per column of the batch."""
    return [{"column": str(name), **column_profile(frame[name])} for name in frame.columns]
