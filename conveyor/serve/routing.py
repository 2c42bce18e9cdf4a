"""Flexible prediction: send each row to the champion or to a robust fallback model.

The champion is the best model on validation data, but some models need
complete, in-range input (a linear model on one-hot columns extrapolates
wildly on a value ten times the training maximum). :class:`Router` learns
from the training window what normal input looks like and flags rows that
are not, with the first reason that applies:

1. ``missing``: more than ``max_missing_share`` of the features are missing;
2. ``out_of_range:<column>``: a number outside the training range widened by
   ``range_margin`` of its width;
3. ``unseen_category:<column>``: a level never seen in training;
4. ``anomaly``: an IsolationForest fitted on the training window scores the
   row among its most isolated ``contamination`` share.

Flagged rows are answered by the fallback (a model that takes missing values
and outliers natively), the rest by the champion.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import IsolationForest

MAX_LEVELS = 10_000


class Router(BaseEstimator):
    """Per-row routing rules learned from the training window.

    >>> train = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "c": ["a", "b", "a", "b"]})
    >>> router = Router(anomaly=False).fit(train)
    >>> rows = pd.DataFrame({"x": [1.5, 9.0, 1.0, None], "c": ["a", "a", "z", None]})
    >>> router.route(rows)[1].tolist()
    ['', 'out_of_range:x', 'unseen_category:c', 'missing']
    """

    def __init__(self, max_missing_share: float = 0.5, range_margin: float = 0.1,
                 unseen_categories: bool = True, anomaly: bool = True,
                 contamination: float = 0.005, seed: int = 0) -> None:
        self.max_missing_share = max_missing_share
        self.range_margin = range_margin
        self.unseen_categories = unseen_categories
        self.anomaly = anomaly
        self.contamination = contamination
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: Any = None) -> Router:
        self.numeric_, self.low_, self.high_, self.levels_ = [], [], [], {}
        for column in X.columns:
            values = X[column]
            if pd.api.types.is_datetime64_any_dtype(values):
                continue
            if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                finite = values.astype(float)
                finite = finite[np.isfinite(finite)]
                if finite.empty:
                    continue
                width = float(finite.max() - finite.min())
                self.numeric_.append(str(column))
                self.low_.append(float(finite.min()) - self.range_margin * width)
                self.high_.append(float(finite.max()) + self.range_margin * width)
            else:
                levels = values.dropna().astype(str).value_counts().index[:MAX_LEVELS]
                self.levels_[str(column)] = sorted(levels.tolist())
        self.columns_ = [str(c) for c in X.columns if not pd.api.types.is_datetime64_any_dtype(
            X[c])]
        self.medians_ = [float(X[c].astype(float).median()) for c in self.numeric_]
        self.forest_ = None
        if self.anomaly and self.numeric_:
            self.forest_ = IsolationForest(n_estimators=100, max_samples=min(256, len(X)),
                                           contamination=self.contamination,
                                           random_state=self.seed).fit(self._numbers(X))
        return self

    def _numbers(self, X: pd.DataFrame) -> np.ndarray:
        numbers = X[self.numeric_].apply(pd.to_numeric, errors="coerce").astype(float)
        return numbers.fillna(dict(zip(self.numeric_, self.medians_, strict=True))).to_numpy()

    def route(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Return (to_fallback, reason) per row; the reason is '' for champion rows."""
        n = len(X)
        reason = np.full(n, "", dtype=object)

        def flag(mask: np.ndarray, why: str | np.ndarray) -> None:
            todo = mask & (reason == "")
            reason[todo] = why if isinstance(why, str) else why[todo]

        present = [c for c in self.columns_ if c in X.columns]
        missing = X[present].isna().mean(axis=1).to_numpy() if present else np.zeros(n)
        flag(missing > self.max_missing_share, "missing")
        if self.numeric_:
            numbers = X[self.numeric_].apply(pd.to_numeric, errors="coerce").to_numpy(float)
            outside = (numbers < np.asarray(self.low_)) | (numbers > np.asarray(self.high_))
            first = outside.argmax(axis=1)
            names = np.asarray([f"out_of_range:{c}" for c in self.numeric_], dtype=object)
            flag(outside.any(axis=1), names[first])
        if self.unseen_categories:
            for column, levels in self.levels_.items():
                values = X[column]
                unseen = values.notna() & ~values.astype(str).isin(levels)
                flag(unseen.to_numpy(), f"unseen_category:{column}")
        if self.forest_ is not None:
            flag(self.forest_.predict(self._numbers(X)) == -1, "anomaly")
        return reason != "", reason


def predict_routed(model: Any, fallback: Any, router: Router | None,
                   X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Predict every row with its model; return predictions and the route reasons."""
    if router is None or fallback is None:
        return np.asarray(model.predict(X)), np.full(len(X), "", dtype=object)
    to_fallback, reason = router.route(X)
    predictions = np.empty(len(X), dtype=object)
    if (~to_fallback).any():
        predictions[~to_fallback] = model.predict(X[~to_fallback])
    if to_fallback.any():
        predictions[to_fallback] = fallback.predict(X[to_fallback])
    if all(isinstance(p, (int, float, np.number)) for p in predictions[:1]):
        predictions = predictions.astype(float)
    return predictions, reason


def route_counts(reason: np.ndarray) -> dict[str, int]:
    """Rows per route: ``champion`` and each fallback reason kind.

    >>> route_counts(np.array(["", "missing", "out_of_range:x", ""], dtype=object))
    {'champion': 2, 'missing': 1, 'out_of_range': 1}
    """
    kinds = pd.Series([r.split(":")[0] if r else "champion" for r in reason], dtype=object)
    return {str(k): int(v) for k, v in kinds.value_counts().sort_index().items()}
