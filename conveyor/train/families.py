"""Model families: how to build an estimator of each family for a task.

A family's hyperparameters come from ``train.families.<name>.grid`` in the
config; parameters not in the grid keep scikit-learn's defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from conveyor.errors import ConfigError


def _linear(task: str, seed: int) -> BaseEstimator:
    if task == "regression":
        return Ridge()
    return LogisticRegression(max_iter=2000, random_state=seed)


def _knn(task: str, seed: int) -> BaseEstimator:
    return KNeighborsRegressor() if task == "regression" else KNeighborsClassifier()


def _tree(task: str, seed: int) -> BaseEstimator:
    if task == "regression":
        return DecisionTreeRegressor(random_state=seed)
    return DecisionTreeClassifier(random_state=seed)


FAMILIES: dict[str, Callable[[str, int], BaseEstimator]] = {
    "linear": _linear,
    "knn": _knn,
    "tree": _tree,
}


def build_estimator(family: str, task: str, params: dict[str, Any], seed: int) -> BaseEstimator:
    """Return an unfitted estimator of ``family`` with ``params`` set.

    >>> build_estimator("tree", "regression", {"max_depth": 3}, seed=0)
    DecisionTreeRegressor(max_depth=3, random_state=0)
    """
    try:
        estimator = FAMILIES[family](task, seed)
    except KeyError:
        raise ConfigError(
            f"unknown model family '{family}'; choose from {sorted(FAMILIES)}"
        ) from None
    valid = estimator.get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(
            f"train.families.{family}.grid: {unknown} not a parameter of "
            f"{type(estimator).__name__}; valid: {sorted(valid)}"
        )
    return estimator.set_params(**params)
