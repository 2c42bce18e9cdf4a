"""The floor every model must clear: the window mean (regression) or majority class."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor

from conveyor.validate.metrics import score_model
from conveyor.validate.schemes import Split


def baseline_scores(X: pd.DataFrame, y: np.ndarray, splits: list[Split], task: str,
                    ) -> tuple[dict[str, float | None], float]:
    """Score the constant baseline on the same splits; return mean metrics and seconds.

    >>> X = pd.DataFrame({"a": range(6)})
    >>> y = np.array([1.0, 1.0, 1.0, 1.0, 3.0, 5.0])
    >>> metrics, _ = baseline_scores(X, y, [(np.arange(4), np.arange(4, 6))], "regression")
    >>> metrics["mae"]  # predicts the training mean, 1.0
    3.0
    """
    start = time.perf_counter()
    folds = []
    for train, test in splits:
        model = DummyRegressor() if task == "regression" else DummyClassifier()
        model.fit(X.iloc[train], y[train])
        folds.append(score_model(model, task, X.iloc[test], y[test]))
    metrics = {key: (float(np.mean([f[key] for f in folds if f[key] is not None]))
                     if any(f[key] is not None for f in folds) else None) for key in folds[0]}
    return metrics, time.perf_counter() - start
