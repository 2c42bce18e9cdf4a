"""Interpretation of a model version and of single predictions, stored as data.

Per version: permutation importance of every input column on held-out rows
(all families), coefficients (linear models), the tree's structure (decision
trees), and SHAP values for tree ensembles when the optional ``shap`` package
is installed. Per prediction: the change in prediction when a column is
treated as missing ("occlusion", any family) and, for kNN, the neighbours.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, mean_absolute_error
from sklearn.pipeline import Pipeline
from sklearn.tree import export_text

from conveyor.serve.routing import Router, within_float32

log = logging.getLogger(__name__)

IMPORTANCE_ROWS = 1000
IMPORTANCE_REPEATS = 2
SCORES = {"neg_mean_absolute_error": lambda y, p: -mean_absolute_error(y, p),
          "accuracy": accuracy_score}  # higher is better, as in scikit-learn's scorers
TREE_NODES_DRAWN = 63


def _estimator(model: Pipeline) -> Any:
    return model.named_steps["model"]


def _encoded(model: Pipeline, X: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Return the rows as the estimator sees them, with the encoded column names."""
    steps = model[:-1]
    names = list(steps.get_feature_names_out())
    return np.asarray(steps.transform(X), dtype=float), names


def importance(model: Pipeline, X: pd.DataFrame, y: np.ndarray, scoring: str,
               seed: int, repeats: int = IMPORTANCE_REPEATS) -> dict[str, float]:
    """Permutation importance of each input column on held-out rows: the mean drop in
    score over ``repeats`` shuffles of the column (``scoring`` is
    ``neg_mean_absolute_error`` or ``accuracy``).

    The definition is scikit-learn's ``permutation_importance``; the shuffled copies
    are scored in one ``predict`` call instead of one per column and shuffle, since on
    1,000 rows a call's fixed cost (calendar features, encoders) is most of its time.
    """
    if scoring not in SCORES:
        raise ValueError(f"scoring must be one of {sorted(SCORES)}, got {scoring!r}")
    if len(X) > IMPORTANCE_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(len(X), IMPORTANCE_ROWS,
                                                          replace=False))
        X, y = X.iloc[keep], y[keep]
    X = X.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    copies = [X]
    for column in X.columns:
        values = X[column].to_numpy()
        for _ in range(repeats):
            copies.append(X.assign(**{column: values[rng.permutation(len(X))]}))
    predicted = np.asarray(model.predict(pd.concat(copies, ignore_index=True)))
    score = SCORES[scoring]
    scores = np.array([score(y, part) for part in np.split(predicted, len(copies))])
    drops = scores[0] - scores[1:].reshape(len(X.columns), repeats)
    return {str(c): float(v) for c, v in zip(X.columns, drops.mean(axis=1), strict=True)}


def coefficients(model: Pipeline) -> dict[str, float] | None:
    """Coefficients of a linear model by encoded feature (features are scaled)."""
    estimator = _estimator(model)
    if not hasattr(estimator, "coef_"):
        return None
    names = list(model[:-1].get_feature_names_out())
    coef = np.atleast_2d(estimator.coef_)[0]
    return {n: float(c) for n, c in zip(names, coef, strict=True)}


def tree_structure(model: Pipeline) -> dict[str, Any] | None:
    """A decision tree's rules as text (top 4 levels) and its first nodes as data."""
    estimator = _estimator(model)
    if not hasattr(estimator, "tree_") or not hasattr(estimator, "get_depth"):
        return None
    names = [str(n) for n in model[:-1].get_feature_names_out()]
    tree = estimator.tree_
    nodes = []
    for node in range(min(tree.node_count, TREE_NODES_DRAWN)):
        leaf = tree.children_left[node] == -1
        nodes.append({
            "id": node, "left": int(tree.children_left[node]),
            "right": int(tree.children_right[node]),
            "feature": None if leaf else names[tree.feature[node]],
            "threshold": None if leaf else float(tree.threshold[node]),
            "samples": int(tree.n_node_samples[node]),
            "value": float(np.ravel(tree.value[node])[0]) if tree.value.shape[-1] == 1
            else [float(v) for v in np.ravel(tree.value[node])],
        })
    return {"depth": int(estimator.get_depth()), "leaves": int(estimator.get_n_leaves()),
            "text": export_text(estimator, feature_names=names, max_depth=4),
            "nodes": nodes}


