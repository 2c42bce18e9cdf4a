"""Regression predictions inside the target's domain.

A linear model can predict a negative count, and a model meeting a category level it
has not seen for months can predict ten times the training range. Every regression
pipeline conveyor fits is a :class:`BoundedPipeline`: ``fit`` records the training
target's range, ``predict`` clips to it widened by :data:`MARGIN` of its span on each
side, and never below zero when no training target was negative. The clip is part of
the model, so validation, the prequential score, file inference and the API all serve
and score the same clipped predictions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

MARGIN = 0.5  # share of the training target's span allowed beyond it on each side


def target_bounds(y: Any) -> tuple[float, float] | None:
    """Return the range predictions are clipped to, from training targets ``y``.

    >>> target_bounds([0.0, 10.0, 4.0])
    (0.0, 15.0)
    >>> target_bounds([-2.0, 2.0])
    (-4.0, 4.0)
    >>> target_bounds([]) is None
    True
    """
    values = np.asarray(y, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    low, high = float(values.min()), float(values.max())
    margin = MARGIN * (high - low)
    return (max(0.0, low - margin) if low >= 0 else low - margin), high + margin


def widened(bounds: tuple[float, float] | None, y: Any) -> tuple[float, float] | None:
    """Return ``bounds`` widened to cover the range new targets ``y`` call for."""
    more = target_bounds(y)
    if bounds is None or more is None:
        return bounds or more
    return min(bounds[0], more[0]), max(bounds[1], more[1])


class BoundedPipeline(Pipeline):
    """A regression pipeline whose predictions stay within the training target's domain
    (:func:`target_bounds`, kept in ``bounds_``)."""

    def fit(self, X: Any, y: Any = None, **params: Any) -> BoundedPipeline:
        super().fit(X, y, **params)
        self.bounds_ = target_bounds(y)
        return self

    def predict(self, X: Any, **params: Any) -> np.ndarray:
        predictions = super().predict(X, **params)
        bounds = getattr(self, "bounds_", None)
        if bounds is None:
            return np.asarray(predictions)
        return np.clip(np.asarray(predictions, dtype=float), bounds[0], bounds[1])


def rebuilt(original: Pipeline, steps: list[tuple[str, Any]], y: Any) -> Pipeline:
    """A pipeline of the same kind as ``original`` with ``steps`` (one of them updated on
    targets ``y``): a bounded pipeline keeps its bounds, widened for ``y``."""
    if not isinstance(original, BoundedPipeline):
        return Pipeline(steps)
    out = BoundedPipeline(steps)
    out.bounds_ = widened(getattr(original, "bounds_", None), y)
    return out
