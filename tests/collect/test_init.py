"""`conveyor init` on tables that are not the flights demo, then the real pipeline on them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.cli import main
from conveyor.collect.init import (
    choose_stream,
    excluded_columns,
    find_time_column,
    infer_task,
    init_config,
    render_config,
    sniff_delimiter,
    stray_text_columns,
    time_candidates,
)
from conveyor.collect.init.understand import clock_columns, leaks, time_copies
from conveyor.config import load_config
from conveyor.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def conveyor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "conveyor", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def sensor_table(sensors: int = 4, days: int = 30, seed: int = 0) -> pd.DataFrame:
    """Hourly readings of a few sensors; `load` depends on them (a regression target)."""
    rng = np.random.default_rng(seed)
    hours = 24 * days
    n = hours * sensors
    stamps = pd.date_range("2024-03-01", periods=hours, freq="h").strftime("%Y-%m-%d %H:%M:%S")
    frame = pd.DataFrame({
        "id": np.arange(n),
        "time": np.repeat(stamps, sensors),
        "sensor": np.tile([f"s{i}" for i in range(sensors)], hours),
        "temp": rng.normal(20, 5, n).round(2),
        "humidity": rng.uniform(30, 90, n).round(1),
        "pressure": rng.normal(1013, 8, n).round(1),
        "status": rng.choice(["ok", "warn", "fail"], n, p=[0.8, 0.15, 0.05]),
        "site": "plant-1",
    })
    frame.loc[rng.random(n) < 0.05, "humidity"] = np.nan
    frame.loc[rng.random(n) < 0.03, "pressure"] = np.nan
    frame["load"] = (2 * frame["temp"] + 0.1 * frame["humidity"].fillna(60)
                     + 10 * (frame["status"] == "fail") + rng.normal(0, 1, n)).round(3)
    return frame


def orders_table(days: int = 60, per_day: int = 50, seed: int = 1) -> pd.DataFrame:
    """Daily orders with a 3-class text target and a datetime column `created`."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    x1, x2 = rng.normal(0, 1, n), rng.normal(0, 1, n)
    region = rng.choice(["north", "south", "east"], n)
    score = x1 + 0.5 * x2 + (region == "north") + rng.normal(0, 0.3, n)
    return pd.DataFrame({
        "order_id": [f"o-{i:05d}" for i in range(n)],
        "created": np.repeat(pd.date_range("2023-01-01", periods=days, freq="D"), per_day),
        "amount": rng.gamma(2, 50, n).round(2),
        "x1": x1, "x2": x2, "region": region,
        "notes": [None] * (n - 10) + ["call back"] * 10,
        "tier": np.where(score > 1, "gold", np.where(score > 0, "silver", "bronze")),
    })


