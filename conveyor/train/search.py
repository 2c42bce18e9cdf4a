"""The search: (family x preprocessing variant x hyperparameters) candidates scored on
time-ordered splits, under a time budget, locally or on a Dask cluster.

Candidates are evaluated ``n_jobs`` at a time through joblib, so the same
code runs in local processes or, inside :func:`compute_backend` with
``backend: dask``, on a Dask cluster. When a budget is set, no new candidate
starts after it is spent; the candidates are ordered beforehand (by the
meta-learner) so the most promising ones run first.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, effective_n_jobs, parallel_config
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid
from sklearn.pipeline import Pipeline

from conveyor.config import ComputeConfig, FamilyConfig, PrepareConfig, SearchConfig
from conveyor.errors import ConfigError
from conveyor.prepare.features import FeatureMaker
from conveyor.prepare.preprocess import build_preprocessor, categorical_indices
from conveyor.prepare.roles import Roles
from conveyor.train.bounded import BoundedPipeline
from conveyor.train.families import FAMILIES, build_estimator, cost_rank
from conveyor.validate.metrics import LOWER_IS_BETTER, score_model, sort_key
from conveyor.validate.schemes import Split


@dataclass(frozen=True)
class Candidate:
    """One model configuration to try."""

    family: str
    params: dict[str, Any]
    variant: str = "onehot"

    def as_dict(self) -> dict[str, Any]:
        return {"family": self.family, "variant": self.variant, "params": self.params}


@dataclass(frozen=True)
class Evaluation:
    """A candidate's scores, averaged over the scheme's test folds."""

    candidate: Candidate
    score: float | None
    metrics: dict[str, float | None]
    fit_seconds: float
    predict_seconds: float
    rows: int = 0  # training rows per split (mean)
    rung: int = 0  # successive halving: fitted on 1/3**rung of the training rows
    model: Any = field(default=None, compare=False, repr=False)  # last split's fit, if kept


@dataclass(frozen=True)
class FitSpec:
    """Everything but the rows that a candidate's pipeline is built from."""

    roles: Roles
    prepare: PrepareConfig
    task: str
    metric: str
    seed: int
    maker: FeatureMaker | None = None
    overrides: dict[str, Any] | None = None  # per-family estimator settings

    def pipeline(self, candidate: Candidate) -> Pipeline:
        """The candidate's unfitted pipeline under this spec."""
        return make_pipeline(candidate, self.roles, self.prepare, self.task, self.seed,
                             self.maker, self.overrides)

    def with_overrides(self, overrides: dict[str, Any]) -> FitSpec:
        return replace(self, overrides=overrides)


@dataclass(frozen=True)
class Folds:
    """The rows candidates are scored on (time order) and how they split into
    training and test parts."""

    X: pd.DataFrame
    y: np.ndarray
    splits: list[Split]

    def subset(self, rows: np.ndarray, splits: list[Split]) -> Folds:
        """Only ``rows``, with ``splits`` given as positions within them."""
        return Folds(self.X.iloc[rows], self.y[rows], splits)


@dataclass(frozen=True)
class SearchResult:
    """Evaluations best first, and what the budget left out."""

    evaluations: list[Evaluation]
    skipped: list[Candidate] = field(default_factory=list)
    seconds: float = 0.0


def expand_grid(families: dict[str, FamilyConfig]) -> list[Candidate]:
    """Return every (variant, grid point) of every enabled family, in config order.

    >>> grid = expand_grid({"knn": FamilyConfig(grid={"n_neighbors": [5, 9]})})
    >>> [(c.variant, c.params) for c in grid]
    [('onehot', {'n_neighbors': 5}), ('onehot', {'n_neighbors': 9})]
    """
    return [Candidate(name, dict(params), variant)
            for name, family in families.items() if family.enabled
            for variant in (family.variants or FAMILIES[name].variants)
            for params in ParameterGrid(family.grid)]


