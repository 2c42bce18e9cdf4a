"""The specification's console contract, run as a user runs it: real processes (each
command at least once); the error cases of run.py's function also in process."""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conveyor.cli import run_py as run_py_function
from conveyor.workspace import Workspace
from tests.e2e_helpers import inference_sample, write_config, write_flights_slice

ROOT = Path(__file__).resolve().parents[2]


def run_py(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def run_in_process(folder: Path, *args: str) -> int:
    """run.py's function in this process, from ``folder``; its own start-up is run for real
    above. The handlers it adds to the 'conveyor' logger are removed after."""
    logger = logging.getLogger("conveyor")
    before = list(logger.handlers)
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        return run_py_function(list(args))
    finally:
        os.chdir(cwd)
        for handler in [h for h in logger.handlers if h not in before]:
            logger.removeHandler(handler)
            handler.close()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    write_flights_slice(folder)
    write_config(folder)
    return folder


def test_update_prints_true_and_exits_zero(project):
    done = run_py("-mode", "update", cwd=project)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "True\n"


def test_inference_prints_the_output_path(project):
    sample = inference_sample(project)
    done = run_py("-mode", "inference", "-file", "./sample.csv", cwd=project)
    assert done.returncode == 0, done.stderr
    output = Path(done.stdout.strip())
    assert output.is_file() and output.suffix == ".csv"
    assert len(pd.read_csv(output)) == len(pd.read_csv(sample))
    assert "predict" in pd.read_csv(output).columns


def test_summary_prints_the_report_path(project):
    done = run_py("-mode", "summary", cwd=project)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).suffix == ".html"
    assert Path(done.stdout.strip()).is_file()


def test_missing_column_is_one_line_exit_2_and_no_output(project, capsys):
    frame = pd.read_csv(inference_sample(project)).drop(columns=["carrier"])
    frame.to_csv(project / "bad.csv", index=False)
    before = set((project / "ws" / "predictions").iterdir())
    capsys.readouterr()
    code = run_in_process(project, "-mode", "inference", "-file", "bad.csv")
    stdout, stderr = capsys.readouterr()
    assert code == 2
    assert stdout == ""
    assert "carrier" in stderr and "Traceback" not in stderr
    assert set((project / "ws" / "predictions").iterdir()) == before


def test_a_bad_config_names_the_key(tmp_path, capsys):
    write_flights_slice(tmp_path)
    write_config(tmp_path, validate={"scheme": "shuffled"})
    capsys.readouterr()
    code = run_in_process(tmp_path, "-mode", "update")
    stdout, stderr = capsys.readouterr()
    assert code == 2
    assert stdout == "False\n"
    assert "validate.scheme" in stderr and "holdout" in stderr


def test_second_update_fails_clearly_while_the_workspace_is_locked(project):
    with Workspace(project / "ws").lock(timeout=1):
        done = run_py("-mode", "update", cwd=project)
    assert done.stdout == "False\n"
    assert done.returncode == 3
    assert "locked by another update" in done.stderr


