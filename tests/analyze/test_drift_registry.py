"""The drift-method registry: a method registered at run time gets its config key (with its
default), its DriftSettings field, and its rows in the store after a real update."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conveyor import pipeline
from conveyor.analyze import drift
from conveyor.analyze.drift import methods
from conveyor.config import DriftConfig, config_model, drift_section, load_config
from conveyor.store import Store
from tests.e2e_helpers import write_config, write_flights_slice


def _mean_shift(ref: drift.NumericProfile, cur: drift.NumericProfile) -> dict[str, float]:
    """Distance between the binned means, in reference spreads."""
    low, high = np.asarray(ref.edges[:-1]), np.asarray(ref.edges[1:])
    x = np.where(np.isinf(low), high, np.where(np.isinf(high), low, (low + high) / 2))

    def mean(counts: tuple[int, ...]) -> float:
        c = np.asarray(counts, dtype="float64")
        return float(np.sum(c * x) / c.sum()) if c.sum() else 0.0

    s = drift.spread(ref.edges, ref.counts)
    return {"mean_shift": abs(mean(cur.counts) - mean(ref.counts)) / s if s > 0 else 0.0}


@pytest.fixture
def mean_shift():
    """A toy method on numbers, registered for one test."""
    threshold = drift.Setting("mean_shift_threshold", 0.5, "above",
                              "mean_shift: drifted above this many reference IQRs.", gt=0)
    method = drift.DriftMethod("mean_shift", "mean shift", ("numeric",), _mean_shift,
                               "mean_shift", (("mean_shift", threshold),))
    drift.register(method)
    try:
        yield method
    finally:
        drift.unregister(method.name)


def test_a_registered_method_gets_its_config_key_and_setting(mean_shift):
    section = drift_section()
    assert section.model_fields["mean_shift_threshold"].default == 0.5
    assert section().numeric_method == "ks"  # the defaults stay
    assert section(numeric_method="mean_shift").mean_shift_threshold == 0.5
    with pytest.raises(ValueError, match="mean_shift"):
        section(categorical_method="mean_shift")  # numbers only
    assert config_model().model_fields["drift"].annotation is section
    fields = {f.name: f.default for f in dataclasses.fields(drift.settings_class())}
    assert fields["mean_shift_threshold"] == 0.5
    # the import-time models are untouched
    assert "mean_shift_threshold" not in DriftConfig.model_fields


def test_a_registered_method_decides_in_a_real_update(tmp_path, mean_shift):
    write_flights_slice(tmp_path)
    config = load_config(write_config(
        tmp_path, drift={"numeric_method": "mean_shift", "mean_shift_threshold": 0.25,
                         "on_alarm": "ignore"},
        train={"window_batches": 2, "strategy": "retrain",
               "families": {"linear": {"grid": {"alpha": [1.0]}}}}))
    assert config.drift.mean_shift_threshold == 0.25  # type: ignore[attr-defined]
    results = [pipeline.update(config) for _ in range(2)]
    assert all(r.ok for r in results), [r.message for r in results]
    store = Store.open(f"sqlite:///{config.workspace / 'conveyor.db'}")
    try:
        rows = store.frame("drift")
    finally:
        store.close()
    numeric = rows[rows["kind"] == "numeric"]
    assert len(numeric) and set(numeric["method"]) == {"mean_shift"}
    assert all("mean_shift" in s and "ks" in s for s in numeric["scores"])
    assert (numeric["drifted"] == (numeric["statistic"] > 0.25).astype(int)).all()
    categorical = rows[rows["kind"] == "categorical"]
    assert set(categorical["method"]) == {"chi2"}
    assert not any("mean_shift" in s for s in categorical["scores"])


def test_without_the_method_the_models_are_the_import_time_ones():
    assert "mean_shift" not in methods.METHODS
    assert drift_section() is DriftConfig and config_model().model_fields["drift"].annotation \
        is DriftConfig
    assert drift.settings_class() is drift.DriftSettings
