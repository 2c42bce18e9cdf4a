"""Model families: how to build an estimator of each family for a task.

A family's hyperparameters come from ``train.families.<name>.grid`` in the
config; parameters not in the grid keep the defaults below. Each family also
says how it can learn from a new batch without starting over
(:mod:`conveyor.train.incremental`) and which preprocessing variants it pairs
with by default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConfigError

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

# scikit-learn is imported by the functions that build and update models: the config
# checks family names against this registry, and `conveyor status` must not wait for it.


@dataclass(frozen=True)
class Family:
    """What conveyor knows about a model family."""

    build: Callable[[str, int], BaseEstimator]
    # how it learns from a new batch, (model, X, y, seed) -> (model, how); None: it is refit
    incremental: Callable[..., tuple[Any, str]] | None
    variants: tuple[str, ...]  # default preprocessing variants
    takes_nan: bool  # accepts missing values and ordinal category codes as they are
    # rank by cost to fit and to predict (lower is cheaper); a fixed order, so a choice
    # made by cost does not depend on a timing
    cost: int
    # the fully qualified types beyond skops' defaults that this family's fitted models
    # hold (conveyor.serve.bundle loads a model file only if every type is listed there)
    types: frozenset[str] = frozenset()


def _linear(task: str, seed: int) -> BaseEstimator:
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == "regression":
        return Ridge()
    return LogisticRegression(max_iter=2000, random_state=seed)


def _sgd(task: str, seed: int) -> BaseEstimator:
    from sklearn.linear_model import SGDClassifier, SGDRegressor

    if task == "regression":
        return SGDRegressor(penalty="l2", alpha=1e-4, max_iter=200, tol=1e-3, random_state=seed)
    return SGDClassifier(loss="log_loss", alpha=1e-4, max_iter=200, tol=1e-3, random_state=seed)


def _knn(task: str, seed: int) -> BaseEstimator:
    from conveyor.train.incremental import MemoryKNN

    return MemoryKNN(task=task)


def _tree(task: str, seed: int) -> BaseEstimator:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    if task == "regression":
        return DecisionTreeRegressor(random_state=seed)
    return DecisionTreeClassifier(random_state=seed)


def _forest(task: str, seed: int) -> BaseEstimator:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    common = {"n_estimators": 50, "min_samples_leaf": 5, "max_samples": 0.5,
              "n_jobs": 1, "random_state": seed}
    if task == "regression":
        return RandomForestRegressor(**common)
    return RandomForestClassifier(**common)


def _hgb(task: str, seed: int) -> BaseEstimator:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    common = {"max_iter": 200, "learning_rate": 0.1, "early_stopping": False,
              "categorical_features": "from_dtype", "random_state": seed}
    if task == "regression":
        return HistGradientBoostingRegressor(**common)
    return HistGradientBoostingClassifier(**common)


def _incremental(name: str) -> Callable[..., tuple[Any, str]]:
    """An update of :mod:`conveyor.train.incremental` by name, imported when it runs."""
    def update(*args: Any, **kwargs: Any) -> tuple[Any, str]:
        from conveyor.train import incremental

        function: Callable[..., tuple[Any, str]] = getattr(incremental, name)
        return function(*args, **kwargs)

    update.__name__ = update.__qualname__ = name
    return update


partial_fit_passes, more_memory, added_trees = (
    _incremental(n) for n in ("partial_fit_passes", "more_memory", "added_trees"))

_TREE = frozenset({"sklearn.tree._tree.Tree", "sklearn.tree._classes.DecisionTreeRegressor",
                   "sklearn.tree._classes.DecisionTreeClassifier"})
_FOREST = _TREE | {"sklearn.ensemble._forest.RandomForestRegressor",
                   "sklearn.ensemble._forest.RandomForestClassifier"}
_LINEAR = frozenset({"sklearn.linear_model._ridge.Ridge",
                     "sklearn.linear_model._logistic.LogisticRegression"})
_SGD = frozenset({"sklearn.linear_model._stochastic_gradient.SGDRegressor",
                  "sklearn.linear_model._stochastic_gradient.SGDClassifier"})
# k-d tree and the distance of each Minkowski p (1, 2, other, infinity)
_KNN = frozenset({"conveyor.train.incremental.MemoryKNN", "sklearn.neighbors._kd_tree.KDTree",
                  "sklearn.neighbors._regression.KNeighborsRegressor",
                  "sklearn.neighbors._classification.KNeighborsClassifier",
                  "sklearn.neighbors._ball_tree.BallTree",
                  *(f"sklearn.metrics._dist_metrics.{name}Distance64"
                    for name in ("Euclidean", "Manhattan", "Minkowski", "Chebyshev"))})
_HGB = frozenset({"sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
                  "sklearn.ensemble._hist_gradient_boosting.gradient_boosting."
                  "HistGradientBoostingRegressor",
                  "sklearn.ensemble._hist_gradient_boosting.gradient_boosting."
                  "HistGradientBoostingClassifier",
                  "conveyor.train.incremental.AddedTrees", "sklearn.tree._tree.Tree",
                  # native categories keep a partial of check_array; skops rebuilds the
                  # partial from its parts (each checked in turn) and calls nothing
                  "functools.partial", "sklearn.utils.validation.check_array"})

FAMILIES: dict[str, Family] = {
    "linear": Family(_linear, None, ("onehot", "robust"), takes_nan=False, cost=10,
                     types=_LINEAR),
    "sgd": Family(_sgd, partial_fit_passes, ("onehot", "robust"), takes_nan=False, cost=20,
                  types=_SGD),
    "knn": Family(_knn, more_memory, ("onehot",), takes_nan=False, cost=40, types=_KNN),
    "tree": Family(_tree, None, ("native",), takes_nan=True, cost=30, types=_TREE),
    "forest": Family(_forest, None, ("native",), takes_nan=True, cost=60, types=_FOREST),
    "hgb": Family(_hgb, added_trees, ("native",), takes_nan=True, cost=50, types=_HGB),
}


def loss_params(task: str, metric: str) -> dict[str, dict[str, Any]]:
    """Parameters that make a family fit the loss its models are judged by, unless the
    family's grid sets them: the mean absolute error is smallest for the median, so
    with ``mae`` histogram gradient boosting fits ``absolute_error`` (squared error
    fits the mean, which a skewed target such as a delay pulls upwards).

    >>> loss_params("regression", "mae")
    {'hgb': {'loss': 'absolute_error'}}
    >>> loss_params("regression", "rmse")
    {}
    """
    if task == "regression" and metric == "mae":
        return {"hgb": {"loss": "absolute_error"}}
    return {}


def cost_rank(family: str) -> int:
    """The family's rank by cost (lower is cheaper to fit and to predict).

    >>> sorted(FAMILIES, key=cost_rank)
    ['linear', 'sgd', 'tree', 'knn', 'hgb', 'forest']
    """
    return FAMILIES[family].cost


def build_estimator(family: str, task: str, params: dict[str, Any], seed: int) -> BaseEstimator:
    """Return an unfitted estimator of ``family`` with ``params`` set.

    The linear family's ``alpha`` (Ridge's penalty) means the same for classes:
    LogisticRegression gets ``C = 1 / alpha``, so one grid serves both tasks.

    >>> build_estimator("tree", "regression", {"max_depth": 3}, seed=0)
    DecisionTreeRegressor(max_depth=3, random_state=0)
    >>> build_estimator("linear", "classification", {"alpha": 4.0}, seed=0).C
    0.25
    """
    if family == "linear" and task == "classification" and "alpha" in params:
        params = {k: v for k, v in params.items() if k != "alpha"} | {"C": 1 / params["alpha"]}
    try:
        estimator = FAMILIES[family].build(task, seed)
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
