"""Registry: stages, promotion and rollback in one transaction, retention, lineage."""

from __future__ import annotations

import pytest

from conveyor import pipeline
from conveyor.config import load_config
from conveyor.errors import ModelError
from conveyor.validate import registry
from conveyor.workspace import Workspace
from tests.e2e_helpers import write_config, write_flights_slice


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("registry")
    write_flights_slice(folder)
    config = load_config(write_config(folder, stream={"window": "1D", "initial_batches": 2},
                                      registry={"keep_versions": 2}))
    for _ in range(5):
        assert pipeline.update(config).ok
    return config


def test_exactly_one_production_and_every_switch_is_an_event(trained, open_store):
    store = open_store(trained)
    models = registry.list_models(store)
    assert (models["stage"] == "production").sum() == 1
    assert (models["stage"] == "staging").sum() <= 1
    switches = store.frame("events").query("kind == 'promotion'")
    assert switches["version"].iloc[-1] == store.production()["version"]


def test_promote_and_rollback_switch_production(trained, open_store):
    store = open_store(trained)
    current = store.production()["version"]
    other = int(registry.list_models(store).query("stage != 'production' and "
                                                  "stage != 'deleted'")["version"].iloc[0])
    pipeline.promote(trained, other, "test promotion")
    assert store.production()["version"] == other
    assert store.model(current)["stage"] == "archived"
    assert pipeline.rollback(trained, "test rollback") == current
    assert store.production()["version"] == current
    events = store.frame("events")
    assert events["kind"].tolist()[-2:] == ["promotion", "rollback"]
    assert events["message"].tolist()[-1] == "test rollback"
    # a second rollback goes further back: to what `current` had replaced when promoted
    history = [v for kind, v in store.production_history() if kind == "promotion"]
    before = history[history.index(current) - 1] if history.index(current) > 0 else None
    if before is None or store.model(before)["stage"] == "deleted":
        with pytest.raises(ModelError, match="nothing to roll back to"):
            pipeline.rollback(trained, "again")
    else:
        assert pipeline.rollback(trained, "again") == before


def test_rollback_stack_by_hand():
    assert registry.production_stack([("promotion", 1), ("promotion", 2), ("promotion", 3),
                                      ("rollback", 2), ("rollback", 1)]) == [1]
    # a promotion after a rollback starts a new top; rolling back returns below it
    assert registry.production_stack([("promotion", 1), ("promotion", 2), ("rollback", 1),
                                      ("promotion", 3)]) == [1, 3]


def test_promoting_an_unknown_or_current_version_is_refused(trained, open_store):
    with pytest.raises(ModelError, match="no model version 999"):
        pipeline.promote(trained, 999, "x")
    current = open_store(trained).production()["version"]
    with pytest.raises(Exception, match="already production"):
        pipeline.promote(trained, current, "x")


def test_retention_keeps_production_predecessor_and_the_newest(trained, open_store):
    store = open_store(trained)
    models = registry.list_models(store)
    deleted = models[models["stage"] == "deleted"]
    kept = models[models["stage"] != "deleted"]
    for row in deleted.to_dict("records"):
        assert not (trained.workspace / row["path"]).exists()
    for row in kept.to_dict("records"):
        assert (trained.workspace / row["path"] / "model.skops").is_file()
    assert store.production()["stage"] == "production"
    previous = registry.previous_production(store)
    if previous is not None:
        assert store.model(previous)["stage"] != "deleted"
    # the never-updated baseline stays loadable for prequential comparisons
    first = store.first_production()
    assert first is not None and first["stage"] != "deleted"
    # at most keep_versions (2) candidate/archived files beyond the protected ones
    alive = kept[kept["stage"].isin(["candidate", "archived"])]
    assert len(alive[~alive["version"].isin([previous, first["version"]])]) <= 2


def test_models_show_lists_the_raw_batches_with_sha256(trained, open_store):
    store = open_store(trained)
    version = store.production()["version"]
    detail = registry.describe(store, version)
    batches = store.frame("batches").set_index("id")
    assert [b["batch_id"] for b in detail["trained_on"]] == detail["batch_ids"]
    for entry in detail["trained_on"]:
        assert entry["sha256"] == batches.loc[entry["batch_id"], "sha256"]


def test_rollback_without_history_is_a_clear_error(tmp_path):
    write_flights_slice(tmp_path)
    config = load_config(write_config(tmp_path))
    assert pipeline.update(config).ok
    with pytest.raises(ModelError, match="nothing to roll back to"):
        pipeline.rollback(config, "x")
    assert Workspace(config.workspace).root.is_dir()