def read_config(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# -- end to end: init, update twice, inference -------------------------------------------


def test_sensor_csv_init_then_updates_and_inference(tmp_path):
    frame = sensor_table()
    frame.to_csv(tmp_path / "sensors.csv", sep=";", index=False)
    done = conveyor("init", "sensors.csv", "--target", "load", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (path,) = done.stdout.splitlines()  # stdout carries only the result
    summary = next(line for line in done.stderr.splitlines() if line.startswith(
        "conveyor: sampled "))
    assert Path(path) == tmp_path / "conveyor.yaml"
    assert "task: regression (numeric target with" in done.stderr
    assert "time column 'time'" in summary and "excluded: id (identifier), site (constant)" \
        in summary
    text = Path(path).read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    assert config["source"] == {"kind": "csv", "path": "sensors.csv", "time_column": "time",
                                "csv": {"delimiter": ";"}}
    assert config["target"] == {"column": "load", "task": "regression"}
    assert config["columns"]["exclude"] == ["id", "site"]
    # 30 days of hours: 12h windows give 60 batches of 48 rows (1D: 30; closest to 50: 12h)
    # and 5 windows (240 rows) reach the 200 rows of the first training
    assert config["stream"] == {"window": "12h", "initial_batches": 5}
    assert config["validate"] == {"metric": "mae"}
    assert "train" not in config  # library defaults
    # hourly readings over 30 days: the hour and the weekday repeat, the month does not
    assert config["features"] == {"calendar": ["hour", "weekday"], "timezone": "UTC"}
    assert "# identifier: a different value in every row" in text
    assert "# constant: always 'plant-1'" in text
    for _ in range(2):
        update = conveyor("update", cwd=tmp_path)
        assert update.stdout == "True\n", update.stderr
    new = frame.tail(40).drop(columns=["load"])
    new.to_csv(tmp_path / "new.csv", sep=";", index=False)
    done = conveyor("inference", "new.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = pd.read_csv(done.stdout.strip(), sep=";")
    assert len(out) == 40 and np.isfinite(out["predict"]).all()
    # a model of temp (slope 2) cannot be far off on these rows
    assert np.mean(np.abs(out["predict"] - frame.tail(40)["load"].to_numpy())) < 5


def test_parquet_classification_init_then_updates_and_inference(tmp_path):
    frame = orders_table()
    frame.to_parquet(tmp_path / "orders.parquet", index=False, row_group_size=1000)
    assert main(["init", str(tmp_path / "orders.parquet"), "--target", "tier",
                 "--out", str(tmp_path / "orders.yaml")]) == 0
    config = read_config(tmp_path / "orders.yaml")
    assert config["source"] == {"kind": "parquet", "path": "orders.parquet",
                                "time_column": "created"}
    assert config["target"] == {"column": "tier", "task": "classification"}
    assert config["columns"]["exclude"] == ["order_id", "notes"]
    assert config["stream"] == {"window": "1D", "initial_batches": 4}  # 60 days of 50 rows
    assert config["validate"] == {"metric": "f1"}
    loaded = load_config(tmp_path / "orders.yaml")
    assert loaded.source.path == tmp_path / "orders.parquet"
    for _ in range(2):
        update = conveyor("--config", "orders.yaml", "update", cwd=tmp_path)
        assert update.stdout == "True\n", update.stderr
    frame.tail(30).drop(columns=["tier"]).to_parquet(tmp_path / "new.parquet", index=False)
    done = conveyor("--config", "orders.yaml", "inference", "new.parquet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = pd.read_parquet(done.stdout.strip())
    assert len(out) == 30 and set(out["predict"]) <= {"gold", "silver", "bronze"}


def test_small_excel_falls_back_to_row_batches(tmp_path, capsys):
    frame = orders_table().iloc[::20].reset_index(drop=True)  # 150 rows over 60 days
    frame.to_excel(tmp_path / "small.xlsx", index=False)
    assert main(["init", str(tmp_path / "small.xlsx"), "--target", "tier",
                 "--out", str(tmp_path / "small.yaml")]) == 0
    said = capsys.readouterr()
    assert said.out == f"{tmp_path / 'small.yaml'}\n"  # the result only; the summary on stderr
    assert "sampled 150 of 150 rows" in said.err and "batches of 20 rows" in said.err
    config = read_config(tmp_path / "small.yaml")
    assert config["source"]["kind"] == "excel"
    # no window gives 20+ batches of 20+ rows: 150 rows in batches of max(20, 150/50) rows;
    # 10 batches would reach 200 rows, capped at half of the 8 batches
    assert config["stream"] == {"rows": 20, "initial_batches": 4}
    assert config["quality"] == {"min_rows": 10}
    load_config(tmp_path / "small.yaml")


def test_a_config_in_another_folder_points_back_at_the_data(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    sensor_table(days=10).to_csv(data / "s.tsv", sep="\t", index=False)
    result = init_config(data / "s.tsv", "load", tmp_path / "conf" / "c.yaml")
    assert result.config["source"]["path"] == "../data/s.tsv"
    assert result.config["source"]["csv"] == {"delimiter": "\t"}
    assert load_config(tmp_path / "conf" / "c.yaml").source.path == data / "s.tsv"


def test_large_files_are_sampled_but_the_span_is_the_whole_file(tmp_path):
    frame = sensor_table(sensors=2, days=30)  # 1,440 rows
    frame.to_csv(tmp_path / "s.csv", index=False)
    frame.to_parquet(tmp_path / "s.parquet", index=False, row_group_size=200)
    for name in ("s.csv", "s.parquet"):
        result = init_config(tmp_path / name, "load", tmp_path / f"{name}.yaml", max_rows=300)
        assert (result.rows_sampled, result.total_rows) == (300, 1440)
        # the first 300 rows span 6 days; the whole file 30: 12h windows of 24 rows
        assert result.stream.batches == 60 and result.config["stream"]["window"] == "12h"


# -- errors: one line on stderr, exit code 2, nothing written -----------------------------


def run_init(capsys, *args: str) -> tuple[int, str]:
    code = main(["init", *args])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


def test_missing_target_column(tmp_path, capsys):
    sensor_table(days=5).to_csv(tmp_path / "s.csv", index=False)
    code, err = run_init(capsys, str(tmp_path / "s.csv"), "--target", "revenue",
                         "--out", str(tmp_path / "c.yaml"))
    assert code == 2
    assert err.startswith("error: no target column 'revenue'") and "columns: id, time," in err
    assert not (tmp_path / "c.yaml").exists()


def test_no_time_column_lists_candidates_and_asks_for_time(tmp_path, capsys):
    frame = sensor_table(days=5).drop(columns=["time"])
    frame.to_csv(tmp_path / "s.csv", index=False)
    code, err = run_init(capsys, str(tmp_path / "s.csv"), "--target", "load",
                         "--out", str(tmp_path / "c.yaml"))
    assert code == 2 and "no time column found" in err and "pass --time" in err
    assert "candidates: columns id, sensor, temp" in err
    assert not (tmp_path / "c.yaml").exists()


def test_ambiguous_time_columns_need_time(tmp_path, capsys):
    frame = orders_table(days=30)
    frame["shipped"] = frame["created"] + pd.Timedelta("2D")
    frame.to_parquet(tmp_path / "o.parquet", index=False)
    code, err = run_init(capsys, str(tmp_path / "o.parquet"), "--target", "tier",
                         "--out", str(tmp_path / "c.yaml"))
    assert code == 2 and "(created, shipped); pass --time" in err
    assert run_init(capsys, str(tmp_path / "o.parquet"), "--target", "tier", "--time",
                    "shipped", "--out", str(tmp_path / "c.yaml"))[0] == 0
    config = read_config(tmp_path / "c.yaml")
    assert config["source"]["time_column"] == "shipped"
    assert "created" in config["columns"]["exclude"]  # another date column, not a feature


def test_existing_output_needs_force(tmp_path, capsys):
    sensor_table(days=5).to_csv(tmp_path / "s.csv", index=False)
    out = tmp_path / "conveyor.yaml"
    out.write_text("# mine\n", encoding="utf-8")
    code, err = run_init(capsys, str(tmp_path / "s.csv"), "--target", "load", "--out", str(out))
    assert code == 2 and f"'{out}' already exists" in err and "--force" in err
    assert out.read_text(encoding="utf-8") == "# mine\n"
    code, _ = run_init(capsys, str(tmp_path / "s.csv"), "--target", "load", "--out", str(out),
                       "--force")
    assert code == 0 and read_config(out)["target"]["column"] == "load"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_unknown_extension(tmp_path, capsys):
    (tmp_path / "data.json").write_text("[]", encoding="utf-8")
    code, err = run_init(capsys, str(tmp_path / "data.json"), "--target", "y",
                         "--out", str(tmp_path / "c.yaml"))
    assert code == 2 and "cannot tell the format" in err and ".csv, .parquet" in err


def test_regression_on_a_text_target_is_refused(tmp_path, capsys):
    orders_table(days=5).to_parquet(tmp_path / "o.parquet", index=False)
    code, err = run_init(capsys, str(tmp_path / "o.parquet"), "--target", "tier", "--task",
                         "regression", "--out", str(tmp_path / "c.yaml"))
    assert code == 2 and "--task regression needs a numeric target" in err


# -- the inference rules, one by one ------------------------------------------------------


def test_sniffing_delimiter_and_decimal_comma(tmp_path):
    assert sniff_delimiter('a,"b;c",d\n1,"2;3",4\n') == ","
    assert sniff_delimiter("a\tb\n1\t2\n") == "\t"
    assert sniff_delimiter("single\n1\n2\n") == ","
    frame = sensor_table(days=10)
    frame.to_csv(tmp_path / "eu.csv", sep=";", decimal=",", index=False)
    result = init_config(tmp_path / "eu.csv", "load", tmp_path / "c.yaml")
    assert result.config["source"]["csv"] == {"delimiter": ";", "decimal": ","}
    assert result.task == "regression"
    assert load_config(tmp_path / "c.yaml").source.csv.decimal == ","


def test_a_latin1_file_gets_its_encoding(tmp_path):
    frame = sensor_table(days=10)
    frame["sensor"] = frame["sensor"].str.replace("s", "capteur-é")
    frame.to_csv(tmp_path / "s.csv", index=False, encoding="latin-1")
    result = init_config(tmp_path / "s.csv", "load", tmp_path / "c.yaml")
    assert result.config["source"]["csv"]["encoding"] in ("cp1252", "latin-1")


@pytest.mark.parametrize(("values", "task"), [
    ([0, 1, 1, 0, 2], "classification"),
    ([0.0, 1.0, np.nan, 3.0], "classification"),  # integer-valued with a missing value
    (list(range(11)), "regression"),  # 11 distinct integers
    ([0.5, 1.0, 0.5, 1.0], "regression"),
    (["a", "b", "a"], "classification"),
    ([True, False, True], "classification"),
])
def test_task_inference(values, task):
    assert infer_task(pd.Series(values, name="y"))[0] == task


def test_a_constant_target_is_refused():
    with pytest.raises(InputError, match=r"'y' has a single value \(3\)"):
        infer_task(pd.Series([3, 3, 3], name="y"))
    with pytest.raises(InputError, match=r"single value \('a'\)"):
        infer_task(pd.Series(["a", None, "a"], name="y"))


def test_exclusion_rules():
    n = 40
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "row": np.arange(n) + 1000,  # sequential integers: identifier
        "code": [f"c{i}" for i in rng.permutation(n)],  # unique text: identifier
        "price": rng.permutation(n) * 997 + 13,  # unique integers, sparse, unordered: kept
        "ratio": rng.normal(size=n),  # unique floats: kept
        "empty": [np.nan] * 38 + [1.0, 2.0],  # 95 % missing
        "sparse": [np.nan] * 37 + [1.0, 2.0, 3.0],  # 92.5 % missing: kept
        "flag": [True] * n,  # constant
        "y": np.arange(n),  # the target is never excluded
    })
    assert excluded_columns(frame, keep={"y"}) == {
        "row": "identifier: a different value in every row",
        "code": "identifier: a different value in every row",
        "empty": "almost empty: 95.0% of values are missing",
        "flag": "constant: always True",
    }


def test_time_detection_prefers_a_time_name():
    frame = pd.DataFrame({"created": ["2024-01-01", "2024-01-02", "2024-01-03"],
                          "event_time": ["2024-01-01 10:00", "2024-01-02 11:00", None],
                          "ref": ["x1", "x2", "x3"], "y": [1.0, 2.0, 3.0]})
    assert find_time_column(frame, "y") == "event_time"
    with pytest.raises(InputError, match="'when' is not a column"):
        find_time_column(frame, "y", "when")


def test_stray_text_in_a_numeric_column_makes_it_categorical(tmp_path):
    frame = sensor_table(days=10)
    frame["pressure"] = frame["pressure"].astype(object)
    frame.loc[7, "pressure"] = "broken"
    notes = stray_text_columns(frame, skip={"time", "load"})
    assert list(notes) == ["pressure"] and "'broken'" in notes["pressure"]
    frame.to_csv(tmp_path / "s.csv", index=False)
    result = init_config(tmp_path / "s.csv", "load", tmp_path / "c.yaml")
    assert result.config["columns"]["categorical"] == ["pressure"]


def test_window_choice_by_hand():
    # 40 days at 4 rows per hour (3,840 rows): 12h gives 80 windows, 1D 40, 7D 6;
    # 40 is closest to 50 among those with 20+ windows of 20+ rows
    times = pd.Series(pd.date_range("2024-01-01", periods=40 * 96, freq="15min", tz="UTC"))
    plan = choose_stream(times)
    assert plan.section == {"window": "1D", "initial_batches": 3}  # 96 rows a window
    assert (plan.batches, plan.typical_rows, plan.min_rows) == (40, 96, 20)
    # a gap: the empty days are not batches
    gap = times[(times < "2024-01-11") | (times >= "2024-01-21")]
    # 30 days of data over a 40-day span: 12h gives 60 non-empty windows (not 80), 1D 30
    assert choose_stream(gap).section["window"] == "12h" and choose_stream(gap).batches == 60


def test_row_batches_when_the_span_is_short():
    times = pd.Series(pd.date_range("2024-01-01", periods=1000, freq="1min", tz="UTC"))
    plan = choose_stream(times)  # 17 hours: at most 17 one-hour windows
    assert plan.section == {"rows": 20, "initial_batches": 10}
    assert plan.batches == 50 and plan.min_rows == 10
    tiny = choose_stream(times.head(60))  # 60 rows: 5 batches of 12
    assert tiny.section == {"rows": 12, "initial_batches": 2} and tiny.min_rows == 6


names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(exclude=st.lists(names, max_size=4, unique=True), target=names)
def test_rendered_yaml_reads_back_as_built(exclude, target):
    config = {"source": {"kind": "csv", "path": "a b/#c.csv", "time_column": "t: 1",
                         "csv": {"delimiter": "\t"}},
              "target": {"column": target, "task": "regression"},
              "columns": {"features": None, "exclude": exclude, "categorical": None}}
    notes = {f"columns.exclude[{c}]": "why" for c in exclude}
    text = render_config(config, notes, "header")
    assert yaml.safe_load(text) == config


# -- init understands the table: leaks, clock columns, copies of the time ----------------


def counts_table(days: int = 120, seed: int = 3) -> pd.DataFrame:
    """Hourly counts with an hour-of-day text column (12am ... 11pm), day names, a day index
    (a numeric copy of the time) and two columns that add up exactly to the target."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2023-01-01", periods=24 * days, freq="h")
    hour = times.hour.to_numpy()
    temp = 10 + 8 * np.sin(np.arange(len(times)) / (24 * 365) * 2 * np.pi) \
        + rng.normal(0, 2, len(times))
    count = rng.poisson(5 + 40 * np.exp(-((hour - 17) ** 2) / 4) + temp.clip(0))
    casual = rng.binomial(count, 0.3)
    labels = np.array([f"{(h - 1) % 12 + 1}{'am' if h < 12 else 'pm'}" for h in range(24)])
    return pd.DataFrame({
        "when": times.strftime("%Y-%m-%d %H:%M"), "hr": labels[hour],
        "day": times.day_name().str[:3], "temp": temp.round(1),
        "day_index": (np.arange(len(times)) // 24).astype(float),
        "casual": casual, "registered": count - casual, "count": count})


def test_init_excludes_leaks_and_time_copies_and_keeps_clock_columns(tmp_path):
    counts_table().to_csv(tmp_path / "counts.csv", index=False)
    done = conveyor("init", "counts.csv", "--target", "count", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "conveyor.yaml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    assert config["source"]["time_column"] == "when"  # "1pm" is a time of day, not a date
    excluded = config["columns"]["exclude"]
    assert set(excluded) == {"casual", "registered", "day_index"}
    assert "# target leakage: casual + registered has correlation 1.0000 with count" in text
    assert "excluded casual: target leakage" in done.stderr  # said, not only written
    assert "# a numeric copy of the time (Spearman" in text
    assert config["features"]["calendar"] == ["hour", "weekday", "month"]
    assert config["features"]["derived"] == [
        {"name": "hr_hour_of_day", "op": "time_of_day", "columns": ["hr"]},
        {"name": "day_day_number", "op": "day_of_week", "columns": ["day"]}]
    assert "# hr holds times of day: kept as a category, and as hours here" in text
    assert "hgb" in load_config(tmp_path / "conveyor.yaml").train.families  # the defaults
    update = conveyor("update", cwd=tmp_path)
    assert update.stdout == "True\n", update.stderr
    manifest = json.loads(next((tmp_path / "workspace" / "models").glob("*/manifest.json"))
                          .read_text(encoding="utf-8"))
    assert {"hr", "day", "temp"} <= set(manifest["schema"])
    assert {"hr_hour_of_day", "day_day_number", "when_hour"} <= set(manifest["engineered"])
    assert not {"casual", "registered", "day_index"} & set(manifest["schema"])
    assert manifest["prediction_bounds"][0] == 0.0  # counts are never predicted negative


def test_classification_leak_is_a_one_column_rule():
    rng = np.random.default_rng(5)
    n = 2000
    frame = pd.DataFrame({"minutes_late": rng.normal(5, 20, n), "x": rng.normal(0, 1, n),
                          "region": rng.choice(["a", "b", "c"], n)})
    frame["late"] = np.where(frame["minutes_late"] > 15, "late", "on time")
    frame.loc[rng.random(n) < 0.2, "x"] += 0.5 * (frame["late"] == "late")
    found = leaks(frame, "late", "classification", set())
    assert list(found) == ["minutes_late"]
    assert "alone classifies 100.0% of the sample's rows right" in found["minutes_late"]


def test_regression_leak_needs_an_almost_exact_relation():
    rng = np.random.default_rng(6)
    a, b = rng.normal(0, 1, 500), rng.normal(0, 1, 500)
    frame = pd.DataFrame({"a": a, "b": b, "close": a + rng.normal(0, 0.1, 500)})
    frame["y"] = a - b
    assert sorted(leaks(frame, "y", "regression", set())) == ["a", "b"]
    frame["y"] = a + rng.normal(0, 0.02, 500)  # a: r ~ 0.9998; close: r ~ 0.995, a feature
    assert sorted(leaks(frame, "y", "regression", set())) == ["a"]


def test_time_copies_and_clock_columns_by_hand():
    times = pd.Series(pd.date_range("2024-01-01", periods=200, freq="h"))
    frame = pd.DataFrame({"epoch": times.astype("int64") // 10**9,
                          "season": np.sin(np.arange(200) / 30),
                          "year": [2024] * 200})
    assert list(time_copies(frame, times, set())) == ["epoch"]
    clocks = pd.DataFrame({"at": ["07:30", "13:00", "23:15"], "code": ["7", "13", "23"],
                           "dow": ["Monday", "Tuesday", "sunday"]})
    assert clock_columns(clocks) == {"at": "time_of_day", "dow": "day_of_week"}


def test_a_leak_left_in_by_hand_is_a_warning_in_update_and_summary(tmp_path):
    counts_table(days=20).to_csv(tmp_path / "counts.csv", index=False)
    assert conveyor("init", "counts.csv", "--target", "count", cwd=tmp_path).returncode == 0
    config = read_config(tmp_path / "conveyor.yaml")
    config["columns"]["exclude"] = []  # as a user who writes the config by hand
    (tmp_path / "conveyor.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    update = conveyor("update", cwd=tmp_path)
    assert update.stdout == "True\n", update.stderr
    assert "is implausibly perfect: a column probably gives the target away" in update.stderr
    summary = conveyor("summary", cwd=tmp_path)
    assert summary.returncode == 0, summary.stderr
    report = json.loads(Path(summary.stdout.strip()).with_suffix(".json").read_text())
    reading = next(s["reading"] for s in report["sections"] if s["key"] == "prequential")
    assert "WARNING: v1: hold-out R² 1.00000 is implausibly perfect" in reading


def test_a_workspace_built_for_another_target_is_refused_before_ingesting(tmp_path):
    counts_table(days=10).to_csv(tmp_path / "counts.csv", index=False)
    assert conveyor("init", "counts.csv", "--target", "count", cwd=tmp_path).returncode == 0
    assert conveyor("update", cwd=tmp_path).stdout == "True\n"
    before = json.loads(conveyor("status", "--json", cwd=tmp_path).stdout)["batches"]
    again = conveyor("init", "counts.csv", "--target", "day", "--force", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    refused = conveyor("update", cwd=tmp_path)
    assert (refused.returncode, refused.stdout) == (2, "False\n")
    assert "was built for target count (regression); this config asks for day " \
           "(classification)" in refused.stderr
    assert "Point `workspace:` in the config at a new folder" in refused.stderr
    after = json.loads(conveyor("status", "--json", cwd=tmp_path).stdout)["batches"]
    assert after == before > 0  # the refused update ingested nothing


def test_codes_are_not_dates_and_free_text_is_not_a_category():
    rng = np.random.default_rng(8)
    n = 200
    frame = pd.DataFrame({
        "when": pd.date_range("2024-01-01", periods=n, freq="h").astype(str),
        "station": [f"ST{i:04d}" for i in rng.integers(0, 60, n)],  # "ST0012": 0001-01-12
        "tweet": [f"words {i} and more words {rng.integers(0, 10**6)}" for i in range(n)],
        "rownames": rng.permutation(n) + 5000,
        "y": rng.normal(size=n)})
    frame.loc[[3, 9], "tweet"] = frame.loc[4, "tweet"]  # a few repeats: not unique per row
    assert time_candidates(frame) == ["when"]
    excluded = excluded_columns(frame, keep={"when", "y"})
    assert "station" not in excluded
    assert excluded["tweet"].startswith("nearly unique text (99% of values distinct)")
    assert excluded["rownames"] == "identifier: a different value in every row"


def _hourly_counts(days: int = 140, seed: int = 0) -> pd.DataFrame:
    """Hourly counts with a daily and a weekly rhythm, a level that wanders week by week,
    and noise."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2024-01-01", periods=24 * days, freq="h", tz="UTC")
    hour, weekday = t.hour.to_numpy(), t.day_of_week.to_numpy()
    level = np.repeat(np.cumsum(rng.normal(0, 15, days // 7 + 1)), 24 * 7)[:len(t)]
    count = 200 + level + 50 * np.sin(2 * np.pi * hour / 24) + 30 * (weekday >= 5) \
        + rng.normal(0, 10, len(t))
    return pd.DataFrame({"when": t, "temp": rng.normal(10, 5, len(t)),
                         "count": np.maximum(count, 0).round()})


def test_init_proposes_history_features_for_a_time_series_with_its_evidence(tmp_path):
    _hourly_counts().to_csv(tmp_path / "counts.csv", index=False)
    done = conveyor("init", "counts.csv", "--target", "count", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "conveyor.yaml").read_text(encoding="utf-8")
    config = load_config(tmp_path / "conveyor.yaml")
    window = config.stream.window
    assert window == "7D"  # 20 weekly windows: the labels of a row are known a week later
    # the same hour a week earlier is the first lag a row may read; one day is too early
    history = [h.model_dump(exclude_defaults=True) for h in config.features.history]
    assert history == [{"column": "count", "lag": "7D"},
                       {"column": "count", "window": "7D"}]  # mean, the default stat
    series = _hourly_counts().set_index("when")["count"]
    r = np.corrcoef(series.iloc[168:], series.iloc[:-168])[0, 1]  # by hand: hour by hour
    assert f"# autocorrelation {r:.2f} at 7D" in text
    assert "# the latest known window's mean; correlation" in text
    for _ in range(3):
        assert conveyor("update", cwd=tmp_path).stdout == "True\n"
    manifest = json.loads(sorted((tmp_path / "workspace" / "models").glob(
        "*/manifest.json"))[-1].read_text(encoding="utf-8"))
    assert {"count_lag_7D", "count_mean_7D"} <= set(manifest["schema"])
    # the summary shows them beside the row's own columns, with their share
    summary = conveyor("summary", cwd=tmp_path)
    report = json.loads(Path(summary.stdout.strip()).with_suffix(".json").read_text())
    reading = next(s["reading"] for s in report["sections"] if s["key"] == "importance")
    assert re.search(r"The history features \(count_lag_7D, count_mean_7D\) hold \d+% of "
                     r"v\d+'s importance", reading), reading


def test_init_proposes_no_history_where_the_table_is_not_one_series(tmp_path):
    many = pd.concat([_hourly_counts(seed=s) for s in range(3)]).sort_values("when")
    noise = _hourly_counts().assign(count=np.random.default_rng(4).normal(0, 1, 24 * 140))
    for name, frame in (("panel", many), ("noise", noise)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        done = conveyor("init", f"{name}.csv", "--target", "count", "--out", f"{name}.yaml",
                        cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert not load_config(tmp_path / f"{name}.yaml").features.history, name


def test_a_level_that_does_not_move_is_no_feature():
    """Daily and weekly rhythm around a fixed level: the weekly lag carries it, the mean of
    the latest known week is nearly constant (no correlation with the target) and is left
    out."""
    from conveyor.collect.init.series import history_features

    rng = np.random.default_rng(2)
    t = pd.Series(pd.date_range("2024-01-01", periods=24 * 140, freq="h", tz="UTC"))
    values = pd.Series(100 + 50 * np.sin(2 * np.pi * t.dt.hour / 24) + rng.normal(0, 5, len(t)))
    found = history_features(t, values, "y", "7D", "regression")
    assert [spec for spec, _ in found] == [{"column": "y", "lag": "7D"}]
    assert history_features(t, values, "y", "7D", "classification") == []
    assert history_features(t, values, "y", None, "regression") == []  # row batches
