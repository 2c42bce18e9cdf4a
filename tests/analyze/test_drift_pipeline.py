"""Data drift inside update: profiles against the reference window, alarms, and what the
alarm changes (an injected shift in real flights)."""

from __future__ import annotations

import pandas as pd

from conveyor import pipeline
from conveyor.config import load_config
from tests.e2e_helpers import write_config, write_flights_slice

SHIFTED = ["dep_delay", "distance", "dep_time", "sched_dep_time", "sched_arr_time"]


def _shifted_stream(folder):
    path = write_flights_slice(folder)
    flights = pd.read_csv(path)
    late = pd.to_datetime(flights["time_hour"]) >= pd.Timestamp("2013-01-05", tz="UTC")
    for column in SHIFTED:  # from the third 2-day window on, five features move a lot
        flights.loc[late, column] = flights.loc[late, column] * 3 + 500
    flights.to_csv(path, index=False)


def test_injected_shift_raises_an_alarm_and_resets_the_window(tmp_path, open_store):
    _shifted_stream(tmp_path)
    config = load_config(write_config(
        tmp_path, drift={"on_alarm": "reset", "reset_batches": 1},
        train={"window_batches": 3, "strategy": "auto",
               "families": {"sgd": {"grid": {"alpha": [0.0001]}, "variants": ["onehot"]}}}))
    results = [pipeline.update(config) for _ in range(3)]
    assert all(r.ok for r in results), [r.message for r in results]
    store = open_store(config)
    drift = store.frame("drift")
    events = store.frame("events")
    models = store.frame("models").sort_values("version").to_dict("records")
    anchor = store.window_anchor()
    # the first batch is the reference: nothing to compare it with
    assert set(drift["batch_id"]) == {2, 3}
    # production's predictions moved too: shifted inputs, shifted outputs
    predicted = drift[drift["role"] == "prediction"].set_index("batch_id")
    assert predicted.loc[3, "drifted"] == 1 and predicted.loc[3, "column"] == "prediction"
    third = drift[(drift["batch_id"] == 3) & (drift["role"] == "feature")].set_index("column")
    assert third.loc[SHIFTED, "drifted"].all()
    assert (third.loc[SHIFTED, "statistic"] > 0.5).all()  # KS D: most of the mass moved
    assert not third.loc[["carrier", "origin"], "drifted"].any()  # untouched columns stay
    second = drift[(drift["batch_id"] == 2) & (drift["role"] == "feature")]
    assert second["drifted"].mean() < 0.3  # no alarm before the shift
    assert {"feature", "target", "prediction"} == set(drift["role"])
    alarms = events[events["kind"] == "data_drift"]
    assert alarms["batch_id"].tolist() == [3] and "dep_delay" in alarms["message"].iloc[0]
    resets = events[events["kind"] == "window_reset"]
    assert resets["batch_id"].tolist() == [3]
    assert anchor == 3  # the window's start is state of its own; the event is for people
    # the alarm rules out an incremental update: production's configuration is refit on
    # the new window only
    last = models[-1]
    assert last["strategy"] == "refit" and "data drift" in last["strategy_note"]
    assert last["batch_ids"] == [3] and last["parent_version"] == models[-2]["version"]


def test_every_drift_setting_is_a_config_key_with_the_same_default():
    """A method's threshold added to DriftSettings must exist in the ``drift`` section:
    the settings are read from it by name, never from a hand-kept list."""
    import dataclasses

    from conveyor.analyze.batch_drift import drift_settings
    from conveyor.analyze.drift import DriftSettings
    from conveyor.config import DriftConfig

    section = DriftConfig()
    for field in dataclasses.fields(DriftSettings):
        assert field.name in DriftConfig.model_fields, field.name
        assert getattr(section, field.name) == field.default, field.name

    class Stub:
        drift = DriftConfig(psi_threshold=0.33, numeric_method="psi")

    settings = drift_settings(Stub())  # type: ignore[arg-type]
    assert settings.psi_threshold == 0.33 and settings.numeric_method == "psi"
