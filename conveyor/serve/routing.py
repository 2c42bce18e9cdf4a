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

A rule sends its rows to the fallback (a model that takes missing values and
outliers natively) only where it has earned it: ``rules_`` holds, per rule, whether
the fallback was proven better than the champion on the rows that rule flagged
(:mod:`conveyor.validate.served` gathers that evidence and decides). A flagged row
whose rules are all off stays with the champion and is still reported as unusual.
Time-like numbers (they grow with the stream, so every new row is beyond the
training range) and identifier-like text (new levels keep arriving) never flag a
row by themselves.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import IsolationForest

from conveyor.analyze.quality import USABLE_LIMIT
from conveyor.serve.forest import PackedForest

MAX_LEVELS = 10_000
TIME_LIKE_RANK_CORRELATION = 0.9  # |Spearman| of a number with the rows' time order
NEW_LEVEL_SHARE = 0.01  # identifier-like: this share of the newest rows bring new levels
NEW_LEVELS = 10  # ... and at least this many different ones
FOREST_ROWS = 5_000  # rows the anomaly forest is fitted on (spread over the window)


def time_like(values: pd.Series) -> bool:
    """Whether a number rises or falls with the rows' order (the window is in time
    order): a year, a day number, a copy of the timestamp. Its newest values are beyond
    the training range by nature, so being out of range says nothing unusual.

    >>> time_like(pd.Series([1.0, 2.0, 2.0, 3.0, 5.0])), time_like(pd.Series([3.0, 1, 4, 1, 5]))
    (True, False)
    """
    numbers = pd.to_numeric(values, errors="coerce").reset_index(drop=True)
    numbers = numbers[np.isfinite(numbers.astype(float))]
    if len(numbers) < 3 or numbers.nunique() < 2:
        return False
    order = pd.Series(np.arange(len(numbers), dtype=float), index=numbers.index)
    rho = numbers.rank().corr(order.rank())
    return bool(np.isfinite(rho) and abs(rho) >= TIME_LIKE_RANK_CORRELATION)


