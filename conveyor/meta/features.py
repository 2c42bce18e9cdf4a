"""What the meta-learner learns from: data properties of each batch, and the candidates
scored on it outside searches (production's champion and fallback, and staging, each
scored prequentially on every new batch before learning from it)."""

from __future__ import annotations

import json

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


SERVED_ROLES = ("champion", "fallback", "staging")


def meta_evaluations(evaluations: pd.DataFrame, prequential: pd.DataFrame,
                     models: pd.DataFrame) -> pd.DataFrame:
    """Every scored candidate the meta-learner learns from: the stored evaluations of
    searches (successive halving's cheaper rungs included: each rung is its own race) and
    the served races of :func:`served_evaluations`."""
    served = served_evaluations(prequential, models)
    if evaluations.empty:
        return served
    return pd.concat([evaluations, served], ignore_index=True) if len(served) else evaluations


def served_evaluations(prequential: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """Return the prequential scores of single configurations as evaluations (``batch_id``,
    ``family``, ``variant``, ``params``, ``score``, ``race`` = ``served``): each batch is a
    race between production's champion alone, its fallback alone and staging, all fitted
    before the batch. Rows whose configuration is unknown (older versions) are left out, as
    is staging when it has the champion's configuration (a race is between configurations).

    >>> prequential = pd.DataFrame({"batch_id": [3, 3, 3], "version": [2, 2, 2],
    ...     "role": ["production", "champion", "fallback"], "score": [1.0, 1.1, 1.4],
    ...     "metrics": [{}, {"candidate": {"family": "linear", "params": {"alpha": 1.0}}},
    ...                 {"candidate": {"family": "hgb", "variant": "native", "params": {}}}]})
    >>> served = served_evaluations(prequential, pd.DataFrame())
    >>> served[["family", "variant", "score"]].values.tolist()
    [['linear', 'onehot', 1.1], ['hgb', 'native', 1.4]]
    """
    columns = ["batch_id", "family", "variant", "params", "score", "race"]
    if prequential.empty:
        return pd.DataFrame(columns=columns)
    known = {int(m["version"]): m for m in models.to_dict("records")} if not models.empty \
        else {}
    rows = []
    for row in prequential[prequential["role"].isin(SERVED_ROLES)].to_dict("records"):
        metrics = row["metrics"] if isinstance(row["metrics"], dict) else {}
        candidate = metrics.get("candidate") if row["role"] != "staging" \
            else known.get(int(row["version"]))
        if not isinstance(candidate, dict) or not isinstance(candidate.get("family"), str):
            continue
        rows.append({"batch_id": row["batch_id"], "family": candidate["family"],
                     "variant": candidate.get("variant") or "onehot",
                     "params": candidate.get("params") or {}, "score": row["score"],
                     "race": "served"})
    out = pd.DataFrame(rows, columns=columns)
    same = out[["batch_id", "family", "variant"]].assign(params=out["params"].map(
        lambda p: json.dumps(p, sort_keys=True, default=str)))
    return out[~same.duplicated()].reset_index(drop=True)
