"""Bad input files, tried as a new user would: the corpus of ``badfiles.py`` through the
real command, for ``inference`` and for ``update`` (a file arriving in an inbox).

Every case runs as its own process (``python run.py -mode inference -file F`` or
``python -m conveyor inference F``, alternately; ``update`` likewise), three at a time:
the cases, the update cases and the 2,000,000-row file share one pool, because
most of a command's time is Python importing its libraries (2.5-3.5 s here), and
a 5,000-column update computes for ~45 s on one core. An inference case must end one
of two ways:

- exit code 0 and one complete output file: every input column kept value for value,
  plus ``predict`` (finite, one per input row) and the route columns;
- a non-zero exit code, an empty stdout, stderr exactly one line ``error: ...`` holding
  the words the case names (no traceback, no warning), and no output at all (not even a
  hidden temp file).

"Stored state" is what a later update or inference reads: every table of the metadata
database but ``inference_log`` (compared row for row), the files under ``raw/``,
``models/``, ``cache/``, ``quarantine/``, ``reports/`` and ``predictions/`` (by sha256,
hidden ones included). Inference may add exactly one ``inference_log`` row per
successful call and none for a refused one; each case writes to its own output folder
(``serve.output_dir``) so the cases can run at the same time.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import yaml

from conveyor import pipeline
from conveyor.config import load_config
from tests.e2e_helpers import write_config, write_flights_slice
from tests.reliability import crashkit as ck
from tests.reliability.badfiles import INFERENCE, UPDATE, Case

ROOT = Path(__file__).resolve().parents[2]
ADDED = ["predict", "route", "route_reason"]
PARALLEL = 3

# some 60 commands (one a 5,000-column update) take minutes; CI runs them
pytestmark = [pytest.mark.slow, pytest.mark.serial]  # and bounds on seconds: run alone
FEATURES = {"calendar": ["hour", "weekday", "holiday"], "timezone": "America/New_York"}


def state(root: Path) -> dict[str, Any]:
    """What a later command reads: every table but inference_log, and the files."""
    tables = [r["name"] for r in ck.db_rows(root, "SELECT name FROM sqlite_master WHERE "
                                                  "type = 'table' AND name NOT LIKE 'sqlite_%'")]
    rows = {t: ck.db_rows(root, f'SELECT * FROM "{t}" ORDER BY rowid')
            for t in tables if t != "inference_log"}
    files = {}
    for folder in ("raw", "models", "cache", "quarantine", "reports", "predictions"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                files[str(path.relative_to(root))] = ck.sha256(path)
    return {"rows": rows, "files": files}


def read_text_table(path: Path) -> pd.DataFrame:
    """A CSV's cells exactly as written (all text), as conveyor reads them."""
    table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                           convert_options=pacsv.ConvertOptions(
                               strings_can_be_null=False, quoted_strings_can_be_null=False,
                               null_values=[], column_types={}, auto_dict_encode=False),
                           read_options=pacsv.ReadOptions(autogenerate_column_names=False))
    table = table.cast(pa.schema([(n.lstrip("\ufeff"), pa.string()) for n in table.schema.names]))
    return table.to_pandas()


