"""Updating a fitted model with a new batch, without training it from scratch.

Each family that can learn incrementally does it its own way:

- ``sgd``: :meth:`partial_fit` on the new rows (a few passes), so the weights
  move from where they were;
- ``hgb``: *added trees*: a small booster fitted to what the current model
  still gets wrong on the new rows (residuals, or the logistic gradient for
  classes) is appended to the ensemble; the earlier trees stay as they were.
  (scikit-learn's own ``warm_start`` re-bins the new data but scores the old
  trees on the new bins, which makes the fit worse, so it is not used);
- ``knn``: :class:`MemoryKNN` keeps a bounded, time-ordered memory of rows;
  an update appends the new rows and forgets the oldest beyond the bound.

The preprocessing fitted with the model stays frozen: an update only changes
the last step, so the feature schema and encodings the model was validated
with do not move under it. Other families cannot learn incrementally and are
refit on the window (:func:`conveyor.train.update.can_update` says which).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.utils.metaestimators import available_if

from conveyor.errors import ModelError


class MemoryKNN(BaseEstimator):
    """k-nearest neighbours over a bounded, time-ordered memory of rows.

    Parameters
    ----------
    n_neighbors, weights, p: as in scikit-learn's KNeighbors estimators.
    memory: rows kept; the newest are kept when an update overflows it.
    task: ``regression`` or ``classification``.

    >>> knn = MemoryKNN(n_neighbors=1, memory=3).fit([[0.0], [1.0]], [0.0, 1.0])
    >>> knn.partial_fit([[5.0], [6.0]], [5.0, 6.0]).X_memory_.ravel().tolist()
    [1.0, 5.0, 6.0]
    >>> knn.predict([[0.2]]).tolist(), hasattr(knn, "predict_proba")  # a regressor
    ([1.0], False)
    """

    def __init__(self, n_neighbors: int = 5, weights: str = "uniform", p: int = 2,
                 memory: int = 50_000, task: str = "regression") -> None:
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.p = p
        self.memory = memory
        self.task = task

    def _inner(self) -> BaseEstimator:
        cls = KNeighborsRegressor if self.task == "regression" else KNeighborsClassifier
        k = min(self.n_neighbors, len(self.X_memory_))
        return cls(n_neighbors=k, weights=self.weights, p=self.p)

    def _refit(self) -> MemoryKNN:
        self.knn_ = self._inner().fit(self.X_memory_, self.y_memory_)
        if self.task != "regression":
            self.classes_ = self.knn_.classes_
        self.n_features_in_ = self.X_memory_.shape[1]
        return self

    def fit(self, X: Any, y: Any) -> MemoryKNN:
        X, y = np.asarray(X, dtype=float), np.asarray(y)
        self.X_memory_, self.y_memory_ = X[-self.memory:], y[-self.memory:]
        return self._refit()

    def partial_fit(self, X: Any, y: Any) -> MemoryKNN:
        X, y = np.asarray(X, dtype=float), np.asarray(y)
        self.X_memory_ = np.concatenate([self.X_memory_, X])[-self.memory:]
        self.y_memory_ = np.concatenate([self.y_memory_, y])[-self.memory:]
        return self._refit()

    def predict(self, X: Any) -> np.ndarray:
        return self.knn_.predict(np.asarray(X, dtype=float))

    # a regressor has none: callers that ask hasattr(model, "predict_proba") must see that
    @available_if(lambda self: self.task != "regression")
    def predict_proba(self, X: Any) -> np.ndarray:
        return self.knn_.predict_proba(np.asarray(X, dtype=float))

    def kneighbors(self, X: Any, n_neighbors: int | None = None) -> tuple[np.ndarray, ...]:
        return self.knn_.kneighbors(np.asarray(X, dtype=float), n_neighbors)


class AddedTrees(BaseEstimator):
    """A fitted gradient-boosting model plus boosters added on later batches.

    Regression adds each booster's prediction to the base prediction.
    Classification adds them to the base model's decision function (log-odds)
    and maps the sum back to probabilities, one booster per class for more
    than two classes.
    """

    def __init__(self, base: Any = None, stages: list[Any] | None = None,
                 learning_rate: float = 1.0) -> None:
        self.base = base
        self.stages = stages
        self.learning_rate = learning_rate

    def fit(self, X: Any, y: Any) -> AddedTrees:
        """Refit the base model from scratch on ``X, y`` and drop the added boosters."""
        self.base = clone(self.base).fit(X, y)
        self.stages = []
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return self.base is not None and hasattr(self.base, "n_features_in_")

    @property
    def classes_(self) -> np.ndarray:
        return self.base.classes_

    @property
    def n_features_in_(self) -> int:
        return self.base.n_features_in_

    def _raw(self, X: Any) -> np.ndarray:
        if isinstance(self.base, RegressorMixin):
            raw = self.base.predict(X).astype(float)
        else:
            raw = np.asarray(self.base.decision_function(X), dtype=float)
        for stage in self.stages or []:
            raw = raw + self.learning_rate * _stage_predict(stage, X)
        return raw

    def predict(self, X: Any) -> np.ndarray:
        raw = self._raw(X)
        if isinstance(self.base, RegressorMixin):
            return raw
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        raw = self._raw(X)
        if raw.ndim == 1:
            positive = expit(raw)
            return np.column_stack([1 - positive, positive])
        return softmax(raw, axis=1)

    def _more_tags(self) -> dict[str, Any]:  # pragma: no cover - scikit-learn < 1.6
        return {"requires_fit": True}


def _stage_predict(stage: Any, X: Any) -> np.ndarray:
    if isinstance(stage, list):
        return np.column_stack([s.predict(X) for s in stage])
    return stage.predict(X)


def _booster(template: Any, seed: int) -> HistGradientBoostingRegressor:
    """A small, strongly regularised regressor with the base model's categorical handling.

    One batch is little data and its residuals are mostly noise: few shallow
    steps and large leaves keep the booster to what the batch shows clearly.
    """
    params = template.get_params()
    # a regressor's booster fits the residuals with its loss (the median of them for
    # absolute_error); a classifier's fits gradients, which squared error suits
    loss = params["loss"] if isinstance(template, RegressorMixin) else "squared_error"
    return HistGradientBoostingRegressor(
        loss=loss,
        max_iter=max(10, params["max_iter"] // 10),
        learning_rate=min(params["learning_rate"], 0.05),
        max_depth=params.get("max_depth"), min_samples_leaf=max(params["min_samples_leaf"], 100),
        categorical_features=params["categorical_features"], early_stopping=False,
        random_state=seed)


def _without_empty_columns(X: Any) -> np.ndarray:
    """``X`` with every column that has no value at all set to 0.

    A batch can miss whole columns (cleaning leaves out one that failed its quality
    check, and the model reads it as all missing); scikit-learn's gradient boosting
    cannot bin a column with no values and fails. A constant column is never split
    on, so the booster learns nothing from it either way, and it predicts from the
    real column as the base model does.
    """
    X = np.asarray(X, dtype=float)
    empty = np.isnan(X).all(axis=0)
    if not empty.any():
        return X
    X = X.copy()
    X[:, empty] = 0.0
    return X


def add_trees(model: Any, X: Any, y: np.ndarray, seed: int = 0) -> AddedTrees:
    """Return ``model`` (a fitted gradient-boosting model) with a booster fitted on ``X, y``."""
    current = model if isinstance(model, AddedTrees) else AddedTrees(model, [])
    base = current.base
    fit_X = _without_empty_columns(X)
    if isinstance(base, RegressorMixin):
        stage: Any = _booster(base, seed).fit(fit_X, y - current.predict(X))
    else:
        proba = current.predict_proba(X)
        unseen = sorted(str(c) for c in set(np.unique(y)) - set(current.classes_))
        if unseen:
            raise ModelError(f"the batch has classes {unseen} the model never saw; retrain")
        onehot = (np.asarray(y)[:, None] == current.classes_[None, :]).astype(float)
        gradient = onehot - proba
        if len(current.classes_) == 2:
            stage = _booster(base, seed).fit(fit_X, gradient[:, 1])
        else:
            stage = [_booster(base, seed).fit(fit_X, gradient[:, k])
                     for k in range(len(current.classes_))]
    return AddedTrees(current.base, [*(current.stages or []), stage], current.learning_rate)


def partial_fit_passes(model: Any, Xt: Any, y: np.ndarray, seed: int = 0,
                       passes: int = 5) -> tuple[Any, str]:
    """A copy of an SGD model after ``passes`` passes of ``partial_fit`` over the batch."""
    updated = _copy(model)
    if isinstance(updated, ClassifierMixin):
        unseen = sorted(str(c) for c in set(np.unique(y)) - set(updated.classes_))
        if unseen:
            raise ModelError(f"the batch has classes {unseen} the model never saw; retrain")
    for _ in range(passes):
        updated.partial_fit(Xt, y)
    return updated, f"partial_fit: {passes} passes over {len(y)} new rows"


def added_trees(model: Any, Xt: Any, y: np.ndarray, seed: int = 0) -> tuple[Any, str]:
    """Gradient boosting with one more booster fitted on the batch's residuals."""
    updated = add_trees(model, Xt, y, seed)
    return updated, f"added trees: booster {len(updated.stages or [])} fitted on {len(y)} new rows"


def more_memory(model: Any, Xt: Any, y: np.ndarray, seed: int = 0) -> tuple[Any, str]:
    """A copy of a kNN model remembering the batch too (the oldest rows beyond its bound
    forgotten)."""
    updated = _copy(model).partial_fit(Xt, y)
    return updated, (f"memory: +{len(y)} rows, {len(updated.X_memory_)} kept "
                     f"(bound {updated.memory})")


def _copy(model: Any) -> Any:
    """A deep copy of a fitted estimator (``clone`` would forget what it learned)."""
    return copy.deepcopy(model)
