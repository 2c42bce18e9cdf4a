"""Data properties of each batch that the meta-learner relates to candidates' scores."""

from __future__ import annotations

import pandas as pd


def batch_features(batches: pd.DataFrame, stats: pd.DataFrame, target: str) -> pd.DataFrame:
    """Data properties of each accepted batch (one row per batch): rows, rows with a
    target, mean missing share, column counts by kind, and the target's mean, spread and
    missing share, from the ``batches`` and ``column_stats`` tables.

    >>> batches = pd.DataFrame({"id": [1, 2], "status": ["accepted", "quarantined"],
    ...                         "rows": [10, 5], "rows_with_target": [9, 5]})
    >>> stats = pd.DataFrame({"batch_id": [1, 1], "column": ["x", "y"],
    ...                       "dtype": ["numeric", "numeric"], "missing_share": [0.5, 0.1],
    ...                       "mean": [1.0, 3.0], "std": [1.0, 2.0]})
    >>> batch_features(batches, stats, "y").iloc[0].to_dict()["target_mean"]
    3.0
    """
    if batches.empty or stats.empty:
        return pd.DataFrame(columns=["batch_id"])
    batches = batches[batches["status"] == "accepted"]
    features = stats[stats["column"] != target].groupby("batch_id").agg(
        missing_share=("missing_share", "mean"),
        numeric_columns=("dtype", lambda d: int((d == "numeric").sum())),
        categorical_columns=("dtype", lambda d: int((d == "categorical").sum())))
    target_stats = stats[stats["column"] == target].set_index("batch_id")
    out = batches.set_index("id")[["rows", "rows_with_target"]].join(features)
    for column in ("mean", "std", "missing_share"):
        if column in target_stats:
            out[f"target_{column}"] = target_stats[column]
    return out.rename_axis("batch_id").reset_index()
