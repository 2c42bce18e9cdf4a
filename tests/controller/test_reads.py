"""An update reads and cleans each batch once: the new batch is cleaned at ingestion and
handed on, the window's older batches are read from the raw store once each."""

from __future__ import annotations

from collections import Counter

from conveyor import pipeline
from conveyor.config import load_config
from conveyor.train import data
from tests.e2e_helpers import write_config, write_flights_slice


def test_each_batch_is_read_and_cleaned_once_per_update(tmp_path, monkeypatch, open_store):
    write_flights_slice(tmp_path)
    config = load_config(write_config(
        tmp_path, stream={"window": "1D", "initial_batches": 2},
        train={"window_batches": 4, "strategy": "refit",
               "families": {"linear": {"grid": {"alpha": [1.0]}}}}))
    assert pipeline.update(config).ok and pipeline.update(config).ok
    reads: Counter[str] = Counter()
    cleanings: list[int] = []
    read_batch, apply_plan = data.rawstore.read_batch, data.apply_plan

    def counted_read(location, sha256=None):
        reads[str(location)] += 1
        return read_batch(location, sha256)

    def counted_clean(frame, plan, target):
        cleanings.append(len(frame))
        return apply_plan(frame, plan, target)

    monkeypatch.setattr(data.rawstore, "read_batch", counted_read)
    monkeypatch.setattr(data, "apply_plan", counted_clean)
    result = pipeline.update(config)  # scores production on the new batch, then refits
    assert result.ok, result.message
    batches = open_store(config).frame("batches").sort_values("id")
    newest = batches.iloc[-1]
    assert str(newest["path"]) not in " ".join(reads), "the new batch was read back"
    assert len(reads) == len(batches) - 1  # every older batch of the window, once
    assert set(reads.values()) == {1}
    assert len(cleanings) == len(reads)
