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

from conveyor.analyze.quality import USABLE_LIMIT

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
        """Numeric features for the anomaly forest: missing as the median, and limited to
        the widened range (rows beyond it are flagged before the forest is asked, and the
        forest works in float32, where 1e308 or inf would be refused)."""
        numbers = X[self.numeric_].apply(pd.to_numeric, errors="coerce").astype(float)
        numbers = numbers.fillna(dict(zip(self.numeric_, self.medians_, strict=True)))
        return np.clip(numbers.to_numpy(), self.low_, self.high_)

    def bounded(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return ``X`` with each numeric feature limited to its widened training range.

        The fallback answers out-of-range rows with these values: a tree (every fallback
        family is tree-based) splits only inside the training range, so its prediction
        is the one the unbounded value would get, while ``inf`` or ``1e308`` would be
        refused by scikit-learn. Missing values stay missing.

        >>> router = Router(anomaly=False, range_margin=0.0).fit(pd.DataFrame({"x": [0.0, 2.0]}))
        >>> router.bounded(pd.DataFrame({"x": [np.inf, -1e308, 1.0, None]}))["x"].tolist()
        [2.0, 0.0, 1.0, nan]
        """
        out = X.copy()
        for column, low, high in zip(self.numeric_, self.low_, self.high_, strict=True):
            if column in out.columns:
                out[column] = pd.to_numeric(out[column], errors="coerce").clip(low, high)
        return out

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
            for column, known in self._level_sets().items():
                values = X[column]
                # a set lookup per value: pandas' isin re-reads the level list every call
                # (1.3 ms per column for a single API row with a few thousand levels)
                seen = np.fromiter((str(v) in known for v in values), bool, count=n)
                flag(values.notna().to_numpy() & ~seen, f"unseen_category:{column}")
        if self.forest_ is not None:
            todo = reason == ""  # rows already routed need no anomaly score
            if todo.any():
                anomalous = np.zeros(n, dtype=bool)
                anomalous[todo] = self.forest_.predict(self._numbers(X[todo])) == -1
                flag(anomalous, "anomaly")
        return reason != "", reason

    def _level_sets(self) -> dict[str, frozenset[str]]:
        """Known levels per column as sets, built once per loaded router (never saved)."""
        sets = self.__dict__.get("_sets")
        if sets is None:
            sets = {column: frozenset(levels) for column, levels in self.levels_.items()}
            self.__dict__["_sets"] = sets
        return sets

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_sets", None)  # a cache: rebuilt after loading
        return state


def within_float32(X: pd.DataFrame) -> pd.DataFrame:
    """Return ``X`` with numbers beyond ±3.4e38 (and ±inf) set to that limit.

    scikit-learn's trees and forests work in float32 and refuse such values; a
    number this large is beyond every training value anyway, so the limit falls in
    the same branch of every split. Missing values stay missing.

    >>> within_float32(pd.DataFrame({"x": [np.inf, -1e308, 1.5, None]}))["x"].tolist()
    [3.4028234663852886e+38, -3.4028234663852886e+38, 1.5, nan]
    """
    numeric = [c for c in X.columns if pd.api.types.is_float_dtype(X[c])]
    if not numeric or not (np.abs(X[numeric].to_numpy()) > USABLE_LIMIT).any():
        return X
    out = X.copy()
    out[numeric] = out[numeric].clip(-USABLE_LIMIT, USABLE_LIMIT)
    return out


def predict_routed(model: Any, fallback: Any, router: Router | None,
                   X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Predict every row with its model; return predictions and the route reasons."""
    X = within_float32(X)
    if router is None or fallback is None:
        return np.asarray(model.predict(X)), np.full(len(X), "", dtype=object)
    to_fallback, reason = router.route(X)
    predictions = np.empty(len(X), dtype=object)
    if (~to_fallback).any():
        predictions[~to_fallback] = model.predict(X[~to_fallback])
    if to_fallback.any():
        predictions[to_fallback] = fallback.predict(router.bounded(X[to_fallback]))
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
