"""Raw and model stores: one contract for a local folder, fsspec memory:// and file://,
and a whole update + inference with raw batches and models outside the workspace."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pandas as pd
import pytest

from conveyor import pipeline
from conveyor.collect.rawstore import read_batch
from conveyor.config import load_config
from conveyor.errors import ConveyorError
from conveyor.serve.bundle import load_model
from conveyor.storage import FsspecStorage, LocalStorage, Storage, locate, open_storage
from conveyor.workspace import Workspace
from tests.e2e_helpers import inference_sample, read_csv_text, write_config, write_flights_slice

KINDS = ["local", "file-url", "fsspec-file", "fsspec-memory"]


def make_store(kind: str, tmp_path: Path) -> Storage:
    folder = tmp_path / "elsewhere" / "store"
    return {"local": lambda: LocalStorage(folder),
            "file-url": lambda: open_storage(f"file://{folder}"),
            "fsspec-file": lambda: FsspecStorage(f"file://{folder}"),
            "fsspec-memory": lambda: FsspecStorage(f"memory://t-{uuid.uuid4().hex}/store"),
            }[kind]()


@pytest.mark.parametrize("kind", KINDS)
def test_every_store_keeps_files_and_folders_under_keys(kind, tmp_path):
    store = make_store(kind, tmp_path)
    assert not store.exists("batch-000001-0a1b2c3d.parquet")
    store.put_bytes("batch-000001-0a1b2c3d.parquet", b"first")
    store.put_bytes("batch-000001-0a1b2c3d.parquet", b"second")  # replaced whole
    assert store.get_bytes("batch-000001-0a1b2c3d.parquet") == b"second"
    with pytest.raises(FileNotFoundError):
        store.get_bytes("batch-000002-ffffffff.parquet")

    store.put_dir("v000001", {"model.skops": b"\x00model", "manifest.json": b"{}"})
    assert store.exists("v000001") and store.get_bytes("v000001/model.skops") == b"\x00model"
    with pytest.raises(ConveyorError, match="already exists"):
        store.put_dir("v000001", {"model.skops": b"other"})
    assert store.get_bytes("v000001/model.skops") == b"\x00model"

    # a location read back through locate() reaches the same bytes, file and folder alike
    found, key = locate(store.location("batch-000001-0a1b2c3d.parquet"))
    assert key == "batch-000001-0a1b2c3d.parquet" and found.get_bytes(key) == b"second"
    found, key = locate(store.location("v000001"))
    assert key == "v000001" and found.get_bytes("v000001/manifest.json") == b"{}"

    store.delete("v000001")
    store.delete("batch-000001-0a1b2c3d.parquet")
    store.delete("never-written")
    assert not store.exists("v000001") and not store.exists("batch-000001-0a1b2c3d.parquet")


def test_urls_choose_the_store_and_a_path_stays_local(tmp_path):
    assert isinstance(open_storage(tmp_path), LocalStorage)
    local = open_storage(f"file://{tmp_path}/raw")
    assert isinstance(local, LocalStorage) and local.location("a") == f"{tmp_path}/raw/a"
    memory = open_storage("memory://bucket/raw")
    assert isinstance(memory, FsspecStorage)
    assert memory.location("a") == "memory://bucket/raw/a"
    with pytest.raises(ConveyorError, match="cannot open storage 'nosuchproto://x'"):
        open_storage("nosuchproto://x")


def test_a_local_write_that_fails_before_its_rename_leaves_the_old_bytes(tmp_path, monkeypatch):
    store = LocalStorage(tmp_path / "raw")
    store.put_bytes("a.parquet", b"old")

    def crash(src: str, dst: str) -> None:
        raise OSError("disk pulled out")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk pulled out"):
        store.put_bytes("a.parquet", b"new")
    monkeypatch.undo()
    assert store.get_bytes("a.parquet") == b"old"
    assert os.listdir(tmp_path / "raw") == ["a.parquet"]  # no temp file left


def test_the_writer_lock_sweeps_temp_files_in_stores_outside_the_workspace(tmp_path):
    raw, models = tmp_path / "shared" / "raw", tmp_path / "shared" / "models"
    workspace = Workspace(tmp_path / "ws", raw_url=str(raw), models_url=f"file://{models}")
    workspace.create()
    left = raw / ".batch-000003-0123abcd.parquet.k2j_x9q0.tmp"
    half = models / ".v000004.zz9_ab12.tmp"
    half.mkdir(parents=True)
    (half / "model.skops").write_bytes(b"half")
    raw.mkdir(parents=True)
    left.write_bytes(b"half")
    kept = raw / "batch-000001-0123abcd.parquet"
    kept.write_bytes(b"x")
    with workspace.lock(1):
        pass
    assert not left.exists() and not half.exists() and kept.exists()


def test_the_catalog_records_workspace_files_relative_and_others_in_full(tmp_path):
    workspace = Workspace(tmp_path / "ws")
    inside = str(tmp_path / "ws" / "raw" / "batch-000001-0a1b2c3d.parquet")
    assert workspace.catalog_path(inside) == "raw/batch-000001-0a1b2c3d.parquet"
    assert workspace.resolve("raw/batch-000001-0a1b2c3d.parquet") == Path(inside)
    outside = str(tmp_path / "shared" / "raw" / "b.parquet")
    assert workspace.catalog_path(outside) == outside
    assert workspace.resolve(outside) == Path(outside)
    url = "s3://bucket/conveyor/models/v000001"
    assert workspace.catalog_path(url) == url and workspace.resolve(url) == url


def test_store_urls_in_the_config_are_folders_relative_to_it_or_urls(tmp_path):
    write_flights_slice(tmp_path)
    config = load_config(write_config(tmp_path, store={"raw_url": "../shared/raw",
                                                       "models_url": "memory://m/models"}))
    assert config.store.raw_url == str((tmp_path / ".." / "shared" / "raw").resolve())
    assert config.store.models_url == "memory://m/models"
    workspace = Workspace.of(config)
    assert isinstance(workspace.raw_store, LocalStorage)
    assert isinstance(workspace.models_store, FsspecStorage)


@pytest.mark.parametrize("where", ["file", "memory"])
def test_update_and_inference_with_raw_batches_and_models_outside_the_workspace(
        where, tmp_path, open_store):
    write_flights_slice(tmp_path)
    if where == "file":
        raw_url, models_url = (f"file://{tmp_path / 'bucket' / 'raw'}",
                               f"file://{tmp_path / 'bucket' / 'models'}")
    else:
        bucket = f"memory://e2e-{uuid.uuid4().hex}"
        raw_url, models_url = f"{bucket}/raw", f"{bucket}/models"
    path = write_config(tmp_path, store={"raw_url": raw_url, "models_url": models_url},
                        registry={"keep_versions": 0})
    config = load_config(path)
    results = [pipeline.update(config) for _ in range(3)]
    assert [r.ok for r in results] == [True, True, True], [r.message for r in results]

    # nothing went to the workspace's own folders; the catalog points into the stores
    assert list((config.workspace / "raw").iterdir()) == []
    assert list((config.workspace / "models").iterdir()) == []
    store = open_store(config)
    workspace = Workspace.of(config)
    prefix = raw_url.removeprefix("file://")
    for batch in store.frame("batches").to_dict("records"):
        assert batch["path"].startswith(prefix)
        stored, key = locate(workspace.resolve(batch["path"]))
        assert hashlib.sha256(stored.get_bytes(key)).hexdigest() == batch["sha256"]
        assert len(read_batch(workspace.resolve(batch["path"]), batch["sha256"])) == batch["rows"]

    # retention deleted old versions' files from the model store, kept the live ones
    models = store.frame("models")
    assert "deleted" in set(models["stage"])
    for row in models.to_dict("records"):
        stored, key = locate(workspace.resolve(row["path"]))
        assert stored.exists(key) == (row["stage"] != "deleted"), row
    production = store.production()
    assert production is not None
    loaded = load_model(workspace.resolve(production["path"]), production["sha256"])
    assert loaded.version == production["version"]

    # a changed model object is refused on load, wherever it lives
    stored, key = locate(workspace.resolve(production["path"]))
    data = bytearray(stored.get_bytes(f"{key}/model.skops"))
    good = bytes(data)
    data[-10] ^= 0xFF
    stored.put_bytes(f"{key}/model.skops", bytes(data))
    with pytest.raises(ConveyorError, match="failed verification"):
        pipeline.inference(config, inference_sample(tmp_path, rows=50))
    stored.put_bytes(f"{key}/model.skops", good)

    out = pipeline.inference(config, inference_sample(tmp_path, rows=200))
    predicted = read_csv_text(out)
    assert len(predicted) == 200
    assert pd.to_numeric(predicted["predict"]).notna().all()

    # the API and the summary read the served version from the model store too
    from fastapi.testclient import TestClient

    from conveyor.serve.api import create_app

    with TestClient(create_app(config)) as client:
        health = client.get("/health").json()
        record = read_csv_text(inference_sample(tmp_path, rows=1)).iloc[0].to_dict()
        answer = client.post("/predict", json={"records": [record]})
    assert health["model_version"] == production["version"]
    assert answer.status_code == 200, answer.text
    page = pipeline.summary(config).read_text(encoding="utf-8")
    interpretation = page[page.index('<section id="interpretation">'):]
    assert f"v{production['version']}: " in interpretation
    assert "No interpretation stored" not in interpretation

