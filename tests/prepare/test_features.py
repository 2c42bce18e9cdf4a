"""Feature engineering: values by hand, local-time calendar, and the sklearn contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import clone

from conveyor.config import DerivedFeature, FeaturesConfig
from conveyor.prepare.features import FeatureMaker


def frame() -> pd.DataFrame:
    return pd.DataFrame({
        # 2013-01-01 03:30 UTC is still Dec 31 (a Monday) in New York
        "t": pd.to_datetime(["2013-01-01 03:30", "2013-07-04 16:00", "2013-07-06 12:00"],
                            utc=True),
        "a": [-3.0, 0.0, 8.0], "b": [2.0, 0.0, 4.0], "c": ["x", "x", "y"],
    })


def test_calendar_parts_are_read_in_the_configured_time_zone():
    maker = FeatureMaker("t", "America/New_York", ["hour", "weekday", "month", "day",
                                                    "weekend", "holiday"])
    out = maker.fit_transform(frame())
    assert out["t_hour"].tolist() == [22.0, 12.0, 8.0]
    assert out["t_weekday"].tolist() == [0.0, 3.0, 5.0]  # Mon, Thu, Sat
    assert out["t_month"].tolist() == [12.0, 7.0, 7.0]
    assert out["t_day"].tolist() == [31.0, 4.0, 6.0]
    assert out["t_weekend"].tolist() == [0.0, 0.0, 1.0]
    assert out["t_holiday"].tolist() == [0.0, 1.0, 0.0]  # July 4th


def test_derived_columns_by_hand():
    maker = FeatureMaker(derived=[
        {"name": "d", "op": "diff", "columns": ["a", "b"]},
        {"name": "r", "op": "ratio", "columns": ["a", "b"]},
        {"name": "l", "op": "log1p", "columns": ["a"]},
        {"name": "k", "op": "clip", "columns": ["a"], "lower": -1.0, "upper": 5.0},
        {"name": "f", "op": "frequency", "columns": ["c"]},
    ])
    out = maker.fit(frame()).transform(frame().assign(c=["x", "z", "y"]))
    assert out["d"].tolist() == [-5.0, 0.0, 4.0]
    assert out["r"].tolist()[0] == -1.5 and np.isnan(out["r"][1]) and out["r"][2] == 2.0
    assert out["l"].tolist() == pytest.approx([-np.log(4.0), 0.0, np.log(9.0)])
    assert out["k"].tolist() == [-1.0, 0.0, 5.0]
    # frequencies learned at fit; an unseen level gets 0
    assert out["f"].tolist() == pytest.approx([2 / 3, 0.0, 1 / 3])
    assert list(out.columns[:4]) == ["t", "a", "b", "c"]  # inputs kept


def test_clone_and_skops_round_trip_keep_behaviour():
    maker = FeatureMaker("t", "UTC", ["hour"], [{"name": "f", "op": "frequency",
                                                 "columns": ["c"]}])
    assert clone(maker).get_params() == maker.get_params()
    fitted = maker.fit(frame())
    loaded = sio.loads(sio.dumps(fitted), trusted=sio.get_untrusted_types(data=sio.dumps(fitted)))
    pd.testing.assert_frame_equal(loaded.transform(frame()), fitted.transform(frame()))


def test_config_checks_arity_and_time_zone():
    with pytest.raises(ValueError, match="takes 2 column"):
        DerivedFeature(name="x", op="ratio", columns=["a"])
    with pytest.raises(ValueError, match="unknown time zone"):
        FeaturesConfig(timezone="Mars/Olympus")
