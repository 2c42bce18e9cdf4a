"""The quality-check registry: a check registered at run time is run by assess, may be
named in quality.quarantine_on, and its rows land in the store after a real update."""

from __future__ import annotations

import pandas as pd
import pytest

from conveyor import pipeline
from conveyor.analyze import checks
from conveyor.analyze.measures import judge, present_numbers
from conveyor.analyze.quality import assess
from conveyor.config import QualityConfig, load_config
from conveyor.store import Store
from tests.e2e_helpers import write_config, write_flights_slice


def _negative_share(batch: checks.Batch, column: str | None) -> checks.QualityCheck | None:
    numbers = present_numbers(batch.frame[column])
    if not len(numbers):
        return None
    return judge("negative_share", float((numbers < 0).mean()), batch.config.outlier_share,
                 column)


@pytest.fixture
def negative_share():
    """A toy per-number check, registered for one test; it decides by quality.outlier_share."""
    check = checks.Check("negative_share", "share of numbers below zero", "numeric",
                         _negative_share)
    checks.register(check)
    try:
        yield check
    finally:
        checks.unregister(check.name)


def test_the_names_come_from_the_registry():
    assert QualityConfig().quarantine_on == checks.default_quarantine() == [
        "rows", "duplicate_share", "missing_target_share", "missing_columns"]
    assert "extra_columns" in checks.CHECKS and "extra_columns" not in checks.quarantinable()
    with pytest.raises(ValueError, match="unknown check"):
        QualityConfig(quarantine_on=["negative_share"])


def test_a_registered_check_runs_in_assess(negative_share):
    frame = pd.DataFrame({"x": [-1.0, 2.0, 3.0, 4.0], "c": ["a", "b", "a", "b"],
                          "y": [1.0, 2.0, 3.0, 4.0]})
    quality = assess(frame, ["x", "c"], "y", QualityConfig(min_rows=1))
    toy = [c for c in quality.checks if c.check == "negative_share"]
    assert [(c.column, c.value, c.verdict) for c in toy] == [("x", 0.25, "warn")]
    # it can fail, so the gate may name it
    assert QualityConfig(quarantine_on=["negative_share"]).quarantine_on == ["negative_share"]


def test_a_registered_check_lands_in_the_quality_table(tmp_path, negative_share):
    write_flights_slice(tmp_path)
    config = load_config(write_config(
        tmp_path, train={"window_batches": 2, "strategy": "retrain",
                         "families": {"linear": {"grid": {"alpha": [1.0]}}}}))
    result = pipeline.update(config)
    assert result.ok, result.message
    store = Store.open(f"sqlite:///{config.workspace / 'conveyor.db'}")
    try:
        rows = store.frame("quality")
    finally:
        store.close()
    toy = rows[rows["check"] == "negative_share"].set_index("column")
    assert "dep_delay" in toy.index and "carrier" not in toy.index  # numbers only
    assert toy.loc["dep_delay", "value"] > 0.3  # most flights leave early or on time
    limits = config.quality.outlier_share
    for _, row in toy.iterrows():
        expected = "fail" if row["value"] > limits.fail else (
            "warn" if row["value"] > limits.warn else "pass")
        assert row["verdict"] == expected
    assert {"rows", "missing_share", "type_violation_share"} <= set(rows["check"])
