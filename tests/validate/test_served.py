"""The score of what is served, and routing rules that must earn their rows: hand-built
models whose errors are known, checked against scikit-learn and the serving path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import mean_absolute_error

from conveyor import pipeline
from conveyor.config import RoutingConfig
from conveyor.serve.bundle import load_model
from conveyor.serve.routing import Router, predict_routed
from conveyor.train.data import BatchFrames, model_input, target_values
from conveyor.validate.served import Answers, RuleEvidence, combined, decide_rules, pooled
from conveyor.workspace import Workspace


class Doubler:
    """A champion that knows y = 2a exactly, extrapolates well, and reads a missing
    ``a`` as 0 (a bad imputation)."""

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return 2 * X["a"].fillna(0.0).to_numpy(float)


class Capped:
    """A fallback that reads a missing ``a`` from its copy ``b`` but cannot go beyond its
    training range (a tree's flat extrapolation)."""

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return 2 * X["a"].fillna(X["b"]).clip(0.0, 10.0).to_numpy(float)


@pytest.fixture()
def stream():
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 10, 400)
    train = pd.DataFrame({"a": rng.permutation(a), "b": a})
    # a new batch: 100 usual rows, 60 with a missing, 60 beyond a's range
    usual = rng.uniform(0, 10, 100)
    beyond = rng.uniform(15, 20, 60)
    gap = rng.uniform(0, 10, 60)
    batch = pd.DataFrame({"a": np.r_[usual, [np.nan] * 60, beyond],
                          "b": np.r_[usual, gap, beyond]})
    y = 2 * np.r_[usual, gap, beyond] + rng.normal(0, 0.1, 220)
    return train, batch, y


def two_batches(router, batch, y):
    """The evidence of the batch's rows as two batches (even and odd rows)."""
    halves = [Answers.of(Doubler(), Capped(), router, "regression", batch.iloc[part],
                         y[part]).evidence("mae")
              for part in (slice(0, None, 2), slice(1, None, 2))]
    return combined(*halves)


def test_a_rule_whose_fallback_is_worse_is_off_and_a_better_one_is_on(stream):
    train, batch, y = stream
    router = Router(max_missing_share=0.4, anomaly=False).fit(train)
    evidence = Answers.of(Doubler(), Capped(), router, "regression", batch, y).evidence("mae")
    # paired row losses on each rule's rows, by hand
    missing = batch["a"].isna().to_numpy()
    beyond = batch["a"].to_numpy() > 10
    assert evidence["missing"].rows == 60
    assert evidence["missing"].champion == pytest.approx(np.abs(y - 2 * batch["a"].fillna(0))[
        missing].sum())
    assert evidence["out_of_range:a"].rows == 60
    assert evidence["out_of_range:a"].fallback == pytest.approx(np.abs(y - 20.0)[beyond].sum())
    # one batch proves nothing, however large the gain: batches to come are new conditions
    _, once = decide_rules(router, evidence, RoutingConfig(min_rows=50))
    assert not any(once.rules.values())
    settings = RoutingConfig(min_rows=50, confidence=0.95)
    routed, decision = decide_rules(router, two_batches(router, batch, y), settings)
    assert decision.rules["missing"] is True          # the fallback reads b: far better
    assert decision.rules["out_of_range:a"] is False  # the champion extrapolates: better
    assert routed.rules_ == decision.rules
    # too little support: the same evidence on fewer rows than min_rows proves nothing
    _, strict = decide_rules(router, two_batches(router, batch, y), RoutingConfig(min_rows=61))
    assert strict.rules["missing"] is False


def test_the_served_score_is_the_serving_paths_score(stream):
    train, batch, y = stream
    router = Router(max_missing_share=0.4, anomaly=False).fit(train)
    routed, decision = decide_rules(router, two_batches(router, batch, y), RoutingConfig())
    scored = Answers.of(Doubler(), Capped(), routed, "regression", batch, y).score(
        "regression", "mae", routed.rules_)
    # by hand: missing rows from the fallback, every other row from the champion
    missing = batch["a"].isna().to_numpy()
    by_hand = np.where(missing, Capped().predict(batch), Doubler().predict(batch))
    assert scored.served["mae"] == pytest.approx(mean_absolute_error(y, by_hand))
    # and exactly what inference answers through the router
    served, to_fallback, reason = predict_routed(Doubler(), Capped(), routed, batch)
    assert to_fallback.tolist() == missing.tolist()
    assert scored.served["mae"] == pytest.approx(mean_absolute_error(y, served))
    assert scored.champion["mae"] == pytest.approx(mean_absolute_error(y, Doubler().predict(
        batch)))
    assert scored.routed_share == pytest.approx(60 / 220)
    # the out-of-range rows stayed with the champion and are counted as unusual
    assert scored.routes["kept:out_of_range"]["rows"] == 60
    assert scored.routes["missing"]["rows"] == 60 and scored.routes["champion"]["rows"] == 100
    assert set(reason[batch["a"].to_numpy() > 10]) == {"out_of_range:a"}
    # routing only where proven: served is better than the champion alone here
    assert scored.served["mae"] < scored.champion["mae"]
    assert decision.to_json()["rules"]["missing"]["route"] is True


