"""Several processes opening a new or an older workspace at the same moment.

Six real processes run ``conveyor status`` (through ``conveyor.cli.main``, the
command's entry point) on six workspaces in turn: three that do not exist yet and
three whose database has schema version 1. For each workspace the six are released
at the same instant (each blocks on a line from its stdin), so a race has six
chances to show. Every command must succeed, each schema must end current with one
version row, and each migration must have run exactly once (the upgrade is logged
by the one process that did it). Before the fix every workspace failed: "table meta
already exists", "duplicate column name: variant".
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

import conveyor
from conveyor.store import Store, schema
from conveyor.store.schema import SCHEMA_VERSION
from tests.e2e_helpers import store_url, write_config
from tests.store.test_migrations import _v1_database

ROOT = Path(conveyor.__file__).resolve().parents[1]
PROCESSES = 6
WORKSPACES = 6

# each process imports conveyor, says it is ready (a file), then blocks reading its stdin
# until the parent releases all of them with one line each, and runs `status`
# (``status`` itself no longer creates a missing workspace: the children open each one as
# every writing command does, through ``pipeline.open_workspace``)
CHILD = """
import json, logging, sys
from pathlib import Path
from conveyor import pipeline
from conveyor.config import load_config
from conveyor.logs import setup_logging
folder, me, configs = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
setup_logging(None, logging.INFO)
for k, config in enumerate(configs):
    (folder / f"ready-{k}-{me}").touch()
    sys.stdin.readline()
    code = 0
    try:
        _, store = pipeline.open_workspace(load_config(config))
        print(json.dumps({"opened": k, "production": store.production()}), flush=True)
        store.close()
    except Exception as exc:
        code = 1
        print(f"error: {exc!r}", file=sys.stderr, flush=True)
    print(json.dumps({"workspace": k, "code": code}), file=sys.stderr, flush=True)
"""


def _race(folder: Path, configs: list[Path]) -> list[subprocess.CompletedProcess[str]]:
    """Run PROCESSES children over ``configs``; release all of them at once per config."""
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(folder), str(i),
                                  *map(str, configs)], cwd=ROOT, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for i in range(PROCESSES)]
    try:
        for k in range(len(configs)):
            deadline = time.monotonic() + 120
            while len(list(folder.glob(f"ready-{k}-*"))) < PROCESSES:
                assert time.monotonic() < deadline, "children did not get ready"
                assert all(c.poll() is None for c in children), "a child died early"
                time.sleep(0.01)
            for child in children:
                assert child.stdin is not None
                child.stdin.write("go\n")
                child.stdin.flush()
        return [subprocess.CompletedProcess(c.args, c.wait(timeout=120), *c.communicate())
                for c in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()


def _configs(folder: Path) -> list[Path]:
    out = []
    for k in range(WORKSPACES):
        project = folder / f"project-{k}"
        project.mkdir()
        out.append(write_config(project, workspace="ws"))
    return out


def _check(configs: list[Path], done: list[subprocess.CompletedProcess[str]],
           upgrades: list[int]) -> None:
    logged = [0] * len(configs)
    for process in done:
        assert process.returncode == 0, process.stderr
        assert "Traceback" not in process.stderr and "error:" not in process.stderr, \
            process.stderr
        per_workspace = _stderr_per_workspace(process.stderr)
        assert [code for code, _ in per_workspace] == [0] * len(configs)
        for k, (_, lines) in enumerate(per_workspace):
            logged[k] += sum("upgraded the metadata database schema 1 -> "
                             f"{SCHEMA_VERSION}" in line for line in lines)
        assert len(_json_documents(process.stdout)) == len(configs)  # one opening each
    assert logged == upgrades
    for config, upgraded in zip(configs, upgrades, strict=True):
        store = Store.open(store_url(config.parent / "ws"))
        try:
            meta = store.frame("meta")
            # a v1 workspace's window anchor (its events' newest reset) moved once
            assert sorted(meta["key"]) == ["schema_version"] + ["window_anchor"] * upgraded
            values = meta.set_index("key")["value"]
            assert values["schema_version"] == str(SCHEMA_VERSION)
            assert [v for _, v in store.production_history()] == [1] * upgraded  # moved once
            if upgraded:
                assert values["window_anchor"] == "3"
            assert set(schema.metadata.tables) <= set(sa.inspect(store.engine).get_table_names())
        finally:
            store.close()


def _stderr_per_workspace(stderr: str) -> list[tuple[int, list[str]]]:
    """Split a child's stderr into (exit code, log lines) per workspace, in order."""
    out, lines = [], []
    for line in stderr.splitlines():
        if line.startswith('{"workspace"'):
            out.append((json.loads(line)["code"], lines))
            lines = []
        else:
            lines.append(line)
    return out


def _json_documents(text: str) -> list[str]:
    """Split the concatenated pretty-printed JSON objects `status` printed."""
    docs, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "{":
            depth, start = depth + 1, (i if depth == 0 else start)
        elif char == "}":
            depth -= 1
            if depth == 0:
                docs.append(text[start:i + 1])
    return docs


def test_processes_opening_new_and_schema_v1_workspaces_at_once(tmp_path, open_store):
    configs = _configs(tmp_path)
    older = configs[WORKSPACES // 2:]
    for config in older:
        (config.parent / "ws").mkdir()
        _v1_database(store_url(config.parent / "ws"))
    started = time.perf_counter()
    done = _race(tmp_path, configs)
    _check(configs, done, upgrades=[0 if c not in older else 1 for c in configs])
    for config in older:  # the v1 rows survived the upgrade
        store = open_store(config.parent / "ws")
        assert store.model(1)["family"] == "linear" and store.batch(1)["rows"] == 10
    print(f"\n{PROCESSES} processes x {WORKSPACES} workspaces ({len(older)} at schema v1): "
          f"all succeeded, one upgrade each ({time.perf_counter() - started:.1f} s)")
