"""A model family is one registry entry: a toy family added to ``FAMILIES`` is searched,
registered, loaded under the type allow-list, served, and updated incrementally by its
own update function, with nothing else edited."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor

from conveyor import pipeline
from conveyor.config import load_config
from conveyor.serve.bundle import allowed_types, load_version
from conveyor.store import Store
from conveyor.train.families import FAMILIES, Family, cost_rank
from conveyor.workspace import Workspace
from tests.e2e_helpers import inference_sample, write_config, write_flights_slice


def _toy_build(task: str, seed: int) -> DummyRegressor:
    return DummyRegressor(strategy="median")


CALLS: list[int] = []


def _toy_update(model: DummyRegressor, X: Any, y: np.ndarray, seed: int,
                **options: Any) -> tuple[DummyRegressor, str]:
    """Learn the new batch's median: the model forgets the old rows (a toy)."""
    CALLS.append(len(y))
    return DummyRegressor(strategy="median").fit(X, y), "median of the new batch"


@pytest.fixture
def toy_family():
    FAMILIES["toy"] = Family(_toy_build, _toy_update, ("onehot",), takes_nan=False, cost=1,
                             types=frozenset({"sklearn.dummy.DummyRegressor"}))
    try:
        yield
    finally:
        del FAMILIES["toy"]


def test_a_toy_family_runs_through_updates(toy_family, tmp_path):
    assert "sklearn.dummy.DummyRegressor" in allowed_types()
    assert min(FAMILIES, key=cost_rank) == "toy"
    write_flights_slice(tmp_path)
    config = load_config(write_config(
        tmp_path, stream={"window": "1D", "initial_batches": 2}, drift={"enabled": False},
        serve={"routing": {"enabled": False}},
        train={"window_batches": 3, "strategy": "auto", "retrain_every": 10,
               "families": {"toy": {"grid": {}}}}))
    results = [pipeline.update(config) for _ in range(3)]
    assert all(r.ok for r in results), [r.message for r in results]
    store = Store.open(Workspace.of(config).db_url)
    try:
        models = store.frame("models").sort_values("version").to_dict("records")
        production = store.production()
    finally:
        store.close()
    assert [m["family"] for m in models] == ["toy"] * 3
    assert models[0]["strategy"] == "retrain"
    assert {m["strategy"] for m in models[1:]} <= {"incremental", "refit"}
    assert CALLS, "the family's incremental update was never called"
    for model in models[1:]:
        if model["strategy"] == "incremental":
            assert "median of the new batch" in model["strategy_note"]
    assert production is not None
    loaded = load_version(Workspace.of(config), production)
    assert loaded.manifest["family"] == "toy"
    output = pipeline.inference(config, inference_sample(tmp_path, rows=5))
    constant = float(np.ravel(loaded.model.named_steps["model"].constant_)[0])
    np.testing.assert_allclose(pd.read_csv(output)["predict"].to_numpy(), constant)
