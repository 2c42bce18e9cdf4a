"""Model files an attacker wrote, with the manifest and the catalog's sha256 rewritten to match.

Each payload is a node added to a real version's skops file that would write a marker
file if skops built it: ``builtins.exec`` and ``builtins.eval`` called with the file's
text, ``numpy.load`` unpickling a planted ``.npy`` file (``allow_pickle=True``),
``os.system`` running a shell command, and a class conveyor never writes whose
``__setstate__`` acts. For every payload, every command that loads a version (promote,
inference, update, rollback, the API's hot reload) must refuse it with one clear line,
and the marker must never appear. A version folder that is a symlink out of the
models store is refused the same way.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conveyor import pipeline
from conveyor.config import load_config
from conveyor.errors import ConveyorError
from tests.e2e_helpers import inference_sample, write_config, write_flights_slice

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ("exec", "eval", "numpy_load", "os_system", "unknown_class")


class Marker:
    """A class conveyor never writes: building it from a file writes the marker."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        Path(state["marker"]).touch()

    def __reduce__(self):  # for the planted .npy: unpickling it writes the marker
        return (Path.touch, (Path(self.path),))

    def __init__(self, path: str = "") -> None:
        self.path = path


def _json(value: Any) -> dict[str, Any]:
    return {"__class__": type(value).__name__, "__module__": "builtins",
            "__loader__": "JsonNode", "content": json.dumps(value), "is_json": True,
            "__id__": id(value)}


def _call(module: str, name: str, *args: Any) -> dict[str, Any]:
    """A node that makes skops call ``module.name(*args)`` while it loads."""
    return {"__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode",
            "content": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                        "content": [_json(a) for a in args], "__id__": 1},
            "__id__": 2}


def payload_node(kind: str, marker: Path, folder: Path) -> dict[str, Any]:
    if kind == "exec":
        return _call("builtins", "exec", f"open({str(marker)!r}, 'w').close()")
    if kind == "eval":
        return _call("builtins", "eval", f"__import__('pathlib').Path({str(marker)!r}).touch()")
    if kind == "numpy_load":
        planted = folder / "planted.npy"
        np.save(planted, np.array([Marker(str(marker))], dtype=object), allow_pickle=True)
        return {**_call("numpy", "load", str(planted)),
                "content": {"__class__": "tuple", "__module__": "builtins",
                            "__loader__": "TupleNode", "__id__": 3,
                            "content": [_json(str(planted)), _json(None), _json(True)]}}
    if kind == "os_system":
        return _call("os", "system", f"touch {marker}")
    assert kind == "unknown_class"
    return {"__class__": "Marker", "__module__": __name__, "__loader__": "ObjectNode",
            "content": {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
                        "content": {"marker": _json(str(marker))},
                        "key_types": {"__class__": "list", "__module__": "builtins",
                                      "__loader__": "ListNode", "__id__": 4, "content": [
                                          {"__class__": "str", "__module__": "builtins",
                                           "__loader__": "TypeNode", "__id__": 5}]},
                        "__id__": 6},
            "__id__": 7}


