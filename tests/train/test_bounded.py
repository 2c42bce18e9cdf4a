"""Regression predictions stay within the target's domain on every path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conveyor.config import ColumnsConfig, PrepareConfig
from conveyor.prepare.roles import resolve_roles
from conveyor.serve.bundle import load_model, save_model
from conveyor.storage import LocalStorage
from conveyor.train.bounded import BoundedPipeline, target_bounds
from conveyor.train.search import Candidate, make_pipeline
from conveyor.train.update import update_model


def _counts(rows: int, seed: int, levels: list[str]) -> pd.DataFrame:
    """Non-negative counts: a steep linear function of temperature, plus a level per zone."""
    rng = np.random.default_rng(seed)
    temperature = rng.uniform(10, 30, rows)
    zone = rng.choice(levels, rows)
    effect = pd.Series(zone).map({"a": 0.0, "b": 5.0, "c": 200.0}).to_numpy()
    count = np.clip(4 * (temperature - 10) + effect + rng.normal(0, 2, rows), 0, None)
    return pd.DataFrame({"temperature": temperature, "zone": zone, "count": count,
                         "time": pd.date_range("2024-01-01", periods=rows, freq="h")})


@pytest.fixture()
def fitted():
    train = _counts(400, 0, ["a", "b"])
    roles = resolve_roles(train, ColumnsConfig(), "count", "time")
    model = make_pipeline(Candidate("linear", {"alpha": 1.0}, "onehot"), roles,
                          PrepareConfig(), "regression", 0)
    return model.fit(train[list(roles.features)], train["count"].to_numpy()), train, roles


def test_bounds_by_hand():
    # span 10, margin half of it: [0 - 5 -> 0 (no negative target), 10 + 5]
    assert target_bounds([0.0, 3.0, 10.0]) == (0.0, 15.0)
    assert target_bounds([-1.0, 1.0]) == (-2.0, 2.0)
    assert target_bounds([np.nan, 2.0, 4.0]) == (1.0, 5.0)
    assert target_bounds([np.nan]) is None


def test_a_non_negative_target_is_never_predicted_negative(fitted):
    model, train, roles = fitted
    assert isinstance(model, BoundedPipeline)
    cold = pd.DataFrame({"temperature": [-30.0, -5.0, 0.0], "zone": ["a", "a", "b"]})
    raw = model[:-1].transform(cold) @ model[-1].coef_ + model[-1].intercept_
    assert (raw < 0).all()  # the plain linear model extrapolates below zero ...
    predicted = model.predict(cold)
    assert (predicted == 0.0).all()  # ... the served one stops at zero


def test_an_unseen_level_stays_within_a_sane_range_of_the_targets(fitted):
    model, train, roles = fitted
    low, high = target_bounds(train["count"])
    hot = pd.DataFrame({"temperature": [400.0, 29.0], "zone": ["c", "c"]})
    predicted = model.predict(hot)
    assert predicted.max() <= high
    assert high <= train["count"].max() + 0.5 * np.ptp(train["count"]) + 1e-9
    assert predicted.min() >= low


def test_bounds_survive_the_model_file_and_an_incremental_update(fitted, tmp_path):
    model, train, roles = fitted
    X = train[list(roles.features)]
    folder, sha, _ = save_model(LocalStorage(tmp_path), 1, model, {"schema": {}})
    loaded = load_model(folder, sha).model
    assert isinstance(loaded, BoundedPipeline) and loaded.bounds_ == model.bounds_
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    sgd = make_pipeline(Candidate("sgd", {}, "onehot"), roles, PrepareConfig(),
                        "regression", 0).fit(X, train["count"].to_numpy())
    more = _counts(100, 1, ["a", "b"]).assign(count=lambda d: d["count"] + 500)
    updated, _ = update_model(sgd, "sgd", more[list(roles.features)], more["count"].to_numpy())
    assert isinstance(updated, BoundedPipeline)
    assert updated.bounds_[0] == sgd.bounds_[0]
    assert updated.bounds_[1] == pytest.approx(target_bounds(more["count"])[1])


def test_classification_pipelines_are_not_bounded(fitted):
    _, train, roles = fitted
    model = make_pipeline(Candidate("tree", {}, "onehot"), roles, PrepareConfig(),
                          "classification", 0)
    assert not isinstance(model, BoundedPipeline)