def draw_candidates(families: dict[str, FamilyConfig], search: SearchConfig,
                    seed: int) -> list[Candidate]:
    """Return the candidates of one search: the whole grid, or a seeded random draw from it.

    The random draw keeps at least one candidate of every family, so the
    comparison between families stays complete.

    >>> fams = {"knn": FamilyConfig(grid={"n_neighbors": list(range(1, 30))}),
    ...         "tree": FamilyConfig(grid={"max_depth": [2, 4]})}
    >>> draw = draw_candidates(fams, SearchConfig(sampler="random", n_candidates=4), seed=0)
    >>> len(draw), sorted({c.family for c in draw})
    (4, ['knn', 'tree'])
    """
    grid = expand_grid(families)
    if search.sampler == "grid" or len(grid) <= search.n_candidates:
        return grid
    rng = random.Random(seed)
    by_family: dict[str, list[Candidate]] = {}
    for candidate in grid:
        by_family.setdefault(candidate.family, []).append(candidate)
    chosen = [rng.choice(options) for options in by_family.values()]
    rest = [c for c in grid if c not in chosen]
    chosen += rng.sample(rest, max(0, search.n_candidates - len(chosen)))
    return [c for c in grid if c in chosen]  # config order, reproducible


def make_pipeline(candidate: Candidate, roles: Roles, prepare: PrepareConfig, task: str,
                  seed: int, maker: FeatureMaker | None = None,
                  overrides: dict[str, Any] | None = None) -> Pipeline:
    """Return the unfitted pipeline of a candidate: [features +] preprocessing + estimator."""
    steps: list[tuple[str, Any]] = [] if maker is None else [("features", clone(maker))]
    estimator = build_estimator(candidate.family, task, candidate.params, seed)
    extra = {k: v for k, v in (overrides or {}).get(candidate.family, {}).items()
             if k not in candidate.params}
    if candidate.family == "hgb":
        extra["categorical_features"] = categorical_indices(roles, prepare, candidate.variant)
    estimator.set_params(**extra)
    steps += [("prepare", build_preprocessor(roles, prepare, candidate.variant, task)),
              ("model", estimator)]
    return BoundedPipeline(steps) if task == "regression" else Pipeline(steps)


def single_threaded(model: Pipeline) -> Pipeline:
    """Set a fitted pipeline's estimator back to one job, so the stored model predicts in
    the caller's thread (a forest fitted with ``n_jobs`` would keep using that many)."""
    estimator = model.steps[-1][1]
    if "n_jobs" in estimator.get_params(deep=False):
        estimator.set_params(n_jobs=1)
    return model


