"""The per-update strategy end to end: retrain first, then incremental updates, then a
scheduled search; each recorded with its reason and lineage."""

from __future__ import annotations

from conveyor import pipeline
from conveyor.config import load_config
from conveyor.serve.bundle import load_model
from conveyor.store import Store
from tests.e2e_helpers import write_config, write_flights_slice


def test_incremental_updates_are_recorded_with_lineage(tmp_path):
    write_flights_slice(tmp_path)
    config = load_config(write_config(
        tmp_path, stream={"window": "1D", "initial_batches": 2},
        train={"window_batches": 3, "strategy": "auto", "retrain_every": 3,
               "families": {"sgd": {"grid": {"alpha": [0.0001]}, "variants": ["onehot"]}}}))
    results = [pipeline.update(config) for _ in range(5)]
    assert all(r.ok for r in results), [r.message for r in results]
    store = Store.open(f"sqlite:///{config.workspace / 'conveyor.db'}")
    try:
        models = store.frame("models").sort_values("version").to_dict("records")
        evaluations = store.frame("evaluations")
    finally:
        store.close()
    assert models[0]["strategy"] == "retrain" and "no production model" in models[0][
        "strategy_note"]
    incremental = [m for m in models if m["strategy"] == "incremental"]
    assert incremental, [m["strategy_note"] for m in models]
    for model in incremental:
        parent = next(m for m in models if m["version"] == model["parent_version"])
        # learned from exactly one more batch than its parent, and said how
        assert model["batch_ids"] == parent["batch_ids"] + [model["batch_ids"][-1]]
        assert model["batch_ids"][-1] not in parent["batch_ids"]
        assert "partial_fit" in model["strategy_note"]
        manifest = load_model(config.workspace / model["path"], model["sha256"]).manifest
        assert manifest["lineage"]["parent_version"] == parent["version"]
        # an incremental update runs no search: no evaluations for its batch
        assert model["batch_ids"][-1] not in set(evaluations["batch_id"])
    # never more than retrain_every - 1 incremental updates in a row
    chain = 0
    for model in models:
        chain = chain + 1 if model["strategy"] == "incremental" else 0
        assert chain <= 2