def test_evidence_adds_up_across_batches_with_batches_as_units():
    rng = np.random.default_rng(0)
    champion, fallback = rng.exponential(2, 300), rng.exponential(1.8, 300)
    parts = [RuleEvidence.of(champion[i:i + 100], fallback[i:i + 100]) for i in (0, 100, 200)]
    total = combined({"anomaly": parts[0]}, {"anomaly": parts[1]}, {"anomaly": parts[2]})
    assert (total["anomaly"].rows, total["anomaly"].batches) == (300, 3)
    gain, se = total["anomaly"].gain_and_se()
    # equal batches: the mean gain, and scipy's standard error of the three batch means
    means = (champion - fallback).reshape(3, 100).mean(axis=1)
    assert gain == pytest.approx((champion - fallback).mean())
    assert se == pytest.approx(stats.sem(means))
    stored = pooled([{"anomaly": p.to_json()} for p in parts] + [None])
    assert stored["anomaly"] == total["anomaly"]
    # proven by a one-sided t test on 2 degrees of freedom, at the configured confidence
    critical = stats.t.ppf(0.95, 2)
    assert total["anomaly"].proven(50, 0.95) == (gain > 0 and gain / se >= critical)


def test_time_like_and_identifier_like_columns_never_route_by_themselves():
    rng = np.random.default_rng(1)
    n = 1000
    train = pd.DataFrame({"day": np.arange(n) // 10, "x": rng.normal(0, 1, n),
                          "tail": [f"N{i % 700}" if i < 900 else f"N{i}" for i in range(n)],
                          "carrier": rng.choice(["AA", "UA", "DL"], n)})
    router = Router(anomaly=False).fit(train)
    assert router.skipped_ == {"day": "time-like", "tail": "identifier-like"}
    assert not any(r.endswith((":day", ":tail")) for r in router.rules())
    new = pd.DataFrame({"day": [500], "x": [0.0], "tail": ["N99999"], "carrier": ["AA"]})
    assert router.route(new)[1].tolist() == [""]  # a later day, a new tail: usual


def test_prequential_scores_production_as_it_serves(replayed, open_store):
    """The score of record is what inference answers on the new batch: router, champion
    and fallback; the champion and fallback alone are stored beside it."""
    config = replayed
    store = open_store(config)
    before = store.production()
    loaded = load_model(config.workspace / before["path"], before["sha256"])
    assert pipeline.update(config).ok
    scored = store.frame("prequential")
    batch_id = int(scored["batch_id"].max())
    rows = scored[scored["batch_id"] == batch_id].set_index("role")
    frames = BatchFrames(config, Workspace.of(config))
    data = frames.window([store.batch(batch_id)])
    X, y = model_input(data, loaded.features), target_values(config, data)
    served, to_fallback, _ = predict_routed(loaded.model, loaded.fallback, loaded.router, X)
    assert rows.loc["production", "version"] == before["version"]
    assert rows.loc["production", "score"] == pytest.approx(mean_absolute_error(y, served))
    assert rows.loc["champion", "score"] == pytest.approx(mean_absolute_error(
        y, loaded.model.predict(X)))
    metrics = rows.loc["production", "metrics"]
    assert metrics["routed_share"] == pytest.approx(to_fallback.mean())
    assert sum(route["rows"] for route in metrics["routes"].values()) == len(y)


def test_a_class_the_model_never_saw_is_scored_not_a_crash():
    """A batch (or a fold) may bring a class the model was not trained on (a new weather
    type, a new tweet source): every metric is still computed."""
    from sklearn import metrics as skm

    from conveyor.validate.metrics import classification_metrics

    classes = np.array(["rain", "sun"])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    known = classification_metrics(np.array(["rain", "sun", "sun"]),
                                   np.array(["rain", "sun", "rain"]), proba, classes)
    assert known["log_loss"] == pytest.approx(
        skm.log_loss(["rain", "sun", "sun"], proba, labels=classes))
    new = classification_metrics(np.array(["rain", "sun", "fog"]),
                                 np.array(["rain", "sun", "rain"]), proba, classes)
    assert new["accuracy"] == pytest.approx(2 / 3)
    assert new["log_loss"] == pytest.approx((-np.log(0.8) - np.log(0.7) - np.log(1e-15)) / 3)
