"""The raw store: atomic batch files, their sha256, and refusing an identical batch twice."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conveyor import pipeline
from conveyor.collect.rawstore import digest, encode, read_batch, write_batch
from conveyor.config import load_config
from conveyor.errors import ConveyorError, SourceError
from conveyor.storage import LocalStorage
from conveyor.store import Store


def batch() -> pd.DataFrame:
    return pd.DataFrame({"t": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True),
                         "x": [1.5, None], "c": ["a", "é"]})


def test_encoding_is_deterministic_and_content_addressed():
    assert encode(batch()) == encode(batch())  # two frames built apart, same bytes
    assert digest(encode(batch())) == hashlib.sha256(encode(batch())).hexdigest()
    reordered = batch().iloc[::-1].reset_index(drop=True)
    assert digest(encode(reordered)) != digest(encode(batch()))


def test_write_batch_names_the_file_and_its_sha256_is_the_files(tmp_path):
    location, sha = write_batch(LocalStorage(tmp_path / "raw"), 12, encode(batch()))
    path = Path(location)
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.name == f"batch-000012-{sha[:8]}.parquet"
    pd.testing.assert_frame_equal(read_batch(path, sha), batch())
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_a_crash_before_the_rename_leaves_nothing(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    first, sha = write_batch(LocalStorage(raw), 1, encode(batch()))
    first = Path(first)

    def crash(src, dst):
        raise OSError("disk pulled out")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk pulled out"):
        write_batch(LocalStorage(raw), 2, encode(batch().head(1)))
    monkeypatch.undo()
    assert [p.name for p in raw.iterdir()] == [first.name]  # no partial or temp file
    assert hashlib.sha256(first.read_bytes()).hexdigest() == sha  # earlier batch untouched


def test_read_batch_refuses_a_changed_or_missing_file(tmp_path):
    location, sha = write_batch(LocalStorage(tmp_path), 0, encode(batch()))
    path = Path(location)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ConveyorError, match="does not match its catalogued sha256"):
        read_batch(path, sha)
    with pytest.raises(ConveyorError, match="missing from the raw store"):
        read_batch(tmp_path / "gone.parquet")


def test_an_identical_batch_is_not_ingested_twice(tmp_path):
    # 40 rows at one instant; rows 20..39 repeat rows 0..19, so row batches 0 and 1 are equal
    half = pd.DataFrame({"t": "2024-01-01T00:00:00Z", "x": range(20), "y": range(20)})
    pd.concat([half, half]).to_csv(tmp_path / "s.csv", index=False)
    config_path = tmp_path / "conveyor.yaml"
    config_path.write_text(yaml.safe_dump({
        "source": {"kind": "csv", "path": "s.csv", "time_column": "t"},
        "target": {"column": "y"}, "stream": {"rows": 20, "initial_batches": 2},
        "quality": {"min_rows": 5}}), encoding="utf-8")
    config = load_config(config_path)
    with pytest.raises(SourceError, match=r"window 1 is identical to batch 1 \(same sha256\)"):
        pipeline.update(config)
    store = Store.open(f"sqlite:///{config.workspace / 'conveyor.db'}")
    batches = store.frame("batches")
    assert batches["window_index"].tolist() == [0] and batches["rows"].tolist() == [20]
    assert len(list((config.workspace / "raw").iterdir())) == 1
