"""Automatic EDA of a batch, stored as data so the summary can draw it later.

Distributions and missingness come from the stored column profiles; this
module adds what needs the rows themselves: correlations between numeric
features, each feature's correlation with the target, and the target's
distribution.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

MAX_MATRIX_COLUMNS = 15
TARGET_BINS = 30


def _clean(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def target_correlations(frame: pd.DataFrame, numeric: list[str], target: str) -> dict[str, Any]:
    """Pearson and Spearman correlation of each numeric feature with a numeric target.

    Constant or all-missing columns get None, never NaN.

    >>> frame = pd.DataFrame({"a": [1, 2, 3, 4], "b": [4, 3, 2, 1], "c": [1, 1, 1, 1],
    ...                       "y": [2.0, 4.0, 6.0, 8.5]})
    >>> out = target_correlations(frame, ["a", "b", "c"], "y")
    >>> out["spearman"]
    {'a': 1.0, 'b': -1.0, 'c': None}
    """
    y = pd.to_numeric(frame[target], errors="coerce")
    pearson: dict[str, float | None] = {}
    spearman: dict[str, float | None] = {}
    for column in numeric:
        x = pd.to_numeric(frame[column], errors="coerce")
        ok = x.notna() & y.notna()
        if ok.sum() < 3 or x[ok].nunique() < 2 or y[ok].nunique() < 2:
            pearson[column] = spearman[column] = None
            continue
        pearson[column] = _clean(np.corrcoef(x[ok], y[ok])[0, 1])
        spearman[column] = _clean(x[ok].rank().corr(y[ok].rank()))
    return {"pearson": pearson, "spearman": spearman}


def correlation_matrix(frame: pd.DataFrame, numeric: list[str]) -> dict[str, Any]:
    """Pearson correlations among the most complete numeric features (at most 15)."""
    usable = [c for c in numeric if frame[c].notna().sum() > 2 and frame[c].nunique() > 1]
    usable = sorted(usable, key=lambda c: frame[c].isna().mean())[:MAX_MATRIX_COLUMNS]
    if len(usable) < 2:
        return {"columns": usable, "values": []}
    matrix = frame[usable].apply(pd.to_numeric, errors="coerce").corr().to_numpy()
    return {"columns": usable,
            "values": [[_clean(v) for v in row] for row in matrix]}


def target_distribution(values: pd.Series, task: str) -> dict[str, Any]:
    """Histogram (regression, between the 1st and 99th percentile) or class shares.

    >>> target_distribution(pd.Series(["a", "b", "a", None]), "classification")["shares"]
    {'a': 0.6666666666666666, 'b': 0.3333333333333333}
    """
    present = values.dropna()
    if task == "classification":
        shares = present.astype(str).value_counts(normalize=True)
        return {"kind": "classes", "shares": {str(k): float(v) for k, v in shares.items()}}
    numbers = pd.to_numeric(present, errors="coerce").dropna().astype(float)
    numbers = numbers[np.isfinite(numbers)]
    if numbers.empty:
        return {"kind": "histogram", "edges": [], "counts": []}
    low, high = np.percentile(numbers, [1, 99])
    if high <= low:
        low, high = float(numbers.min()), float(numbers.max()) + 1.0
    counts, edges = np.histogram(numbers.clip(low, high), bins=TARGET_BINS, range=(low, high))
    return {"kind": "histogram", "edges": edges.tolist(), "counts": counts.tolist(),
            "mean": float(numbers.mean()), "median": float(numbers.median())}


def batch_eda(frame: pd.DataFrame, numeric: list[str], target: str, task: str) -> dict[str, Any]:
    """Return every EDA figure of a batch as JSON-safe data."""
    eda: dict[str, Any] = {"rows": len(frame),
                           "target": target_distribution(frame[target], task),
                           "correlation_matrix": correlation_matrix(frame, numeric)}
    if task == "regression":
        eda["target_correlations"] = target_correlations(frame, numeric, target)
    return eda