def test_conveyor_command_status_and_config_option(project, tmp_path):
    done = subprocess.run([sys.executable, "-m", "conveyor", "--config",
                           str(project / "conveyor.yaml"), "status"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(None, 1) for line in done.stdout.splitlines()
                 if not line.startswith("last batch"))
    assert lines["production"].startswith("v1 ") and "hold-out mae" in lines["production"]
    assert lines["stream"].startswith("1 batch(es): 1 accepted, 0 quarantined")
    assert "raw" in lines["disk"] and "models" in lines["disk"]  # where the space goes
    assert len(done.stdout.splitlines()) < 40
    strict = subprocess.run([sys.executable, "-m", "conveyor", "--config",
                             str(project / "conveyor.yaml"), "status", "--json"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    state = json.loads(strict.stdout, parse_constant=lambda name: pytest.fail(name))
    assert state["batches"] == 1 and state["production"]["version"] == "v1"
    assert len(strict.stdout.splitlines()) < 80  # a state, not every column's statistics


def test_models_and_explain_commands(project):
    sample = inference_sample(project)
    done = subprocess.run([sys.executable, "-m", "conveyor", "explain", "--file", str(sample),
                           "--row", "2"], cwd=project, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert '"contributions"' in done.stdout and '"version": 1' in done.stdout
    done = subprocess.run([sys.executable, "-m", "conveyor", "models"], cwd=project,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and re.search(r"\bv1\b", done.stdout)
    assert "production" in done.stdout


HEAVY = {"sklearn", "scipy", "pandas", "numpy", "skops", "pyarrow", "sqlalchemy", "pydantic",
         "fastapi", "plotly"}


@pytest.mark.parametrize("argv", [["--help"], ["update", "--help"], ["no-such-command"],
                                  ["promote", "not-a-number"]])
def test_help_and_argument_errors_import_no_heavy_library(argv):
    """`conveyor --help` and a mistyped command answer at once: the libraries the commands
    use are imported only when a command runs (measured: 0.12 s wall against 3.7 s)."""
    probe = ("import sys\nfrom conveyor.cli import main\ntry:\n    main(sys.argv[1:])\n"
             "except SystemExit:\n    pass\n"
             "print(sorted({m.split('.')[0] for m in sys.modules}), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True,
                          text=True, timeout=60)
    imported = set(ast.literal_eval(done.stderr.strip().splitlines()[-1]))
    assert imported & HEAVY == set()
    assert "conveyor.pipeline" not in done.stderr


def test_a_fresh_clone_before_the_demo_data_says_what_to_run_and_creates_nothing(tmp_path):
    """The bundled config without its data, as in a clone before `make demo`: every
    command names the missing files and the command that writes them; no workspace, no
    log file is left behind."""
    (tmp_path / "conveyor.yaml").write_text((ROOT / "conveyor.yaml").read_text())
    hint = "`make demo`"
    update = run_py("-mode", "update", cwd=tmp_path)
    assert (update.returncode, update.stdout) == (2, "False\n")
    assert "source.path" in update.stderr and "flights.csv" in update.stderr
    assert hint in update.stderr and "Nothing was created." in update.stderr
    for args in (("-mode", "summary"), ("-mode", "inference", "-file", "x.csv")):
        done = run_py(*args, cwd=tmp_path)
        assert done.returncode == 2 and done.stdout == ""
        assert "there is no workspace yet" in done.stderr and hint in done.stderr
    status = subprocess.run([sys.executable, "-m", "conveyor", "status"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert status.returncode == 0 and "no workspace yet" in status.stdout and hint in status.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conveyor.yaml"]


def test_the_documented_exit_codes_of_a_false_update_and_of_inference(tmp_path):
    """README's table: update prints False and exits 1 when its stages did not pass (here
    every batch is quarantined); inference exits 1 while no model is in production and 2
    for an input lacking a column the model needs, writing nothing either way."""
    write_flights_slice(tmp_path)
    write_config(tmp_path, quality={"min_rows": 10**9})  # no batch is ever big enough
    update = run_py("-mode", "update", cwd=tmp_path)
    assert (update.returncode, update.stdout) == (1, "False\n"), update.stderr
    assert "quarantined" in update.stderr
    sample = inference_sample(tmp_path)
    early = run_py("-mode", "inference", "-file", str(sample), cwd=tmp_path)
    assert (early.returncode, early.stdout) == (1, ""), early.stderr
    assert "no production model" in early.stderr
    write_config(tmp_path)  # the usual thresholds: the next update trains
    assert run_py("-mode", "update", cwd=tmp_path).stdout == "True\n"
    pd.read_csv(sample).drop(columns=["carrier"]).to_csv(tmp_path / "short.csv", index=False)
    short = run_py("-mode", "inference", "-file", "short.csv", cwd=tmp_path)
    assert (short.returncode, short.stdout) == (2, ""), short.stderr
    assert "carrier" in short.stderr
    assert not list((tmp_path / "ws" / "predictions").glob("short-*"))
