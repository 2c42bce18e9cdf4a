"""Config files and workspace layouts an attacker (or an accident) wrote.

A YAML alias bomb, a workspace that would swallow the user's own folder, a config that
is a pipe, and state files linked out of the workspace: each must end in one clear
line before anything is created or written.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conveyor.config import load_config
from conveyor.errors import ConfigError, ConveyorError
from conveyor.workspace import Workspace
from tests.e2e_helpers import write_config, write_flights_slice

ALIAS_BOMB = """\
source: {kind: csv, path: flights.csv, time_column: time_hour}
target: {column: arr_delay}
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
columns: {features: [*h,*h,*h,*h,*h,*h,*h,*h,*h]}
"""


def status(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conveyor", "--config",
                           str(folder / "conveyor.yaml"), "status"], cwd=folder,
                          capture_output=True, text=True, timeout=120)


def conveyor_update(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conveyor", "--config",
                           str(folder / "conveyor.yaml"), "update"], cwd=folder,
                          capture_output=True, text=True, timeout=300)


def one_error_line(result: subprocess.CompletedProcess[str], says: str) -> None:
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and says in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    path = tmp_path / "conveyor.yaml"
    path.write_text(ALIAS_BOMB)
    began = time.perf_counter()
    with pytest.raises(ConfigError, match=r"line 3 uses a YAML anchor or alias"):
        load_config(path)
    assert time.perf_counter() - began < 1.0
    one_error_line(status(tmp_path), "invalid config")
    assert not (tmp_path / "workspace").exists()


def test_a_single_anchor_is_refused_too(tmp_path):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("stream:", "stream: &s"))
    with pytest.raises(ConfigError, match="anchor or alias"):
        load_config(path)


@pytest.mark.parametrize("where", [".", "..", "../.."])
def test_a_workspace_holding_the_config_s_folder_is_refused_before_anything_is_made(
        tmp_path, where):
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    write_config(folder, workspace=where)
    before = sorted(tmp_path.rglob("*"))
    one_error_line(status(folder), "holds the config's own folder")
    assert sorted(tmp_path.rglob("*")) == before


def test_a_workspace_outside_the_config_s_folder_is_said_before_it_is_made(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    write_config(folder, workspace="../state")
    write_flights_slice(folder)
    result = conveyor_update(folder)
    assert result.returncode == 0, result.stderr
    assert "outside the config's folder" in result.stderr
    assert (tmp_path / "state").is_dir()
    assert "outside" not in status(folder).stderr  # said once: before it was made


def test_a_config_that_is_a_pipe_or_too_large_is_refused(tmp_path):
    fifo = tmp_path / "conveyor.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(fifo)
    big = tmp_path / "big.yaml"
    big.write_text(yaml.safe_dump({"x": "y" * (2 << 20)}))
    with pytest.raises(ConfigError, match="over the 1,048,576 a config may have"):
        load_config(big)


@pytest.mark.parametrize("name", ["raw", "models", "logs", "conveyor.db", ".lock"])
def test_state_linked_out_of_the_workspace_is_refused(tmp_path, name):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "ws"
    root.mkdir()
    target = outside / name
    if "." in name:
        target.write_text("")
    else:
        target.mkdir()
    (root / name).symlink_to(target)
    with pytest.raises(ConveyorError, match="symlink to .* outside the workspace"):
        Workspace(root).create()


def test_a_log_file_linked_out_of_the_workspace_is_never_written(tmp_path):
    path = write_config(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    logs = tmp_path / "ws" / "logs"
    logs.mkdir(parents=True)
    (logs / "conveyor.log").symlink_to(victim)
    result = status(tmp_path)
    assert result.returncode != 0
    assert "not writing the log file" in result.stderr
    assert "outside the workspace" in result.stderr
    assert victim.read_text() == "keep me\n"
    assert path.exists()
