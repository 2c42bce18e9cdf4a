"""History features: values against a brute-force reading of the definition, the config's
guard on labels not known yet, and a stream where any look-ahead would score perfectly."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conveyor import pipeline
from conveyor.config import load_config
from conveyor.config.root import Config
from conveyor.errors import InputError
from conveyor.prepare.history import EWM_HALF_LIVES, HistoryIndex
from conveyor.serve.bundle import load_version
from conveyor.workspace import Workspace

HOUR = pd.Timedelta("1h")


def _config(history: list[dict], **target: object) -> Config:
    return Config.model_validate({
        "source": {"kind": "csv", "path": "x.csv", "time_column": "t"},
        "target": {"column": "y", **target}, "stream": {"window": "1D"},
        "features": {"history": history}})


def _brute(history: pd.DataFrame, t: pd.Timestamp, key: str | None, spec: dict,
           delay: pd.Timedelta) -> float:
    """The definition read literally: filter the past rows, then compute the statistic."""
    rows = history if key is None else history[history["k"] == key]
    rows = rows[rows[spec["column"]].notna()]
    if "lag" in spec:
        at = t - pd.Timedelta(spec["lag"])
        before = rows[(rows["t"] <= at) & (rows["t"] > at - pd.Timedelta(spec["lag"]))]
        return float(before.sort_values("t", kind="stable")[spec["column"]].iloc[-1]) \
            if len(before) else np.nan
    end, window = t - delay, pd.Timedelta(spec["window"])
    inside = rows[(rows["t"] > end - window) & (rows["t"] <= end)].sort_values(
        "t", kind="stable")
    values = inside[spec["column"]].to_numpy(float)
    stat = spec["stat"]
    if stat == "count":
        return float(len(values))
    if len(values) < (2 if stat == "std" else 1):
        return np.nan
    if stat == "ewm":
        age = (end - inside["t"]) / (window / EWM_HALF_LIVES)
        weights = 0.5 ** age.to_numpy(float)
        return float(np.dot(weights, values) / weights.sum())
    return {"mean": np.mean, "median": np.median, "last": lambda v: v[-1],
            "std": lambda v: np.std(v, ddof=1)}[stat](values)


SPECS = [
    {"column": "y", "lag": "1D"},
    {"column": "x", "lag": "2h", "by": ["k"]},
    *({"column": "y", "window": "2D", "stat": stat} for stat in
      ("mean", "median", "std", "count", "last", "ewm")),
    *({"column": "x", "window": "5h", "stat": stat, "by": ["k"]} for stat in
      ("mean", "median", "std", "count", "last", "ewm")),
]


def test_every_statistic_matches_the_definition_read_literally():
    rng = np.random.default_rng(7)
    n = 600
    history = pd.DataFrame({
        "t": pd.Timestamp("2024-03-01", tz="UTC") + pd.to_timedelta(
            np.sort(rng.uniform(0, 10 * 24, n)), unit="h"),
        "k": rng.choice(["a", "b", "c"], n), "x": rng.normal(5, 2, n),
        "y": rng.normal(100, 20, n)})
    history.loc[rng.random(n) < 0.1, "x"] = np.nan  # missing values are skipped
    history.loc[rng.random(n) < 0.1, "y"] = np.nan
    names = [{**s, "name": f"f{i}"} for i, s in enumerate(SPECS)]
    index = HistoryIndex(_config(names), history)
    queries = pd.DataFrame({
        "t": pd.Timestamp("2024-03-02", tz="UTC") + pd.to_timedelta(
            rng.uniform(0, 12 * 24, 80), unit="h"),
        "k": rng.choice(["a", "b", "c", "never seen"], 80)})
    got = index.features(queries)
    for i, spec in enumerate(SPECS):
        delay = pd.Timedelta("1D") if spec["column"] == "y" else pd.Timedelta(0)
        for row in range(len(queries)):
            key = queries["k"].iloc[row] if spec.get("by") else None
            want = _brute(history, queries["t"].iloc[row], key, spec, delay)
            assert got[f"f{i}"].iloc[row] == pytest.approx(want, rel=1e-9, nan_ok=True), \
                (spec, row)
    assert got["f1"].notna().sum() > 10 and got["f7"].notna().sum() > 10  # not vacuous


def test_a_row_never_sees_its_own_label_or_a_label_not_known_yet():
    history = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=72, freq="h", tz="UTC"),
                            "y": np.arange(72.0)})
    index = HistoryIndex(_config([{"column": "y", "window": "30D", "stat": "last"},
                                  {"column": "y", "window": "30D", "stat": "count"}]), history)
    queries = history[["t"]].iloc[[30, 71]]
    # the label delay is one stream window (1D): row 30 sees rows up to 6, row 71 up to 47
    assert index.features(queries).to_numpy().tolist() == [[6.0, 7.0], [47.0, 48.0]]
    with_delay = HistoryIndex(_config([{"column": "y", "lag": "2h"}], label_delay="2h"),
                              history)
    assert with_delay.features(queries).iloc[:, 0].tolist() == [28.0, 69.0]


@pytest.mark.parametrize("history, label_delay, message", [
    ([{"column": "y", "lag": "12h"}], None, "lag 12h would read labels not known yet"),
    ([{"column": "y", "window": "3D", "delay": "1h"}], "2h", "delay 1h would read labels"),
    ([{"column": "y", "lag": "1D", "window": "1D"}], None, "exactly one of lag and window"),
    ([{"column": "y", "window": "soon"}], None, "not a positive time span"),
    ([{"column": "x", "window": "1D", "by": ["y"]}], None, "cannot be a key"),
    ([{"column": "x", "lag": "1D"}, {"column": "x", "lag": "1D"}], None, "x_lag_1D"),
])
def test_the_config_refuses_what_would_leak_or_cannot_be_read(history, label_delay, message):
    with pytest.raises(ValueError, match=message):
        _config(history, label_delay=label_delay)


def test_the_input_must_carry_the_time_and_the_keys():
    index = HistoryIndex(_config([{"column": "x", "window": "1D", "by": ["k"]}]),
                         pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3, tz="UTC"),
                                       "k": ["a"] * 3, "x": [1.0, 2.0, 3.0]}))
    with pytest.raises(InputError, match="time column 't'"):
        index.features(pd.DataFrame({"k": ["a"]}))
    with pytest.raises(InputError, match=r"key column\(s\) \['k'\]"):
        index.features(pd.DataFrame({"t": ["2024-01-05"]}))
    # keys written as numbers or text agree: 7 and 7.0 are the same key
    numeric = HistoryIndex(_config([{"column": "x", "window": "9D", "by": ["k"]}]),
                           pd.DataFrame({"t": pd.date_range("2024-01-01", periods=2, tz="UTC"),
                                         "k": [7, 7], "x": [1.0, 3.0]}))
    asked = pd.DataFrame({"t": ["2024-01-05T00:00:00Z"], "k": [7.0]})
    assert numeric.features(asked).iloc[0, 0] == 2.0


def _noise_stream(folder: Path) -> Path:
    """Hourly rows whose target is pure noise: a model can only guess its mean, unless it
    sees the row's own label (a look-ahead), which the history feature would then copy."""
    rng = np.random.default_rng(11)
    n = 24 * 8
    frame = pd.DataFrame({"t": pd.date_range("2024-05-01", periods=n, freq="h", tz="UTC"),
                          "x": rng.normal(0, 1, n), "y": rng.normal(50, 10, n)})
    frame.to_csv(folder / "noise.csv", index=False)
    config = {"workspace": "ws", "source": {"kind": "csv", "path": "noise.csv",
                                            "time_column": "t"},
              "target": {"column": "y"}, "stream": {"window": "1D"},
              "quality": {"min_rows": 10}, "validate": {"metric": "r2"},
              "train": {"strategy": "retrain", "families": {
                  "linear": {"grid": {"alpha": [1.0]}}, "tree": {"grid": {"max_depth": [4]}}}},
              "features": {"history": [{"column": "y", "window": "1D", "stat": "last"},
                                       {"column": "y", "window": "1D", "stat": "mean"}]}}
    path = folder / "conveyor.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_a_look_ahead_would_score_perfectly_but_the_scores_stay_honest(tmp_path, open_store):
    config = load_config(_noise_stream(tmp_path))
    for _ in range(6):
        assert pipeline.update(config).ok
    store = open_store(config)
    prequential = store.frame("prequential")
    served = prequential[prequential["role"] == "production"]["score"]
    assert len(served) >= 4 and served.max() < 0.2  # noise stays noise: R² near 0 or below
    # each search scored its choice with the history features and without; where they were
    # left out, the score with them was no better than noise either; where kept, the served
    # scores above are those of a model reading them
    models = store.frame("models").sort_values("version")
    scored = [re.search(r"history features left out \(r2 (\S+) without them, \w+; (\S+) "
                        r"with, \w+\)", note) for note in models["strategy_note"]]
    assert all(float(m.group(2)) < 0.2 for m in scored if m)
    workspace = Workspace.of(config)
    reads = [bool({"y_last_1D", "y_mean_1D"} & set(load_version(workspace, row).features))
             for row in models.to_dict("records")]
    assert any(scored) and any(reads), (models["strategy_note"].tolist(), reads)
    # the same features read with the row's own batch in its history (a look-ahead) copy
    # the label: a model reading them would have scored R² = 1
    data = pd.read_csv(tmp_path / "noise.csv", parse_dates=["t"])
    leaky = HistoryIndex(load_config(tmp_path / "conveyor.yaml"),
                         data.assign(t=data["t"] - pd.Timedelta("1D")))
    copied = leaky.features(data)["y_last_1D"]
    assert np.allclose(copied, data["y"])


def test_spans_are_read_one_way_for_the_window_the_label_delay_and_the_features():
    """A window pandas reads as a fixed offset (1D12h) is a label delay too, and a history
    span is read as the config checked it."""
    config = Config.model_validate({
        "source": {"kind": "csv", "path": "x.csv", "time_column": "t"},
        "target": {"column": "y"}, "stream": {"window": "1D12h"},
        "features": {"history": [{"column": "y", "lag": "1D12h"}]}})
    history = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=72, freq="h", tz="UTC"),
                            "y": np.arange(72.0)})
    asked = pd.DataFrame({"t": [pd.Timestamp("2024-01-03 12:00", tz="UTC")]})
    assert HistoryIndex(config, history).features(asked).iloc[0, 0] == 24.0
    with pytest.raises(ValueError, match="lag 1D would read labels not known yet"):
        _config([{"column": "y", "lag": "1D"}], label_delay="1D12h")