def plant(workspace: Path, version: int, kind: str, marker: Path) -> None:
    """Add the payload to version's model file; rewrite the manifest and the catalog."""
    folder = workspace / "models" / f"v{version:06d}"
    model = folder / "model.skops"
    with zipfile.ZipFile(model) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(files["schema.json"])
    # the bundle's dict (champion, fallback, router), or a pipeline's attributes
    target = schema if schema["__loader__"] == "DictNode" else schema["content"]
    target["content"]["x"] = payload_node(kind, marker, folder)
    target["key_types"]["content"].append(
        {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode", "__id__": 8})
    files["schema.json"] = json.dumps(schema).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    rewrite(workspace, version, buffer.getvalue())


def rewrite(workspace: Path, version: int, data: bytes) -> None:
    folder = workspace / "models" / f"v{version:06d}"
    (folder / "model.skops").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "sha256": sha}))
    with sqlite3.connect(workspace / "conveyor.db") as conn:
        conn.execute("UPDATE models SET sha256 = ? WHERE version = ?", (sha, version))


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A workspace with v1 archived and v2 in production, copied for each test."""
    folder = tmp_path_factory.mktemp("hostile")
    write_flights_slice(folder)
    write_config(folder, train={"strategy": "retrain", "families": {
        "linear": {"grid": {"alpha": [1.0]}}}}, serve={"reload_seconds": 0.01})
    config = load_config(folder / "conveyor.yaml")
    assert pipeline.update(config).ok and pipeline.update(config).ok
    if production(folder / "ws") != 2:
        pipeline.promote(config, 2, "the tests need v2 in production")
    inference_sample(folder)
    return folder


@pytest.fixture()
def copy(template, tmp_path):
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    return tmp_path


def production(workspace: Path) -> int:
    with sqlite3.connect(workspace / "conveyor.db") as conn:
        return conn.execute("SELECT version FROM models WHERE stage = 'production'").fetchone()[0]


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = str(folder / "conveyor.yaml")
    command = [sys.executable, str(ROOT / "run.py"), *args, "-config", config] \
        if args[0] == "-mode" else [sys.executable, "-m", "conveyor", "--config", config, *args]
    # the tests folder on the path, so that a class conveyor never writes could be imported
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300,
                          env=env)


def refused_in_one_line(result: subprocess.CompletedProcess[str], says: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and says in errors[0], result.stderr


NEVER = "holds types conveyor never writes"


@pytest.mark.parametrize("kind", PAYLOADS)
def test_a_planted_payload_never_runs_whatever_loads_the_version(copy, kind):
    """In process, for speed: the commands' functions, and the API's hot reload."""
    workspace, marker = copy / "ws", copy / "pwned"
    config = load_config(copy / "conveyor.yaml")

    plant(workspace, 1, kind, marker)  # the archived version: promote and rollback
    with pytest.raises(ConveyorError, match=NEVER):
        pipeline.promote(config, 1, "an attacker's version")
    with pytest.raises(ConveyorError, match=NEVER):
        pipeline.rollback(config, "back to an attacker's version")
    assert production(workspace) == 2 and not marker.exists()

    # the API's hot reload after a catalog edit alone: it keeps serving v2
    from fastapi.testclient import TestClient

    from conveyor.serve.api import create_app

    with TestClient(create_app(config)) as client:
        with sqlite3.connect(workspace / "conveyor.db") as conn:
            conn.execute("UPDATE models SET stage = 'archived' WHERE version = 2")
            conn.execute("UPDATE models SET stage = 'production' WHERE version = 1")
        assert client.get("/health").json()["model_version"] == 2
    with sqlite3.connect(workspace / "conveyor.db") as conn:
        conn.execute("UPDATE models SET stage = 'archived' WHERE version = 1")
        conn.execute("UPDATE models SET stage = 'production' WHERE version = 2")
    assert not marker.exists()

    plant(workspace, 2, kind, marker)  # production: inference and the next update
    with pytest.raises(ConveyorError, match=NEVER):
        pipeline.inference(config, copy / "sample.csv")
    assert not (workspace / "predictions").exists() or not any(
        (workspace / "predictions").iterdir())
    with pytest.raises(ConveyorError, match=NEVER):
        pipeline.update(config)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["exec", "unknown_class"])
def test_the_commands_refuse_a_planted_version_in_one_line(copy, kind):
    """As a user runs them: one error line, a non-zero exit, nothing run or written."""
    workspace, marker = copy / "ws", copy / "pwned"
    plant(workspace, 1, kind, marker)
    refused_in_one_line(cli(copy, "promote", "1"), NEVER)
    refused_in_one_line(cli(copy, "rollback"), NEVER)
    plant(workspace, 2, kind, marker)
    refused_in_one_line(cli(copy, "-mode", "inference", "-file", str(copy / "sample.csv")),
                        NEVER)
    result = cli(copy, "-mode", "update")
    assert result.returncode == 1 and result.stdout.strip() == "False"
    assert NEVER in result.stderr and "Traceback" not in result.stderr
    assert production(workspace) == 2 and not marker.exists()


def test_a_version_folder_linked_out_of_the_models_store_is_refused(copy, tmp_path_factory):
    workspace = copy / "ws"
    outside = tmp_path_factory.mktemp("elsewhere") / "v000001"
    shutil.move(workspace / "models" / "v000001", outside)
    (workspace / "models" / "v000001").symlink_to(outside, target_is_directory=True)
    refused_in_one_line(cli(copy, "promote", "1"), "is not its own folder in the models store")
    # a file inside the right folder that links elsewhere is refused as well
    (workspace / "models" / "v000001").unlink()
    shutil.move(outside, workspace / "models" / "v000001")
    model = workspace / "models" / "v000001" / "model.skops"
    moved = outside.with_name("model.skops")
    shutil.move(model, moved)
    model.symlink_to(moved)
    refused_in_one_line(cli(copy, "promote", "1"), "holds a symlink")
    assert production(workspace) == 2


def test_a_catalog_path_to_another_version_s_folder_is_refused(copy):
    workspace = copy / "ws"
    with sqlite3.connect(workspace / "conveyor.db") as conn:
        conn.execute("UPDATE models SET path = 'models/v000002' WHERE version = 1")
    refused_in_one_line(cli(copy, "promote", "1"), "is not its own folder")
