"""Model files someone else wrote: tampered, swapped, a pickle dropped in, a path escaping.

A real workspace with two versions (two updates on real flights). Each case edits the
models folder or the catalog the way an attacker or an accident would, then runs what a
user runs (``run.py -mode inference``, ``conveyor promote``/``rollback``, or the same
functions in process): it must end in one clear line and a non-zero exit, with nothing
written and production unchanged, and no byte of an untrusted file ever executed.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor import pipeline
from conveyor.config import load_config
from conveyor.errors import ConveyorError
from tests.e2e_helpers import inference_sample, write_config, write_flights_slice

ROOT = Path(__file__).resolve().parents[2]


class Trap:
    """Unpickling this creates a file: proof that a pickle's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Two versions: v1 archived, v2 production; built once, copied for each test."""
    folder = tmp_path_factory.mktemp("modelfiles")
    write_flights_slice(folder)
    path = write_config(folder, train={"strategy": "retrain", "families": {
        "linear": {"grid": {"alpha": [1.0]}}}})
    config = load_config(path)
    assert pipeline.update(config).ok and pipeline.update(config).ok
    if production(config) != 2:
        pipeline.promote(config, 2, "the tests need v2 in production")
    return folder


@pytest.fixture()
def workspace(template, tmp_path):
    """A private copy of the template: its folder, config and config path."""
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    path = tmp_path / "conveyor.yaml"
    return tmp_path, load_config(path), path


def db(config) -> sqlite3.Connection:
    return sqlite3.connect(config.workspace / "conveyor.db")


def production(config) -> int:
    with db(config) as conn:
        return conn.execute("SELECT version FROM models WHERE stage = 'production'").fetchone()[0]


def folder(config, version: int) -> Path:
    return config.workspace / "models" / f"v{version:06d}"


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``run.py -mode ...`` or ``conveyor ...`` with the workspace's config, as a user would."""
    config = str(tmp_path / "conveyor.yaml")
    cli = [sys.executable, str(ROOT / "run.py"), *args, "-config", config] \
        if args[0] == "-mode" else [sys.executable, "-m", "conveyor", "--config", config, *args]
    return subprocess.run(cli, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def refused(result: subprocess.CompletedProcess[str], says: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and says in errors[0], result.stderr


def outputs(config) -> list[Path]:
    out = config.workspace / "predictions"
    return sorted(out.iterdir()) if out.exists() else []


def test_a_tampered_production_file_is_refused_by_inference(workspace):
    tmp_path, config, _ = workspace
    model = folder(config, production(config)) / "model.skops"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    model.write_bytes(bytes(data))
    before = outputs(config)
    result = run(tmp_path, "-mode", "inference", "-file", str(inference_sample(tmp_path)))
    refused(result, "failed verification")
    assert outputs(config) == before


def test_a_swapped_manifest_is_refused(workspace):
    tmp_path, config, _ = workspace
    current = production(config)
    other = folder(config, 1 if current == 2 else 2)
    shutil.copy(other / "manifest.json", folder(config, current) / "manifest.json")
    with pytest.raises(ConveyorError, match="failed verification"):
        pipeline.inference(config, inference_sample(tmp_path))


def test_swapped_version_folders_are_refused(workspace):
    tmp_path, config, _ = workspace
    a, b = folder(config, 1), folder(config, 2)
    a.rename(a.with_name("swap"))
    b.rename(a)
    a.with_name("swap").rename(b)
    refused(run(tmp_path, "-mode", "inference", "-file", str(inference_sample(tmp_path))),
            "failed verification")
    refused(run(tmp_path, "promote", "1"), "failed verification")
    assert production(config) == 2


def test_a_pickle_in_place_of_the_model_never_runs_even_with_matching_hashes(workspace):
    """The worst case: the attacker also rewrote the manifest and the catalog's sha256."""
    tmp_path, config, _ = workspace
    marker = tmp_path / "pwned"
    version = production(config)
    payload = pickle.dumps(Trap(marker))
    (folder(config, version) / "model.skops").write_bytes(payload)
    sha = hashlib.sha256(payload).hexdigest()
    manifest_path = folder(config, version) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "sha256": sha}))
    with db(config) as conn:
        conn.execute("UPDATE models SET sha256 = ? WHERE version = ?", (sha, version))
    result = run(tmp_path, "-mode", "inference", "-file", str(inference_sample(tmp_path)))
    refused(result, "is not a readable skops file")
    assert not marker.exists()


def test_a_pickle_dropped_into_the_models_folder_is_never_listed_or_promoted(workspace):
    tmp_path, config, _ = workspace
    marker = tmp_path / "pwned"
    stray = folder(config, 99)
    stray.mkdir()
    (stray / "model.skops").write_bytes(pickle.dumps(Trap(marker)))
    (stray / "manifest.json").write_text(json.dumps({"version": 99}))
    listed = run(tmp_path, "models")
    assert listed.returncode == 0 and re.search(r"\bv2\b", listed.stdout)
    assert "99" not in listed.stdout
    refused(run(tmp_path, "promote", "99"), "no model version 99")
    result = pipeline.update(config)  # later updates run beside it, numbering past it
    assert result.ok or result.exhausted, result.message
    assert not marker.exists() and production(config) != 99


def test_rollback_to_a_tampered_version_is_refused_and_production_kept(workspace):
    tmp_path, config, _ = workspace
    with db(config) as conn:
        stages = dict(conn.execute("SELECT version, stage FROM models").fetchall())
    assert stages == {1: "archived", 2: "production"}
    (folder(config, 1) / "model.skops").write_bytes(b"not the trained model")
    refused(run(tmp_path, "rollback"), "failed verification")
    assert production(config) == 2


def test_a_catalog_path_escaping_the_workspace_is_refused(workspace):
    tmp_path, config, _ = workspace
    outside = tmp_path / "elsewhere"
    shutil.copytree(folder(config, production(config)), outside)
    with db(config) as conn:
        conn.execute("UPDATE models SET path = '../elsewhere' WHERE stage = 'production'")
    result = run(tmp_path, "-mode", "inference", "-file", str(inference_sample(tmp_path)))
    refused(result, "points outside the workspace")