def _mean_metrics(folds: list[dict[str, float | None]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in folds[0]:
        values = [v for f in folds if (v := f[key]) is not None]
        out[key] = float(np.mean(values)) if values else None
    return out


def evaluate_candidate(candidate: Candidate, folds: Folds, spec: FitSpec,
                       keep_model: bool = False) -> Evaluation:
    """Fit on each split's training rows and score on its test rows; with ``keep_model``
    the fit on the last split (the most recent training rows) comes back with the scores."""
    X, y = folds.X, folds.y
    scores, fit_s, predict_s = [], 0.0, 0.0
    for train, test in folds.splits:
        model = spec.pipeline(candidate)
        start = time.perf_counter()
        model.fit(X.iloc[train], y[train])
        fit_s += time.perf_counter() - start
        start = time.perf_counter()
        scores.append(score_model(model, spec.task, X.iloc[test], y[test]))
        predict_s += time.perf_counter() - start
    metrics = _mean_metrics(scores)
    rows = int(np.mean([len(train) for train, _ in folds.splits]))
    return Evaluation(candidate, metrics.get(spec.metric), metrics, fit_s, predict_s, rows,
                      model=single_threaded(model) if keep_model else None)


def search(candidates: list[Candidate], folds: Folds, spec: FitSpec, n_jobs: int = 1,
           budget_seconds: float | None = None,
           progress: Callable[[int, int], None] | None = None,
           keep_models: bool = False) -> SearchResult:
    """Evaluate candidates in order, ``n_jobs`` at a time, until done or out of budget.

    A candidate starts as soon as a worker is free (not in rounds that wait for the
    slowest), and none starts once ``budget_seconds`` are spent; the first always does.
    With ``keep_models`` each evaluation carries its fit on the last split.
    """
    start = time.perf_counter()
    started: list[Candidate] = []

    def tasks() -> Iterator[Any]:  # read by joblib only when a worker is free
        for candidate in candidates:
            if budget_seconds is not None and started \
                    and time.perf_counter() - start >= budget_seconds:
                return
            started.append(candidate)
            if progress is not None:
                progress(len(started), len(candidates))
            yield delayed(evaluate_candidate)(candidate, folds, spec, keep_models)

    width = max(1, effective_n_jobs(n_jobs))
    with Parallel(n_jobs=n_jobs, pre_dispatch=str(width), batch_size=1) as parallel:
        evaluations = list(parallel(tasks()))
    evaluations.sort(key=lambda e: sort_key(spec.metric, e.score))
    return SearchResult(evaluations, candidates[len(started):], time.perf_counter() - start)


def cheapest_within(evaluations: list[Evaluation], metric: str,
                    tolerance: float) -> Evaluation:
    """Return the best candidate of the cheapest family (lowest ``Family.cost``) among
    those whose score is within ``tolerance`` (relative) of the best one; ``evaluations`` are
    sorted best first.

    Scores that close are a tie on one hold-out, and the cheaper model is cheaper at
    every later refit and prediction. The order of families is fixed rather than
    measured, so the same scores always give the same choice. With ``tolerance`` 0
    the best wins.

    >>> ev = [Evaluation(Candidate("forest", {}), 10.0, {}, 4.0, 0.1),
    ...       Evaluation(Candidate("linear", {"alpha": 1}), 10.08, {}, 0.2, 0.01),
    ...       Evaluation(Candidate("linear", {"alpha": 9}), 10.05, {}, 0.3, 0.01),
    ...       Evaluation(Candidate("knn", {}), 11.0, {}, 0.1, 1.0)]
    >>> cheapest_within(ev, "mae", 0.01).candidate.params
    {'alpha': 9}
    >>> cheapest_within(ev, "mae", 0.0).candidate.family
    'forest'
    """
    best = evaluations[0]
    if tolerance <= 0 or best.score is None or not np.isfinite(best.score):
        return best
    gap = abs(best.score) * tolerance
    lower = metric in LOWER_IS_BETTER
    close = [e for e in evaluations if e.score is not None and np.isfinite(e.score)
             and (e.score <= best.score + gap if lower else e.score >= best.score - gap)]
    return min(close, key=lambda e: (cost_rank(e.candidate.family),
                                     sort_key(metric, e.score)))


def full_rows(evaluations: pd.DataFrame) -> pd.DataFrame:
    """The stored evaluations made on all of a split's training rows: successive halving's
    cheaper rungs (``rung`` above 0) left out, so scores of one update compare.

    >>> full_rows(pd.DataFrame({"score": [1.0, 2.0, 3.0], "rung": [0, 2, None]})).score.tolist()
    [1.0, 3.0]
    """
    if "rung" not in evaluations:
        return evaluations
    return evaluations[evaluations["rung"].fillna(0) == 0]


HALVING_FACTOR = 3
MIN_RUNG_ROWS = 1000  # no rung fits on fewer training rows than this


def _kept(n_candidates: int, factor: int) -> int:
    """Candidates a halving rung passes on: the best ``1/factor`` of them, at least two."""
    return max(2, -(-n_candidates // factor))


def halving_rungs(n_candidates: int, train_rows: int, factor: int = HALVING_FACTOR,
                  min_rows: int = MIN_RUNG_ROWS) -> int:
    """How many cheap rungs successive halving runs before the full rows: enough for the
    candidates to shrink (a ``1/factor`` share kept per rung) to two, and no more than
    keep every rung on at least ``min_rows`` training rows; none below four candidates.

    >>> halving_rungs(12, 45_000), halving_rungs(12, 5_000), halving_rungs(3, 45_000)
    (2, 1, 0)
    """
    if n_candidates < 4:
        return 0
    rungs, left = 0, n_candidates
    while left > 2 and train_rows // factor ** (rungs + 1) >= min_rows:
        rungs, left = rungs + 1, _kept(left, factor)
    return rungs


def spread(train: np.ndarray, step: int) -> np.ndarray:
    """Every ``step``-th of the training rows ``train``, counted back from the newest, in
    time order: a cheap rung's sample covers the split's whole period.

    The newest ``1/step`` of the rows would cover a few days of a window of weeks, and a
    model fitted on them learns that period's weather or mix as if it were the rule: on
    the demo, a linear model's error on the new batch from the newest ninth was 2.85
    above its error from all rows (mean over ten batches), from a spread ninth 0.16;
    gradient boosting's 1.49 and 0.42 (BENCHMARKS.md, training choices). A rung's score
    is then an estimate of the full-rows score, not a different one; candidates closer
    than that gap are still ranked by noise, which is why a rung passes on a third.

    >>> spread(np.arange(10), 3).tolist()
    [0, 3, 6, 9]
    """
    return np.asarray(train)[::-1][::step][::-1]


def halve(candidates: list[Candidate], folds: Folds, spec: FitSpec, n_jobs: int = 1,
          budget_seconds: float | None = None, factor: int = HALVING_FACTOR,
          min_rows: int = MIN_RUNG_ROWS
          ) -> tuple[list[Candidate], list[Evaluation], list[Candidate]]:
    """Successive halving's cheap rungs: every candidate scored on ``1/factor**k`` of each
    split's training rows (:func:`spread` over the split's whole period, time order kept),
    the best third of them on ``factor`` times more rows, and so on (:func:`halving_rungs`
    says how many rungs); the survivors go on to the full rows.

    ``budget_seconds`` spans the rungs: no candidate starts once it is spent (the first
    of each rung always does), and one a rung did not reach goes no further.

    Return the survivors (in the given order), every evaluation the rungs made, each
    with its ``rung`` (``k``: fitted on ``1/factor**k`` of the rows), and the candidates
    the budget left untried.
    """
    start = time.perf_counter()
    train_rows = min(len(train) for train, _ in folds.splits)
    rungs = halving_rungs(len(candidates), train_rows, factor, min_rows)
    survivors, made, untried = list(candidates), [], []
    for rung in range(rungs, 0, -1):
        cheap = [(spread(train, factor ** rung), test) for train, test in folds.splits]
        # the workers get only the rows this rung reads, not the whole window
        rows = np.unique(np.concatenate([part for split in cheap for part in split]))
        cheap = [(np.searchsorted(rows, train), np.searchsorted(rows, test))
                 for train, test in cheap]
        found = search(survivors, folds.subset(rows, cheap), spec, n_jobs,
                       remaining(budget_seconds, start))
        untried += found.skipped if rung == rungs else []
        made += [replace(e, rung=rung) for e in found.evaluations]
        best = [e.candidate for e in found.evaluations[:_kept(len(found.evaluations), factor)]]
        survivors = [c for c in survivors if c in best]
    return survivors, made, untried


def remaining(budget_seconds: float | None, start: float) -> float | None:
    """What is left of a budget started at ``start`` (``time.perf_counter``); once it is
    spent, a sliver, so that a search still runs its first candidate and no other."""
    if budget_seconds is None:
        return None
    return max(budget_seconds - (time.perf_counter() - start), 1e-9)


@contextlib.contextmanager
def compute_backend(compute: ComputeConfig) -> Iterator[int]:
    """Run joblib work inside on the configured backend; yield the ``n_jobs`` to use.

    ``dask`` connects to ``dask_address`` or starts a local cluster (two worker
    processes, one thread each) for the duration.
    """
    if compute.backend == "local":
        yield compute.n_jobs
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("compute.backend 'dask' needs dask[distributed]: "
                          "pip install 'conveyor[dask]'") from None
    cluster = None
    if compute.dask_address:
        client = Client(compute.dask_address)
    else:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        with parallel_config(backend="dask"):
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            yield compute.n_jobs if compute.n_jobs > 1 else workers
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
