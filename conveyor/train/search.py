"""The search: every (family, hyperparameters) candidate scored on time-ordered splits."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid
from sklearn.pipeline import Pipeline

from conveyor.config import FamilyConfig, PrepareConfig
from conveyor.prepare.features import FeatureMaker
from conveyor.prepare.preprocess import build_preprocessor
from conveyor.prepare.roles import Roles
from conveyor.train.families import build_estimator
from conveyor.validate.metrics import score_model, sort_key
from conveyor.validate.schemes import Split


@dataclass(frozen=True)
class Candidate:
    """One model configuration to try."""

    family: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Evaluation:
    """A candidate's scores, averaged over the scheme's test folds."""

    candidate: Candidate
    score: float | None
    metrics: dict[str, float | None]
    fit_seconds: float
    predict_seconds: float


def expand_grid(families: dict[str, FamilyConfig]) -> list[Candidate]:
    """Return every grid point of every enabled family, in config order.

    >>> [c.params for c in expand_grid({"knn": FamilyConfig(grid={"n_neighbors": [5, 9]})})]
    [{'n_neighbors': 5}, {'n_neighbors': 9}]
    """
    return [Candidate(name, dict(params))
            for name, family in families.items() if family.enabled
            for params in ParameterGrid(family.grid)]


def make_pipeline(candidate: Candidate, roles: Roles, prepare: PrepareConfig, task: str,
                  seed: int, maker: FeatureMaker | None = None) -> Pipeline:
    """Return the unfitted pipeline of a candidate: [features +] preprocessing + estimator."""
    steps: list[tuple[str, Any]] = [] if maker is None else [("features", clone(maker))]
    steps += [("prepare", build_preprocessor(roles, prepare)),
              ("model", build_estimator(candidate.family, task, candidate.params, seed))]
    return Pipeline(steps)


def _mean_metrics(folds: list[dict[str, float | None]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in folds[0]:
        values = [f[key] for f in folds if f[key] is not None]
        out[key] = float(np.mean(values)) if values else None
    return out


def evaluate_candidate(candidate: Candidate, X: pd.DataFrame, y: np.ndarray,
                       splits: list[Split], roles: Roles, prepare: PrepareConfig, task: str,
                       metric: str, seed: int, maker: FeatureMaker | None = None) -> Evaluation:
    """Fit on each split's training rows and score on its test rows."""
    folds, fit_s, predict_s = [], 0.0, 0.0
    for train, test in splits:
        model = make_pipeline(candidate, roles, prepare, task, seed, maker)
        start = time.perf_counter()
        model.fit(X.iloc[train], y[train])
        fit_s += time.perf_counter() - start
        start = time.perf_counter()
        folds.append(score_model(model, task, X.iloc[test], y[test]))
        predict_s += time.perf_counter() - start
    metrics = _mean_metrics(folds)
    return Evaluation(candidate, metrics.get(metric), metrics, fit_s, predict_s)


def search(candidates: list[Candidate], X: pd.DataFrame, y: np.ndarray, splits: list[Split],
           roles: Roles, prepare: PrepareConfig, task: str, metric: str, seed: int,
           n_jobs: int = 1, maker: FeatureMaker | None = None) -> list[Evaluation]:
    """Evaluate every candidate; return evaluations best first."""
    evaluations = Parallel(n_jobs=n_jobs)(
        delayed(evaluate_candidate)(c, X, y, splits, roles, prepare, task, metric, seed, maker)
        for c in candidates
    )
    return sorted(evaluations, key=lambda e: sort_key(metric, e.score))