def shap_summary(model: Pipeline, X: pd.DataFrame, seed: int) -> dict[str, float] | None:
    """Mean |SHAP| per encoded feature for tree models, if the shap extra is installed."""
    estimator = _estimator(model)
    if not hasattr(estimator, "tree_") and not hasattr(estimator, "estimators_") and \
            type(estimator).__name__.find("HistGradient") < 0:
        return None
    try:
        import shap
    except ImportError:
        return None
    rows, names = _encoded(model, X.sample(n=min(len(X), 300), random_state=seed))
    values = np.abs(np.asarray(shap.TreeExplainer(estimator).shap_values(rows)))
    # a classifier's values have a class axis: (rows, features, classes) from shap 0.46
    # on, a list of (rows, features) per class before; average it with the rows
    if values.ndim == 3:
        values = values.mean(axis=2) if values.shape[1] == len(names) else values.mean(axis=0)
    return {n: float(v) for n, v in zip(names, values.mean(axis=0), strict=True)}


def explain_version(model: Pipeline, X: pd.DataFrame, y: np.ndarray, task: str,
                    seed: int) -> dict[str, Any]:
    """Everything stored about a version's behaviour, as JSON-safe data."""
    scoring = "neg_mean_absolute_error" if task == "regression" else "accuracy"
    out: dict[str, Any] = {"family": type(_estimator(model)).__name__,
                           "importance": importance(model, X, y, scoring, seed),
                           "importance_scoring": scoring}
    coef = coefficients(model)
    if coef is not None:
        out["coefficients"] = coef
    tree = tree_structure(model)
    if tree is not None:
        out["tree"] = tree
    try:
        shap_values = shap_summary(model, X, seed)
    except Exception as exc:  # an optional view: its failure never fails the update
        log.warning("SHAP summary skipped: %s: %s", type(exc).__name__, exc)
        out["errors"] = {"shap": f"{type(exc).__name__}: {exc}"}
        shap_values = None
    if shap_values is not None:
        out["shap"] = shap_values
    return out


def explain_row(model: Pipeline, row: pd.DataFrame, top: int = 10) -> dict[str, Any]:
    """Explain one prediction: contributions by occlusion, and neighbours for kNN."""
    prediction = model.predict(row)[0]
    numeric = np.issubdtype(np.asarray([prediction]).dtype, np.number)
    base = model.predict_proba(row)[0].max() if not numeric and hasattr(
        model, "predict_proba") else float(prediction) if numeric else None
    contributions = {}
    for column in row.columns:
        masked = row.copy()
        masked[column] = pd.NaT if pd.api.types.is_datetime64_any_dtype(row[column]) else np.nan
        if numeric:
            value = float(model.predict(masked)[0])
        else:
            value = float(model.predict_proba(masked)[0].max()) if hasattr(
                model, "predict_proba") else float(model.predict(masked)[0] == prediction)
        if base is not None:
            contributions[column] = float(base - value)
    ranked = sorted(contributions.items(), key=lambda kv: -abs(kv[1]))[:top]
    out: dict[str, Any] = {"prediction": prediction.item() if hasattr(prediction, "item")
                           else prediction, "contributions": dict(ranked),
                           "method": "change in prediction when the column is missing"}
    estimator = _estimator(model)
    if hasattr(estimator, "kneighbors"):
        encoded, _ = _encoded(model, row)
        memory = np.asarray(estimator.y_memory_)  # MemoryKNN: the rows it remembers
        distances, indices = estimator.kneighbors(encoded, n_neighbors=min(5, len(memory)))
        targets = memory[indices[0]]
        out["neighbours"] = [{"training_row": int(i), "distance": float(d),
                              "target": t.item() if hasattr(t, "item") else t}
                             for i, d, t in zip(indices[0], distances[0], targets, strict=True)]
    return out


def explain_answer(model: Pipeline, fallback: Pipeline | None, router: Router | None,
                   row: pd.DataFrame) -> dict[str, Any]:
    """Explain one row's prediction by the model that answers it in serving: the champion,
    or the fallback when a proven routing rule sends the row there (with the values the
    fallback reads: numbers limited to the training range)."""
    if router is None or fallback is None:
        return {"route": "champion", "route_reason": "", **explain_row(model, row)}
    to_fallback, reasons = router.route(within_float32(row))
    if to_fallback[0]:
        return {"route": "fallback", "route_reason": str(reasons[0]),
                **explain_row(fallback, router.bounded(row))}
    return {"route": "champion", "route_reason": str(reasons[0]), **explain_row(model, row)}
