"""Quality checks against a reference, the gate's verdicts, and cleaning plans, by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conveyor.analyze.clean import apply_plan
from conveyor.analyze.eda import batch_eda, correlation_matrix, target_correlations
from conveyor.analyze.quality import (
    CleanPlan,
    ColumnReference,
    Reference,
    assess,
    outlier_share,
    reference_from_stats,
)
from conveyor.analyze.report import quality_document, quality_markdown
from conveyor.config import CleanConfig, QualityConfig, Threshold

REFERENCE = Reference({
    "x": ColumnReference("numeric", min=0.0, max=10.0, q25=2.0, q75=4.0),
    "c": ColumnReference("categorical", levels=frozenset({"a", "b"})),
}, (1, 2))


def batch() -> pd.DataFrame:
    return pd.DataFrame({
        "x": ["1", "2", "3", "oops", "12", "3", "100", None, "2", "3"],
        "c": ["a", "a", "b", "z", "a", "b", "a", "a", None, "b"],
        "y": [1.0, 2.0, 3.0, 4.0, None, 6.0, 7.0, 8.0, 9.0, 10.0],
    })


def checks_by_name(quality):
    return {(c.check, c.column): c for c in quality.checks}


def test_every_check_measures_what_it_says():
    config = QualityConfig(min_rows=5)
    quality = assess(batch(), ["x", "c"], "y", config, reference=REFERENCE)
    checks = checks_by_name(quality)
    assert checks[("rows", None)].value == 10
    assert checks[("missing_target_share", None)].value == pytest.approx(0.1)
    assert checks[("missing_share", "x")].value == pytest.approx(0.1)
    # 'oops' is one of 9 present values
    assert checks[("type_violation_share", "x")].value == pytest.approx(1 / 10)
    # learned range [0 - 1, 10 + 1]: 12 and 100 lie outside, of 8 numbers
    assert checks[("out_of_range_share", "x")].value == pytest.approx(2 / 8)
    # fences 2 - 3*2 = -4 and 4 + 3*2 = 10: 12 and 100 again
    assert checks[("outlier_share", "x")].value == pytest.approx(2 / 8)
    # 'z' is unseen, of 9 present levels
    assert checks[("unseen_category_share", "c")].value == pytest.approx(1 / 9)
    assert checks[("missing_columns", None)].verdict == "pass"


def test_learned_ranges_are_reported_but_only_declared_ranges_are_enforced():
    learned = assess(batch(), ["x", "c"], "y", QualityConfig(min_rows=5), reference=REFERENCE)
    assert learned.plan.ranges == {}
    declared = assess(batch(), ["x", "c"], "y", QualityConfig(min_rows=5, ranges={"x": (0, 50)}),
                      reference=REFERENCE)
    assert declared.plan.ranges == {"x": (0.0, 50.0)}
    assert declared.plan.coerce == ("x",)
    assert declared.verdict == "cleaned"


def test_gate_quarantines_only_on_configured_checks():
    config = QualityConfig(min_rows=5, missing_target_share=Threshold(warn=0.0, fail=0.05))
    quality = assess(batch(), ["x", "c"], "y", config, reference=REFERENCE)
    assert quality.verdict == "quarantined"
    assert "missing_target_share = 0.1 (threshold 0.05)" in quality.reason()
    relaxed = QualityConfig(min_rows=5, missing_target_share=Threshold(warn=0.0, fail=0.05),
                            quarantine_on=["rows"])
    assert assess(batch(), ["x", "c"], "y", relaxed, reference=REFERENCE).passed


def test_missing_columns_fail_and_extra_columns_warn():
    frame = batch().drop(columns=["c"]).assign(new=1)
    quality = assess(frame, ["x", "new"], "y", QualityConfig(min_rows=5),
                     reference=Reference({**REFERENCE.columns}))
    checks = checks_by_name(quality)
    assert checks[("extra_columns", None)].verdict == "warn"
    quality = assess(frame, ["x", "c", "new"], "y", QualityConfig(min_rows=5),
                     reference=REFERENCE)
    assert checks_by_name(quality)[("missing_columns", None)].note == "c"
    assert quality.verdict == "quarantined"


def test_clean_plan_applies_each_action_and_round_trips():
    plan = CleanPlan(coerce=("x",), ranges={"x": (0.0, 50.0)}, drop_columns=("c",))
    result = apply_plan(batch(), plan, "y")
    assert "c" not in result.frame.columns
    assert result.actions == {"coerce_type": 1, "clip_to_range": 1, "drop_duplicates": 0,
                              "drop_column": 1, "drop_missing_target": 1}
    assert result.frame["x"].max() == 50.0
    drop = apply_plan(batch(), CleanPlan(coerce=("x",), type_violations="drop_rows",
                                         ranges={"x": (0.0, 50.0)}, out_of_range="drop_rows"),
                      "y")
    assert drop.actions["drop_type_violations"] == 1 and drop.actions["drop_out_of_range"] == 1
    assert CleanPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_degenerate_batches_give_verdicts_not_crashes():
    config = QualityConfig(min_rows=1)
    empty = assess(pd.DataFrame({"x": [], "y": []}), ["x"], "y", config)
    assert empty.verdict == "quarantined" and "rows = 0" in empty.reason()
    single = assess(pd.DataFrame({"x": [1.0], "y": [2.0]}), ["x"], "y", config,
                    reference=REFERENCE)
    assert single.passed
    constant = pd.DataFrame({"x": [5.0] * 20, "c": [None] * 20, "y": np.arange(20.0)})
    quality = assess(constant, ["x", "c"], "y", config, CleanConfig(), REFERENCE)
    assert all(np.isfinite(c.value) for c in quality.checks)
    assert quality.plan.drop_columns == ("c",)  # all missing: left out
    eda = batch_eda(constant, ["x"], "y", "regression")
    assert eda["target_correlations"]["pearson"] == {"x": None}
    assert json.dumps(eda)  # JSON-safe, no NaN
    assert outlier_share(pd.Series([1.0, 2.0]), ColumnReference("numeric", q25=3.0, q75=3.0),
                         3.0) is None


def test_reference_merges_batch_statistics():
    stats = pd.DataFrame({
        "batch_id": [1, 2, 1, 2], "column": ["x", "x", "c", "c"],
        "dtype": ["numeric", "numeric", "categorical", "categorical"],
        "min": [0.0, -2.0, None, None], "max": [5.0, 4.0, None, None],
        "q25": [1.0, 2.0, None, None], "q75": [3.0, 6.0, None, None], "rows": [100, 300, 100, 300],
    })
    reference = reference_from_stats(stats, {"c": {"a", "b"}})
    x = reference.columns["x"]
    assert (x.min, x.max) == (-2.0, 5.0)
    assert x.q25 == pytest.approx((1.0 * 100 + 2.0 * 300) / 400)
    assert reference.columns["c"].levels == frozenset({"a", "b"})
    assert reference.batch_ids == (1, 2)


def test_correlations_match_numpy_and_scipy():
    from scipy import stats

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame["y"] = 2 * frame["a"] + rng.normal(size=200)
    out = target_correlations(frame, ["a", "b"], "y")
    assert out["pearson"]["a"] == pytest.approx(np.corrcoef(frame["a"], frame["y"])[0, 1])
    assert out["spearman"]["b"] == pytest.approx(stats.spearmanr(frame["b"], frame["y"])[0])
    matrix = correlation_matrix(frame, ["a", "b", "y"])
    assert matrix["values"][0][0] == pytest.approx(1.0)


def test_quality_report_names_problems_and_actions():
    quality = assess(batch(), ["x", "c"], "y", QualityConfig(min_rows=5), reference=REFERENCE)
    doc = quality_document({"id": 3, "window_start": "s", "window_end": "e", "rows": 10,
                            "sha256": "f" * 64}, quality, {"coerce_type": 1}, REFERENCE)
    text = quality_markdown(doc)
    assert "# Data quality of batch 3" in text
    assert "`unseen_category_share` on `c`" in text
    assert "- coerce_type: 1" in text
    assert json.loads(json.dumps(doc, default=str))["reference_batches"] == [1, 2]


def _hours(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"humid": rng.uniform(40, 90, rows).round(0),
                         "precip": np.where(rng.random(rows) < 0.9, 0.0, 0.3),
                         "y": rng.normal(size=rows)})


HOURLY = Reference({"humid": ColumnReference("numeric", min=20.0, max=100.0, q25=55.0,
                                             q75=80.0),
                    "precip": ColumnReference("numeric", min=0.0, max=2.0, q25=0.0, q75=0.0)},
                   (1, 2, 3), rows=160.0)


def test_a_short_batch_and_a_stuck_reading_are_named():
    frame = _hours(72)
    frame.loc[10:33, "humid"] = 0.0  # a day of impossible zeros from a stuck sensor
    found = checks_by_name(assess(frame, ["humid", "precip"], "y", QualityConfig(),
                                  reference=HOURLY))
    short = found[("short_batch", None)]
    assert short.verdict == "warn" and short.value == pytest.approx(72 / 160)
    assert short.note == "72 rows; a reference batch has 160"
    stuck = found[("stuck_value", "humid")]
    assert stuck.verdict == "warn" and stuck.value == 24 and stuck.note == \
        "0 in 24 consecutive rows"
    # long runs of a usual value (no rain) are not a stuck sensor
    assert found[("stuck_value", "precip")].verdict == "pass"


def test_an_ordinary_batch_passes_both():
    found = checks_by_name(assess(_hours(150), ["humid", "precip"], "y", QualityConfig(),
                                  reference=HOURLY))
    assert found[("short_batch", None)].verdict == "pass"
    assert found[("stuck_value", "humid")].verdict == "pass"


def test_the_reference_knows_a_typical_batch_size():
    stats = pd.DataFrame({"batch_id": [1, 1, 2, 2, 3, 3], "column": ["a", "b"] * 3,
                          "dtype": "numeric", "rows": [100, 100, 160, 160, 170, 170],
                          "min": 0.0, "max": 1.0, "q25": 0.2, "q75": 0.8})
    assert reference_from_stats(stats).rows == 160.0
