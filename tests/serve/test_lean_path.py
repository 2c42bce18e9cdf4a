"""The single-row path's shortcuts give what the general path gives: the packed anomaly
forest against scikit-learn's, the records' conversion against features_frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest

from conveyor.serve.api.checks import check_records, records_frame
from conveyor.serve.forest import PackedForest
from conveyor.serve.inputs import features_frame, records_features
from conveyor.serve.routing import Router


@pytest.mark.parametrize("seed", range(4))
def test_packed_forest_gives_scikit_learns_verdicts(seed):
    rng = np.random.default_rng(seed)
    train = rng.normal(size=(1500, 6)) * rng.uniform(0.1, 50, 6)
    forest = IsolationForest(n_estimators=60, max_samples=min(256, 100 * (seed + 1)),
                             max_features=[1.0, 0.5][seed % 2], contamination=0.02,
                             random_state=seed).fit(train)
    # near the training data, far from it, and exactly on stored thresholds
    rows = np.vstack([train[:300] + rng.normal(size=(300, 6)),
                      rng.normal(size=(300, 6)) * 200,
                      np.tile(forest.estimators_[0].tree_.threshold[:1], (5, 6))])
    expected = forest.predict(rows)
    assert set(expected) == {-1, 1}  # both verdicts occur
    assert (PackedForest(forest).predict(rows) == expected).all()
    assert (PackedForest(forest).predict(rows, chunk_rows=7) == expected).all()


def test_router_routes_as_before_with_the_packed_forest():
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"a": rng.normal(0, 1, 3000), "b": rng.uniform(10, 20, 3000)})
    router = Router(contamination=0.02, range_margin=10).fit(train)
    rows = pd.DataFrame({"a": rng.normal(0, 3, 2000), "b": rng.uniform(5, 25, 2000)})
    _, flagged = router.flags(rows)
    forest_says = router.forest_.predict(
        np.clip(rows.to_numpy(), router.low_, router.high_)) == -1
    assert flagged[:, -1].sum() > 20
    assert (flagged[:, -1] == forest_says).all()


SCHEMA = {"n": {"kind": "numeric"}, "m": {"kind": "numeric"}, "c": {"kind": "categorical"},
          "t": {"kind": "datetime"}}


@pytest.mark.parametrize("records", [
    [{"n": 1, "m": 2.5, "c": "x", "t": "2013-01-01T05:00:00.000Z"}],
    [{"n": None, "m": 1e300, "c": None, "t": None},
     {"n": 3, "m": -0.0, "c": "NA", "t": "2013-01-01T05:00:00Z"}],
    [{"n": "7.5", "m": " 2 ", "c": " y ", "t": "2013-06-01 10:30:00"},  # numbers as text
     {"n": None, "m": "-3e2", "c": "", "t": "2013-06-02"}],
    [{"n": 1, "m": 2, "c": 5, "t": "2013-01-01T05:00:00+02:00"},  # a number as a level
     {"n": 1.5, "m": 2, "c": "z", "t": "2013-01-01T05:00:00.123456-05:30"}],
    [{"n": 1, "m": 2, "c": "a", "t": "1 Jan 2013 5pm"},  # not ISO: read by pandas
     {"n": 1, "m": 2, "c": "b", "t": "2013-01-02 10:00"}],
])
def test_records_convert_as_features_frame_converts_them(records):
    check_records(records, SCHEMA)
    expected = features_frame(records_frame(records, SCHEMA), SCHEMA, "request")
    pd.testing.assert_frame_equal(records_features(records, SCHEMA), expected)


def test_a_time_shaped_like_iso_but_impossible_is_named_not_crashed():
    from conveyor.errors import InputError

    records = [{"n": 1, "m": 2, "c": "a", "t": "2024-01-01T12:99:00Z"}]
    with pytest.raises(InputError, match="must hold timestamps"):
        records_features(records, SCHEMA)


def test_a_mix_of_times_with_and_without_an_offset_is_still_refused():
    from conveyor.errors import InputError

    records = [{"n": 1, "m": 2, "c": "a", "t": "2013-01-01T05:00:00Z"},
               {"n": 1, "m": 2, "c": "a", "t": "2013-01-01T06:00:00"}]
    with pytest.raises(InputError, match="mixes times"):
        records_features(records, SCHEMA)