def read_output(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else read_text_table(path)


@dataclass(frozen=True)
class Job:
    """One command to run; ``then`` optionally runs after it in the same job."""

    key: str
    argv: list[str]
    cwd: Path
    then: Any = None


@dataclass
class Run:
    done: subprocess.CompletedProcess[str]
    seconds: float
    extra: Any = None


def run_all(jobs: list[Job]) -> dict[str, Run]:
    """Run the jobs PARALLEL at a time (in the given order); return their runs by key."""
    env = {**os.environ, "PYTHONWARNINGS": "default"}  # any warning would show on stderr

    def run(job: Job) -> tuple[str, Run]:
        start = time.perf_counter()
        done = subprocess.run(job.argv, cwd=job.cwd, capture_output=True, text=True,
                              timeout=900, env=env)
        result = Run(done, time.perf_counter() - start)
        if job.then is not None:
            result.extra = job.then()
        return job.key, result

    with ThreadPoolExecutor(PARALLEL) as pool:
        return dict(pool.map(run, jobs))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A real workspace: the first two days of flights, one production model (v1)."""
    folder = tmp_path_factory.mktemp("badinputs")
    write_flights_slice(folder)
    config = load_config(write_config(folder, serve={"route_columns": True},
                                      features=FEATURES))
    assert pipeline.update(config).ok
    return folder


@pytest.fixture(scope="module")
def base(project) -> pd.DataFrame:
    """200 real rows of the trained window as text, without the target."""
    flights = pd.read_csv(project / "flights.csv", dtype=str, keep_default_na=False)
    rows = flights[flights["time_hour"] < "2013-01-03"].iloc[::7].head(200)
    return rows.drop(columns=["arr_delay"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def inbox_project(tmp_path_factory) -> Path:
    """An inbox workspace that ingested one real day and trained v1 on it."""
    folder = tmp_path_factory.mktemp("badinbox")
    write_flights_slice(folder)
    (folder / "inbox").mkdir()
    config = load_config(write_config(folder, features=FEATURES, source={
        "kind": "inbox", "path": "inbox", "time_column": "time_hour"}))
    day_rows(folder, "2013-01-02").to_csv(folder / "inbox" / "a.csv", index=False)
    assert pipeline.update(config).ok
    return folder


def day_rows(project: Path, day: str) -> pd.DataFrame:
    flights = pd.read_csv(project / "flights.csv", dtype=str, keep_default_na=False)
    return flights[flights["time_hour"].str.startswith(day)].reset_index(drop=True)


def case_config(project: Path, name: str) -> Path:
    config = yaml.safe_load((project / "conveyor.yaml").read_text(encoding="utf-8"))
    config["serve"]["output_dir"] = f"out/{name}"
    path = project / f"case-{name}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def inference_argv(index: int, config: Path, file: Path) -> list[str]:
    """Alternate between the two ways of calling inference."""
    if index % 2 == 0:
        return [sys.executable, str(ROOT / "run.py"), "-mode", "inference", "-file", str(file),
                "-config", str(config)]
    return [sys.executable, "-m", "conveyor", "--config", str(config), "inference", str(file)]


def update_argv(index: int) -> list[str]:
    if index % 2 == 0:
        return [sys.executable, str(ROOT / "run.py"), "-mode", "update"]
    return [sys.executable, "-m", "conveyor", "update"]


def two_million_rows(clean: Path, rows: int, folder: Path) -> Path:
    """The clean case's rows repeated to 2,000,000."""
    header, body = clean.read_bytes().split(b"\n", 1)
    path = folder / "two-million.csv"
    with open(path, "wb") as handle:
        handle.write(header + b"\n")
        for _ in range(2_000_000 // rows):
            handle.write(body)
    return path


NEXT_DAY = "2013-01-04"
DAY = "2013-01-03"


@pytest.fixture(scope="module")
def runs(request, project, base, inbox_project, tmp_path_factory) -> dict[str, Any]:
    """Build every case, run all of them in one pool, snapshot the states around it."""
    inputs = project / "inputs"
    inputs.mkdir()
    jobs: list[Job] = []
    inference_inputs = {}
    for index, case in enumerate(INFERENCE.cases):
        path = inference_inputs[case.name] = case.build(base, inputs / case.name)
        jobs.append(Job(f"inference/{case.name}",
                        inference_argv(index, case_config(project, case.name), path), project))
    built = sorted(p.name for p in inputs.iterdir())
    if any(item.name == "test_two_million_rows" for item in request.session.items):
        big = two_million_rows(inputs / "clean.csv", len(base),
                               tmp_path_factory.mktemp("big"))
        jobs.insert(0, Job("two-million", inference_argv(
            0, case_config(project, "two-million"), big), project))
    day = day_rows(inbox_project, DAY)
    cases = tmp_path_factory.mktemp("badinbox-cases")
    inbox_before = state(inbox_project / "ws")
    update_inputs = {}
    for index, case in enumerate(UPDATE.cases):
        folder = cases / case.name
        shutil.copytree(inbox_project, folder)
        update_inputs[case.name] = case.build(day, folder / "inbox" / f"b-{case.name}")
        then = None
        if case.name == "5000_extra_columns":  # the next normal day must still be accepted
            day_rows(inbox_project, NEXT_DAY).to_csv(folder / "inbox" / "c-next.csv",
                                                     index=False)
            # ... which the first update leaves alone: it takes one file
            then = functools.partial(subprocess.run, update_argv(index), cwd=folder,
                                     capture_output=True, text=True, timeout=600)
        job = Job(f"update/{case.name}", update_argv(index), folder, then)
        jobs.insert(0, job) if then is not None else jobs.append(job)  # longest first
    root = project / "ws"
    before = state(root)
    started = time.perf_counter()
    results = run_all(jobs)
    wall = time.perf_counter() - started
    log = ck.db_rows(root, "SELECT * FROM inference_log ORDER BY id")
    commands = sum(r.seconds for r in results.values())
    print(f"\n{len(INFERENCE.cases)} inference and {len(UPDATE.cases)} update cases"
          f"{' and 2,000,000 rows' if 'two-million' in results else ''}: {wall:.1f} s "
          f"({PARALLEL} at a time; {commands:.1f} s of commands); slowest: " + ", ".join(
              f"{k} {r.seconds:.1f} s" for k, r in sorted(
                  results.items(), key=lambda kr: -kr[1].seconds)[:3]))
    return {"results": results, "before": before, "after": state(root), "log": log,
            "built": built, "inputs": inputs, "inference_inputs": inference_inputs,
            "inbox_before": inbox_before, "day": day,
            "update_inputs": update_inputs, "update_folders": cases}


def output_of(runs: dict[str, Any], name: str) -> Path:
    return Path(runs["results"][f"inference/{name}"].done.stdout.strip())


def test_the_corpus_is_large_enough():
    assert len(INFERENCE.cases) >= 25
    assert {c.outcome for c in INFERENCE.cases} == {"predict", "error"}
    assert len({c.name for c in INFERENCE.cases}) == len(INFERENCE.cases)


@pytest.mark.parametrize("case", INFERENCE.cases, ids=lambda c: c.name)
def test_inference_case(case: Case, runs):
    done = runs["results"][f"inference/{case.name}"].done
    given_path = runs["inference_inputs"][case.name]
    out_dir = runs["inputs"].parent / "out" / case.name
    logged = [r for r in runs["log"] if Path(r["output_path"]).parent == out_dir]
    leftovers = sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr, done.stderr
    if case.outcome == "error":
        lines = done.stderr.strip().splitlines()
        assert done.returncode != 0 and done.stdout == "", done.stdout
        assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
        message = lines[0].replace(str(given_path), "<file>")  # the words, not the file name
        for word in case.says:
            assert word.lower() in message.lower(), (word, lines[0])
        assert leftovers == [] and logged == []
        return
    assert done.returncode == 0, done.stderr
    output = Path(done.stdout.strip())
    assert leftovers == [output.name] and output.parent == out_dir
    assert len(logged) == 1 and Path(logged[0]["output_path"]) == output
    out = read_output(output)
    given = pd.read_parquet(given_path) if given_path.suffix == ".parquet" else \
        read_text_table(given_path)
    assert list(out.columns) == [*given.columns, *ADDED]
    pd.testing.assert_frame_equal(out[list(given.columns)], given)  # kept value for value
    predictions = out["predict"].astype(float).to_numpy()
    assert len(predictions) == len(given) == logged[0]["rows"] and np.isfinite(predictions).all()
    if case.same_as is not None:
        reference = read_output(output_of(runs, case.same_as))
        np.testing.assert_array_equal(predictions, reference["predict"].astype(float))
    if case.check is not None:
        case.check(out, read_output(output_of(runs, "clean")))


HOSTILE = ["a_million_repeated_names", "a_million_distinct_names", "one_line_of_100_mb",
           "header_cell_of_100_mb", "fifo", "symlink_to_dev_zero"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_files_end_fast_as_bad_input(runs, project, name):
    """Exit code 2 (bad input); refused in process within 10 s and 256 MB of Python
    memory, whatever the file's size (the command's own start-up is not counted)."""
    import tracemalloc

    from conveyor.errors import InputError

    assert runs["results"][f"inference/{name}"].done.returncode == 2
    config = load_config(case_config(project, name))
    tracemalloc.start()
    began = time.perf_counter()
    with pytest.raises(InputError):
        pipeline.inference(config, runs["inference_inputs"][name])
    seconds = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(f"\n{name}: refused in {seconds:.2f} s, Python memory peak {peak:.0f} MB")
    assert seconds < 10 and peak < 256


def test_no_inference_case_changed_the_stored_state(runs):
    before, after = runs["before"], runs["after"]
    assert after["files"] == before["files"]
    for table, rows in before["rows"].items():
        assert after["rows"][table] == rows, table
    names = {c.name for c in INFERENCE.cases}
    calls = [r for r in runs["log"] if Path(r["output_path"]).parent.name in names]
    succeeded = [k for k, r in runs["results"].items()
                 if k.startswith("inference/") and r.done.returncode == 0]
    assert len(calls) == len(succeeded)
    # nothing was written beside the inputs either (no temp file, no partial output)
    assert sorted(p.name for p in runs["inputs"].iterdir()) == runs["built"]


@pytest.mark.slow
def test_two_million_rows(runs, base):
    """A 2,000,000-row file: complete output, bounded time; prints the figures."""
    result = runs["results"]["two-million"]
    assert result.done.returncode == 0, result.done.stderr
    output = Path(result.done.stdout.strip())
    predict = pacsv.read_csv(output, convert_options=pacsv.ConvertOptions(
        include_columns=["predict"])).column("predict").to_numpy()
    assert len(predict) == 2_000_000 and np.isfinite(predict).all()
    reference = read_output(output_of(runs, "clean"))["predict"].astype(float)
    np.testing.assert_array_equal(predict[:len(base)], reference)
    np.testing.assert_array_equal(predict[-len(base):], reference)
    row = next(r for r in runs["log"] if Path(r["output_path"]) == output)
    print(f"\n2,000,000 rows ({output.stat().st_size / 1e6:.0f} MB out): {result.seconds:.1f} s "
          f"for the command (sharing the machine with the other cases), {row['seconds']:.1f} s "
          f"inside, {row['rows_per_second']:,.0f} rows/s, peak {row['peak_mb']:.0f} MiB")
    assert result.seconds < 300


# -- update: bad files arriving in an inbox ---------------------------------------------

CHANGED_BY_REFUSAL = {"inbox_files", "events"}


@pytest.mark.parametrize("case", UPDATE.cases, ids=lambda c: c.name)
def test_update_case(case: Case, runs):
    result = runs["results"][f"update/{case.name}"]
    done, before = result.done, runs["inbox_before"]
    folder = runs["update_folders"] / case.name
    after = state(folder / "ws")
    given = runs["update_inputs"][case.name]
    name = given.name
    message = done.stderr.replace(str(given), "<file>")
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr, done.stderr
    assert not any(line.startswith("error:") for line in done.stderr.splitlines())
    earlier = len(before["rows"]["batches"])
    assert after["rows"]["batches"][:earlier] == before["rows"]["batches"]
    new_batches = after["rows"]["batches"][earlier:]
    if case.outcome == "refuse":
        assert (done.returncode, done.stdout) == (1, "False\n"), done.stderr
        assert "inbox file quarantined" in message
        for word in case.says:
            assert word.lower() in message.lower(), (word, done.stderr)
        for table, rows in before["rows"].items():  # nothing catalogued, no model
            if table not in CHANGED_BY_REFUSAL:
                assert after["rows"][table] == rows, table
        recorded = after["rows"]["inbox_files"][-1]
        assert (recorded["name"], recorded["status"]) == (name, "quarantined")
        assert [e["kind"] for e in after["rows"]["events"][len(before["rows"]["events"]):]] \
            == ["quarantine"]
        kept = folder / "ws" / "quarantine" / f"inbox-{name}"
        assert (kept / name).read_bytes() == given.read_bytes()
        assert json.loads((kept / "reason.json").read_text())["reason"] == recorded["reason"]
        changed = {k for k in after["files"].keys() ^ before["files"].keys()}
        assert changed == {f"quarantine/inbox-{name}/{name}",
                           f"quarantine/inbox-{name}/reason.json"}
        return
    wide = case.name == "5000_extra_columns"  # then one more update with a normal day
    assert len(new_batches) == 1 + wide
    batch = new_batches[0]
    assert batch["source"] == name and batch["rows"] == len(runs["day"])
    if case.outcome == "gate":
        assert (done.returncode, done.stdout) == (1, "False\n"), done.stderr
        assert batch["status"] == "quarantined"
        for word in case.says:
            assert word.lower() in batch["reason"].lower(), (word, batch["reason"])
        assert after["rows"]["models"] == before["rows"]["models"]
        return
    assert (done.returncode, done.stdout) == (0, "True\n"), done.stderr
    assert batch["status"] == "accepted"
    assert len(after["rows"]["models"]) == len(before["rows"]["models"]) + 1 + wide
    if case.name == "infinity_and_huge_floats":
        actions = json.loads(batch["clean_actions"])
        assert actions["coerce_type"] == 20 and actions["drop_missing_target"] >= 2
        assert set(json.loads(batch["clean_plan"])["coerce"]) == {"dep_delay", "distance"}
    if wide:
        following = result.extra
        assert (following.returncode, following.stdout) == (0, "True\n"), following.stderr
        assert new_batches[1]["source"] == "c-next.csv" and new_batches[1]["status"] == \
            "accepted"