def identifier_like(values: pd.Series) -> bool:
    """Whether a text column keeps bringing new levels (an id, a tail number, a free
    text): more than half its values are distinct, or over ``NEW_LEVEL_SHARE`` of the
    newest tenth of the rows (in time order) bring a level the older rows never had, and
    at least ``NEW_LEVELS`` different ones (a few rare levels seen late are not a
    stream of new ones). An unseen level is then routine, not unusual.

    >>> identifier_like(pd.Series([f"id{i}" for i in range(50)]))
    True
    >>> steady = ["a", "b"] * 500
    >>> late = [f"new{i}" for i in range(12)]
    >>> identifier_like(pd.Series(steady + late)), identifier_like(pd.Series(steady + late[:3]))
    (True, False)
    """
    codes, levels = pd.factorize(values.dropna())
    n = len(codes)
    if n < 20:
        return False
    if len(levels) > n / 2:
        return True
    cut = n - max(n // 10, 1)
    older = np.zeros(len(levels), dtype=bool)
    older[codes[:cut]] = True
    newest = codes[cut:]
    new = newest[~older[newest]]
    return bool(len(new) > NEW_LEVEL_SHARE * len(newest) and len(set(new)) >= NEW_LEVELS)


class Router(BaseEstimator):
    """Per-row routing rules learned from the training window.

    >>> train = pd.DataFrame({"x": [0.0, 3.0, 1.0, 2.0], "c": ["a", "b", "a", "b"]})
    >>> router = Router(anomaly=False).fit(train)
    >>> rows = pd.DataFrame({"x": [1.5, 9.0, 1.0, None], "c": ["a", "a", "z", None]})
    >>> router.route(rows)[1].tolist()
    ['', 'out_of_range:x', 'unseen_category:c', 'missing']
    >>> kept = router.with_rules({"unseen_category:c": True})  # only this rule is proven
    >>> [(bool(f), r) for f, r in zip(*kept.route(rows))]
    [(False, ''), (False, 'out_of_range:x'), (True, 'unseen_category:c'), (False, 'missing')]
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
        """Learn the normal ranges and levels of ``X`` (the training window, in time
        order); every rule routes until :meth:`with_rules` says otherwise."""
        self.numeric_, self.low_, self.high_, self.levels_ = [], [], [], {}
        self.skipped_: dict[str, str] = {}
        for column in X.columns:
            values = X[column]
            if pd.api.types.is_datetime64_any_dtype(values):
                continue
            if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                finite = values.astype(float)
                finite = finite[np.isfinite(finite)]
                if finite.empty:
                    continue
                if time_like(finite):
                    self.skipped_[str(column)] = "time-like"
                    continue
                width = float(finite.max() - finite.min())
                self.numeric_.append(str(column))
                self.low_.append(float(finite.min()) - self.range_margin * width)
                self.high_.append(float(finite.max()) + self.range_margin * width)
            elif identifier_like(values):
                self.skipped_[str(column)] = "identifier-like"
            else:
                levels = values.dropna().astype(str).value_counts().index[:MAX_LEVELS]
                self.levels_[str(column)] = sorted(levels.tolist())
        self.columns_ = [str(c) for c in X.columns if not pd.api.types.is_datetime64_any_dtype(
            X[c])]
        self.medians_ = [float(X[c].astype(float).median()) for c in self.numeric_]
        self.forest_ = None
        if self.anomaly and self.numeric_:
            # each tree reads 256 rows; fit scores every row it is given to place the
            # contamination threshold, and a spread sample of rows places it as well
            rows = X.iloc[np.linspace(0, len(X) - 1, min(len(X), FOREST_ROWS)).astype(int)]
            self.forest_ = IsolationForest(
                n_estimators=100, max_samples=min(256, len(X)), contamination=self.contamination,
                random_state=self.seed).fit(self._numbers(number_matrix(rows, self.numeric_)))
        self.rules_: dict[str, bool] | None = None
        return self

    def rules(self) -> list[str]:
        """Every rule this router can flag a row by, in the order they are tried."""
        return (["missing"] + [f"out_of_range:{c}" for c in self.numeric_]
                + ([f"unseen_category:{c}" for c in self.levels_] if self.unseen_categories
                   else []) + (["anomaly"] if self.forest_ is not None else []))

    def with_rules(self, rules: dict[str, bool]) -> Router:
        """A copy that sends a flagged row to the fallback only for the rules set True
        (a rule not named stays with the champion)."""
        routed = copy.copy(self)
        routed.rules_ = {key: bool(rules.get(key, False)) for key in self.rules()}
        return routed

    def _numbers(self, numbers: np.ndarray) -> np.ndarray:
        """Numeric features for the anomaly forest: missing as the median, and limited to
        the widened range (rows beyond it are flagged before the forest is asked, and the
        forest works in float32, where 1e308 or inf would be refused)."""
        numbers = np.where(np.isnan(numbers), np.asarray(self.medians_, dtype=float), numbers)
        return np.clip(numbers, self.low_, self.high_)

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

    def flags(self, X: pd.DataFrame) -> tuple[list[str], np.ndarray]:
        """Every rule's verdict on every row: the rules (:meth:`rules`) and a boolean
        matrix, rows by rules. The anomaly forest is asked only about rows no other rule
        flagged."""
        n, keys = len(X), self.rules()
        flagged = np.zeros((n, len(keys)), dtype=bool)
        numbers = number_matrix(X, self.numeric_)  # once: for the range rules and the forest
        numeric = set(self.numeric_)
        others = [c for c in self.columns_ if c in X.columns and c not in numeric]
        if self.numeric_ or others:
            absent = np.isnan(numbers).sum(axis=1) + sum(
                (X[c].isna().to_numpy() for c in others), np.zeros(n))
            flagged[:, 0] = absent / (len(self.numeric_) + len(others)) > self.max_missing_share
        at = 1
        if self.numeric_:
            width = len(self.numeric_)
            flagged[:, at:at + width] = (numbers < np.asarray(self.low_)) | (
                numbers > np.asarray(self.high_))
            at += width
        if self.unseen_categories:
            for column, known in self._level_sets().items():
                values = X[column].to_numpy(dtype=object)
                # a set lookup per value: pandas' isin re-reads the level list every call
                # (1.3 ms per column for a single API row with a few thousand levels)
                seen = np.fromiter((str(v) in known for v in values), bool, count=n)
                flagged[:, at] = ~pd.isna(values) & ~seen
                at += 1
        if self.forest_ is not None:
            todo = ~flagged.any(axis=1)  # rows already flagged need no anomaly score
            if todo.any():
                usual = self._numbers(numbers[todo])
                flagged[todo, at] = self._packed_forest().predict(usual) == -1
        return keys, flagged

    def route(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Return (to_fallback, reason) per row (see :func:`choose_routes`)."""
        keys, flagged = self.flags(X)
        return choose_routes(keys, flagged, self.proven_rules())

    def proven_rules(self) -> dict[str, bool] | None:
        """Which rules send rows to the fallback; None for a router saved before rules
        had to be proven (every rule routes)."""
        return self.__dict__.get("rules_")

    def _level_sets(self) -> dict[str, frozenset[str]]:
        """Known levels per column as sets, built once per loaded router (never saved)."""
        sets = self.__dict__.get("_sets")
        if sets is None:
            sets = {column: frozenset(levels) for column, levels in self.levels_.items()}
            self.__dict__["_sets"] = sets
        return sets

    def _packed_forest(self) -> PackedForest:
        """The anomaly forest packed for fast scoring, built once per loaded router."""
        packed = self.__dict__.get("_packed")
        if packed is None:
            packed = self.__dict__["_packed"] = PackedForest(self.forest_)
        return packed

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        for cache in ("_sets", "_packed"):  # rebuilt after loading
            state.pop(cache, None)
        return state


def number_matrix(X: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """``columns`` of ``X`` as a float matrix, anything not a number missing (NaN);
    columns that are numbers already are taken as they are (one row costs microseconds,
    not a pandas conversion per column)."""
    part = X[columns]
    if all(pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t)
           for t in part.dtypes):
        return part.to_numpy(dtype=float, na_value=np.nan)
    return part.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def choose_routes(rules: list[str], flagged: np.ndarray, on: dict[str, bool] | None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Which rows go to the fallback (a rule that is on flagged them) and why: the first
    such rule; for a row the champion answers, the first rule that flagged it anyway (an
    unusual row kept), or ''. ``on`` None: every rule routes (a router saved before
    rules had to be proven).

    >>> flagged = np.array([[False, False], [True, False], [True, True]])
    >>> choose_routes(["missing", "anomaly"], flagged, {"missing": False, "anomaly": True})
    (array([False, False,  True]), array(['', 'missing', 'anomaly'], dtype=object))
    """
    live = np.array([on is None or bool(on.get(rule, False)) for rule in rules], dtype=bool)
    names = np.asarray([*rules, ""], dtype=object)
    routed = flagged & live
    to_fallback = np.asarray(routed.any(axis=1), dtype=bool)
    # argmax finds the first True of a row; a row with none gets the '' at the end
    first = np.where(to_fallback, routed.argmax(axis=1),
                     np.where(flagged.any(axis=1), flagged.argmax(axis=1), len(rules)))
    return to_fallback, names[first]


def within_float32(X: pd.DataFrame) -> pd.DataFrame:
    """Return ``X`` with numbers beyond ±3.4e38 (and ±inf) set to that limit.

    scikit-learn's trees and forests work in float32 and refuse such values; a
    number this large is beyond every training value anyway, so the limit falls in
    the same branch of every split. Missing values stay missing.

    >>> within_float32(pd.DataFrame({"x": [np.inf, -1e308, 1.5, None]}))["x"].tolist()
    [3.4028234663852886e+38, -3.4028234663852886e+38, 1.5, nan]
    """
    numeric = [str(c) for c, kind in X.dtypes.items() if pd.api.types.is_float_dtype(kind)]
    if not numeric or not (np.abs(X[numeric].to_numpy()) > USABLE_LIMIT).any():
        return X
    out = X.copy()
    out[numeric] = out[numeric].clip(-USABLE_LIMIT, USABLE_LIMIT)
    return out


def predict_routed(model: Any, fallback: Any, router: Router | None,
                   X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predict every row with the model that answers it; return the predictions, which
    rows the fallback answered and the route reasons (see :meth:`Router.route`)."""
    X = within_float32(X)
    if router is None or fallback is None:
        none = np.zeros(len(X), dtype=bool)
        return np.asarray(model.predict(X)), none, np.full(len(X), "", dtype=object)
    to_fallback, reason = router.route(X)
    predictions = np.empty(len(X), dtype=object)
    if (~to_fallback).any():
        predictions[~to_fallback] = model.predict(X[~to_fallback])
    if to_fallback.any():
        predictions[to_fallback] = fallback.predict(router.bounded(X[to_fallback]))
    if all(isinstance(p, (int, float, np.number)) for p in predictions[:1]):
        predictions = predictions.astype(float)
    return predictions, to_fallback, reason


def route_counts(to_fallback: np.ndarray, reason: np.ndarray) -> dict[str, int]:
    """Rows per route: ``champion`` for usual rows, the reason's kind for rows the
    fallback answered, and ``kept:<kind>`` for unusual rows the champion answered (their
    rule is not proven).

    >>> route_counts(np.array([False, True, False, False]),
    ...              np.array(["", "missing", "out_of_range:x", ""], dtype=object))
    {'champion': 2, 'kept:out_of_range': 1, 'missing': 1}
    """
    kinds = pd.Series(route_kinds(to_fallback, reason), dtype=object)
    return {str(k): int(v) for k, v in kinds.value_counts().sort_index().items()}


def route_kinds(to_fallback: np.ndarray, reason: np.ndarray) -> np.ndarray:
    """Per row, its route as counted: ``champion``, the reason's kind (the fallback
    answered), or ``kept:<kind>`` (unusual, the champion answered)."""
    return np.asarray([("" if f else "kept:") + r.split(":")[0] if r else "champion"
                       for f, r in zip(to_fallback, reason, strict=True)], dtype=object)


def is_fallback_route(route: str) -> bool:
    """Whether a route of :func:`route_counts` is one the fallback answered.

    >>> [is_fallback_route(r) for r in ("champion", "missing", "kept:anomaly")]
    [False, True, False]
    """
    return route != "champion" and not route.startswith("kept:")


def answered_by(to_fallback: np.ndarray) -> np.ndarray:
    """Per row, ``champion`` or ``fallback``."""
    return np.where(to_fallback, "fallback", "champion")
