"""Model drift: Page-Hinkley by hand, and a stream with an injected concept change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from conveyor import pipeline
from conveyor.config import load_config
from conveyor.validate.model_drift import PageHinkley, relative_loss

CHANGE_DAY = 8


def test_page_hinkley_statistic_by_hand():
    detector = PageHinkley(delta=0.0, threshold=10.0, min_instances=1)
    for x in (1.0, 1.0, 4.0):
        detector.update(x)
    # means 1, 1, 2; cumulative sums 0, 0, 2; minimum 0 -> statistic 2
    assert detector.statistic == pytest.approx(2.0)
    assert not detector.drift_detected
    detector._reset()
    assert detector.statistic == 0.0 and not detector.drift_detected


def test_no_alarm_on_a_stationary_stream():
    rng = np.random.default_rng(1)
    detector = PageHinkley(delta=0.05, threshold=0.5)
    alarms = [detector.update(relative_loss(10 + rng.normal(0, 0.5), 10, True)).drift_detected
              for _ in range(200)]
    assert not any(alarms)


def concept_change_stream(folder, policy: str = "retrain") -> None:
    rng = np.random.default_rng(7)
    days, per_day = 16, 200
    times = pd.date_range("2024-01-01", periods=days * per_day, freq=f"{24 * 60 // per_day}min",
                          tz="UTC")
    x1, x2 = rng.normal(size=len(times)), rng.normal(size=len(times))
    sign = np.where(times < pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(
        days=CHANGE_DAY), 3.0, -3.0)
    frame = pd.DataFrame({"t": times.strftime("%Y-%m-%dT%H:%M:%SZ"), "x1": x1, "x2": x2,
                          "c": rng.choice(["a", "b"], size=len(times)),
                          "y": sign * x1 + 0.5 * x2 + rng.normal(0, 0.3, size=len(times))})
    frame.to_csv(folder / "stream.csv", index=False)
    config = {"workspace": "ws",
              "source": {"kind": "csv", "path": "stream.csv", "time_column": "t"},
              "target": {"column": "y"}, "stream": {"window": "1D", "initial_batches": 2},
              "quality": {"min_rows": 20},
              "train": {"window_batches": 6, "families": {"linear": {"grid": {"alpha": [1.0]}}}},
              "validate": {"model_drift": {"policy": policy, "retrain_batches": 1}}}
    (folder / "conveyor.yaml").write_text(yaml.safe_dump(config))


@pytest.mark.parametrize("policy", ["retrain", "evidence"])
def test_alarm_within_two_batches_of_a_concept_change_and_recovery(tmp_path, open_store,
                                                                    policy):
    concept_change_stream(tmp_path, policy)
    config = load_config(tmp_path / "conveyor.yaml")
    while pipeline.update(config).ok:
        pass
    store = open_store(config)
    batches = store.frame("batches").set_index("id")
    start = pd.to_datetime(batches["window_start"])
    change_batch = int(start[start >= pd.Timestamp("2024-01-09", tz="UTC")].index.min())
    events = store.frame("events")
    alarms = events[events["kind"] == "model_drift"]["batch_id"].astype(int).tolist()
    assert alarms, "no model-drift alarm"
    assert not [a for a in alarms if a < change_batch], "false alarm before the change"
    assert alarms[0] - change_batch <= 1  # fired on the change batch or the next one
    if policy == "retrain":
        assert (events["kind"] == "window_reset").any()
    else:  # the candidate windows, their scores and the choice are recorded
        choices = events[events["kind"] == "window_choice"]
        first = choices[choices["batch_id"] == alarms[0]]["message"].iloc[0]
        assert "window by evidence: since the change (new batches only)" in first
        assert "everything kept (6 batches)" in first and "newest 2 batches" in first
    scores = store.frame("prequential").query("role == 'production'").set_index("batch_id")
    before = scores.loc[scores.index < change_batch, "score"].mean()
    at_change = scores.loc[change_batch, "score"]
    after = scores.loc[scores.index >= change_batch + 3, "score"].mean()
    assert at_change > 4 * before  # the change hurts
    assert after < 1.5 * before  # and handling recovers
    if policy == "evidence":  # two batches after the alarm, back near the old level
        assert scores.loc[alarms[0] + 2, "score"] < 1.2 * before
    never_updated = store.frame("prequential").query("role == 'baseline'")
    assert never_updated[never_updated["batch_id"] >= change_batch + 3]["score"].mean() > 3 * after


def test_the_detector_follows_a_configuration_across_its_refits():
    from conveyor.validate.watch import lineage as _lineage

    models = pd.DataFrame({
        "version": [1, 2, 3, 4, 5, 6],
        "strategy": ["retrain", "refit", "incremental", "retrain", "refit", "refit"],
        "parent_version": [None, 1, 2, None, 4, 99]})  # v6's parent: deleted from the list
    assert _lineage(models, 3) == [3, 2, 1]
    assert _lineage(models, 5) == [5, 4]  # a search starts a new history
    assert _lineage(models, 4) == [4]
    assert _lineage(models, 6) == [6]
