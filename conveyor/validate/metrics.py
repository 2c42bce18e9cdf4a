"""Quality metrics: one place computes them, for selection, promotion and reports."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

LOWER_IS_BETTER = {"mae", "rmse", "log_loss"}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    """Return MAE, RMSE and R2.

    >>> regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))["mae"]
    0.6666666666666666
    """
    r2 = float(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else None
    return {"mae": float(skm.mean_absolute_error(y_true, y_pred)),
            "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
            "r2": r2}


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray
) -> dict[str, float | None]:
    """Return accuracy, F1 (macro), ROC AUC and log loss (None where undefined)."""
    out: dict[str, float | None] = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "f1": float(skm.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "roc_auc": None, "log_loss": None,
    }
    if proba is not None:
        try:
            if len(classes) == 2:
                out["roc_auc"] = float(skm.roc_auc_score(y_true, proba[:, 1]))
            else:
                out["roc_auc"] = float(skm.roc_auc_score(y_true, proba, multi_class="ovr",
                                                         labels=classes))
        except ValueError:  # one class only in y_true
            out["roc_auc"] = None
        # by row: a class the model never saw (a new level of the target) costs the
        # clipped -log(1e-15) instead of failing, as scikit-learn's log_loss would
        out["log_loss"] = float(row_losses("log_loss", y_true, y_pred, proba, classes).mean())
    return out


def score_model(model: Any, task: str, X: Any, y: np.ndarray) -> dict[str, float | None]:
    """Predict with a fitted model and return all metrics of its task."""
    y_pred = model.predict(X)
    if task == "regression":
        return regression_metrics(np.asarray(y, dtype=float), np.asarray(y_pred, dtype=float))
    proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    return classification_metrics(np.asarray(y), np.asarray(y_pred), proba,
                                  np.asarray(model.classes_))


def score_predictions(task: str, y: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None,
                      classes: np.ndarray | None) -> dict[str, float | None]:
    """All metrics of the task for predictions already made (and class probabilities)."""
    if task == "regression":
        return regression_metrics(np.asarray(y, dtype=float), np.asarray(y_pred, dtype=float))
    return classification_metrics(np.asarray(y), np.asarray(y_pred), proba,
                                  np.asarray(classes))


def row_losses(metric: str, y: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None,
               classes: np.ndarray | None) -> np.ndarray:
    """Each row's share of the metric's loss, so two models can be compared row by row:
    absolute error (MAE), squared error (RMSE, R2), log loss (log loss, ROC AUC, when
    probabilities exist) or 0/1 error (accuracy, F1).

    >>> row_losses("mae", np.array([1.0, 2.0]), np.array([2.0, 2.5]), None, None).tolist()
    [1.0, 0.5]
    >>> row_losses("accuracy", np.array(["a", "b"]), np.array(["a", "a"]), None, None).tolist()
    [0.0, 1.0]
    """
    if metric == "mae":
        return np.abs(np.asarray(y, dtype=float) - np.asarray(y_pred, dtype=float))
    if metric in ("rmse", "r2"):
        return (np.asarray(y, dtype=float) - np.asarray(y_pred, dtype=float)) ** 2
    if metric in ("log_loss", "roc_auc") and proba is not None and classes is not None:
        at = np.searchsorted(np.asarray(classes), np.asarray(y))
        at = np.clip(at, 0, proba.shape[1] - 1)
        known = np.asarray(classes)[at] == np.asarray(y)
        p = np.where(known, proba[np.arange(len(at)), at], 0.0)
        return -np.log(np.clip(p, 1e-15, 1.0))
    return (np.asarray(y) != np.asarray(y_pred)).astype(float)


def is_better(metric: str, challenger: float | None, incumbent: float | None,
              margin: float = 0.0) -> bool:
    """Return whether ``challenger`` beats ``incumbent`` by a relative ``margin``.

    >>> is_better("mae", 9.0, 10.0, margin=0.05), is_better("mae", 9.8, 10.0, margin=0.05)
    (True, False)
    >>> is_better("r2", 0.5, 0.4), is_better("mae", 10.0, 10.0 + 1e-12)
    (True, False)
    """
    if challenger is None or not np.isfinite(challenger):
        return False
    if incumbent is None or not np.isfinite(incumbent):
        return True
    # a floor on the margin, so two equal models never "beat" each other on rounding noise
    needed = max(margin, 1e-9) * abs(incumbent)
    if metric in LOWER_IS_BETTER:
        return challenger < incumbent - needed
    return challenger > incumbent + needed


def sort_key(metric: str, value: float | None) -> float:
    """Return a key that sorts the best score first (missing scores last)."""
    if value is None or not np.isfinite(value):
        return float("inf")
    return value if metric in LOWER_IS_BETTER else -value
