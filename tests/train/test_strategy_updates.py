"""The per-update strategy end to end: a search first, then incremental updates or refits,
then a scheduled search; each recorded with its reason and lineage."""

from __future__ import annotations

import pytest

from conveyor import pipeline
from conveyor.config import load_config
from conveyor.serve.bundle import load_model
from tests.e2e_helpers import write_config, write_flights_slice


def _replay(config, updates, open_store):
    """Run ``updates`` updates, each of which must succeed; return the registry (oldest
    version first) and the evaluations."""
    results = [pipeline.update(config) for _ in range(updates)]
    assert all(r.ok for r in results), [r.message for r in results]
    store = open_store(config)
    return store.frame("models").sort_values("version"), store.frame("evaluations")


def test_incremental_updates_are_recorded_with_lineage(tmp_path, open_store):
    write_flights_slice(tmp_path)
    config = load_config(write_config(
        tmp_path, stream={"window": "1D", "initial_batches": 2},
        train={"window_batches": 3, "strategy": "auto", "retrain_every": 3,
               "families": {"sgd": {"grid": {"alpha": [0.0001]}, "variants": ["onehot"]}}}))
    models, evaluations = _replay(config, 5, open_store)
    models = models.to_dict("records")
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


def test_strategy_refit_refreshes_a_family_that_could_learn_incrementally(tmp_path, open_store):
    write_flights_slice(tmp_path)
    config = load_config(write_config(
        tmp_path, stream={"window": "1D", "initial_batches": 2}, drift={"enabled": False},
        train={"window_batches": 3, "strategy": "refit", "retrain_every": 10,
               "families": {"sgd": {"grid": {"alpha": [0.0001]}, "variants": ["onehot"]}}}))
    models, _ = _replay(config, 4, open_store)
    assert list(models["strategy"]) == ["retrain", "refit", "refit", "refit"]
    for _, model in models.iloc[1:].iterrows():
        assert "train.strategy is refit" in model["strategy_note"]
        assert f"validated by production v{model['version'] - 1}" in model["strategy_note"]
        assert model["stage"] in {"production", "archived"}


def test_a_family_that_cannot_learn_incrementally_is_refit_without_a_search(tmp_path, open_store):
    write_flights_slice(tmp_path)
    config = load_config(write_config(
        tmp_path, stream={"window": "1D", "initial_batches": 2},
        drift={"enabled": False},
        train={"window_batches": 3, "strategy": "auto", "retrain_every": 3, "families": {
            "tree": {"grid": {"max_depth": [4, 6, 8]}}}}))
    models, evaluations = _replay(config, 5, open_store)
    models = models.to_dict("records")
    by_version = {m["version"]: m for m in models}
    by_batch = {m["batch_ids"][-1]: m["strategy"] for m in models}
    # a search, two refits, then the scheduled search (retrain_every 3), then a refit
    assert by_batch == {2: "retrain", 3: "refit", 4: "refit", 5: "retrain", 6: "refit"}, \
        by_batch
    refits = [m for m in models if m["strategy"] == "refit"]
    assert refits, [m["strategy_note"] for m in models]
    for model in refits:
        parent = by_version[model["parent_version"]]
        # production's configuration, fitted on the current window, without a search
        assert (model["family"], model["params"]) == (parent["family"], parent["params"])
        assert model["batch_ids"][-1] not in parent["batch_ids"]
        assert len(model["batch_ids"]) == min(3, len(parent["batch_ids"]) + 1)
        assert "configuration fitted on" in model["strategy_note"]
        scored = evaluations[(evaluations["batch_id"] == model["batch_ids"][-1])
                             & (evaluations["family"] != "baseline")]
        assert len(scored) == 1  # the one configuration, validated on the new batch
        loaded = load_model(config.workspace / model["path"], model["sha256"])
        parent_loaded = load_model(config.workspace / parent["path"], parent["sha256"])
        assert loaded.model is not parent_loaded.model
        if parent_loaded.fallback is not None:  # kept from production, not searched again
            assert "kept from it" in model["strategy_note"]
            assert type(loaded.fallback[-1]) is type(parent_loaded.fallback[-1])
    searched = [m for m in models if m["strategy"] == "retrain"]
    for model in searched:
        scored = evaluations[(evaluations["batch_id"] == model["batch_ids"][-1])
                             & (evaluations["family"] != "baseline")]
        assert len(scored) == 3  # every candidate


def test_production_is_refreshed_with_each_batch_validated_by_its_own_score(tmp_path, open_store):
    # a growing window (10 batches), no scheduled search, and a margin no challenger
    # clears: each update refits production's configuration with the new batch. Production
    # is that configuration fitted on exactly the rows before the new batch, so it is the
    # refit's validation fit (one fit, not two), and the refresh replaces it: no other
    # model competes, so the margin does not apply
    from sklearn.base import clone
    from sklearn.metrics import mean_absolute_error

    from conveyor.train.data import BatchFrames
    from conveyor.workspace import Workspace

    write_flights_slice(tmp_path)
    config = load_config(write_config(
        tmp_path, stream={"window": "1D", "initial_batches": 2}, drift={"enabled": False},
        validate={"promotion_margin": 0.5},
        train={"window_batches": 10, "strategy": "auto", "retrain_every": 10,
               "families": {"tree": {"grid": {"max_depth": [4, 6]}}}}))
    results = [pipeline.update(config) for _ in range(4)]
    assert all(r.ok and r.promoted for r in results), [r.message for r in results]
    store = open_store(config)
    models = store.frame("models").set_index("version")
    evaluations = store.frame("evaluations")
    prequential = store.frame("prequential")
    events = store.frame("events")
    batches = {b["id"]: b for b in store.accepted_batches(10)}
    assert store.production()["version"] == 4
    assert list(models["strategy"]) == ["retrain", "refit", "refit", "refit"]
    workspace = Workspace.of(config)
    for version in (2, 3, 4):
        twin = models.loc[version - 1]
        assert models.loc[version, "parent_version"] == version - 1
        assert f"validated by production v{version - 1}" in models.loc[version,
                                                                         "strategy_note"]
        new_batch = models.loc[version, "batch_ids"][-1]
        assert twin["batch_ids"] == models.loc[version, "batch_ids"][:-1]
        # its recorded validation score is what fitting the configuration again on the
        # production model's rows and scoring the new batch gives
        production = load_model(config.workspace / twin["path"], twin["sha256"])
        rows = BatchFrames(config, workspace).window([batches[b] for b in twin["batch_ids"]])
        refitted = clone(production.model).fit(rows[production.features], rows["arr_delay"])
        scored = BatchFrames(config, workspace).window([batches[new_batch]])
        by_hand = mean_absolute_error(scored["arr_delay"],
                                      refitted.predict(scored[production.features]))
        recorded = evaluations[(evaluations["batch_id"] == new_batch)
                               & (evaluations["family"] == "tree")]
        assert recorded["score"].tolist() == [pytest.approx(by_hand, rel=1e-12)]
        # no validation fit was made: the one evaluation is the predecessor's own fit
        assert recorded["fit_seconds"].tolist() == [pytest.approx(twin["train_seconds"])]
        preq = prequential[(prequential["batch_id"] == new_batch)
                           & (prequential["role"] == "production")]
        assert preq["version"].tolist() == [version - 1]
        assert preq["score"].tolist() == [pytest.approx(by_hand, rel=1e-12)]
        promoted = events[(events["kind"] == "promotion") & (events["version"] == version)]
        assert len(promoted) == 1
        assert promoted["message"].iloc[0].startswith(f"refresh of production v{version - 1}")


def test_a_fixed_seed_gives_the_same_versions_and_predictions(tmp_path, open_store):
    # two workspaces, one config: the same candidates, the same chosen one (including the
    # cost-tolerant choice and halving, on two worker processes), the same predictions
    from tests.e2e_helpers import inference_sample, read_csv_text

    outputs, histories = [], []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        write_flights_slice(folder)
        sample = inference_sample(folder, rows=200)
        config = load_config(write_config(
            folder, stream={"window": "2D", "initial_batches": 1},
            compute={"n_jobs": 2},
            train={"window_batches": 3, "strategy": "auto", "retrain_every": 2,
                   "search": {"sampler": "random", "n_candidates": 5, "halving": True,
                              "cost_tolerance": 0.02},
                   "families": {"linear": {"grid": {"alpha": [0.1, 1.0, 10.0]}},
                                "tree": {"grid": {"max_depth": [4, 6, 8]}},
                                "hgb": {"grid": {"max_iter": [20, 40]}}}}))
        models, evaluations = _replay(config, 3, open_store)
        evaluations = evaluations.sort_values(["batch_id", "family", "score"])
        histories.append((models[["version", "family", "variant", "stage", "strategy"]]
                          .assign(params=models["params"].map(str))
                          .to_dict("records"),
                          evaluations[["batch_id", "family", "variant", "score", "chosen"]]
                          .assign(params=evaluations["params"].map(str)).to_dict("records")))
        outputs.append(read_csv_text(pipeline.inference(config, sample))["predict"].tolist())
    assert histories[0] == histories[1]
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("metric,loss", [("mae", "absolute_error"), ("rmse", "squared_error")])
def test_gradient_boosting_fits_the_loss_the_metric_judges(tmp_path, metric, loss, open_store):
    write_flights_slice(tmp_path)
    config = load_config(write_config(
        tmp_path, validate={"metric": metric},
        train={"window_batches": 3, "families": {"hgb": {"grid": {"max_iter": [20]}}}}))
    models, _ = _replay(config, 1, open_store)
    row = models.iloc[-1]
    loaded = load_model(config.workspace / row["path"], row["sha256"])
    assert loaded.model.named_steps["model"].loss == loss


def test_a_spent_budget_stops_the_whole_halving_search_and_says_so(tmp_path, open_store):
    """train.budget_seconds covers every rung: with it spent, one candidate per rung is
    scored, the update still trains that one, and its note counts the untried."""
    write_flights_slice(tmp_path)
    config = load_config(write_config(
        tmp_path, stream={"window": "8D", "initial_batches": 1},  # one batch, ~5,000 rows
        train={"window_batches": 3, "strategy": "retrain", "budget_seconds": 1e-9,
                         "search": {"halving": True},
                         "families": {"linear": {"grid": {"alpha": [0.1, 1.0, 10.0]},
                                                 "variants": ["onehot"]},
                                      "tree": {"grid": {"max_depth": [3, 6, 9]}}}}))
    models, evaluations = _replay(config, 1, open_store)
    evaluations = evaluations[evaluations["family"] != "baseline"]  # the mean, always scored
    assert len(evaluations) == evaluations["rung"].nunique()  # one candidate per rung
    assert evaluations["rung"].nunique() >= 2  # a cheap rung ran, then the full rows
    assert "budget left 5 untried" in models.iloc[0]["strategy_note"]


def test_a_search_whose_robust_candidates_stopped_early_keeps_productions_fallback(
        tmp_path, open_store):
    # halving drops the one robust candidate (a stump) at its cheap rung: with no fit of it
    # on the full rows, the second search keeps the first one's fallback and router
    # rather than fitting a fallback on the window
    import numpy as np
    import pandas as pd

    write_flights_slice(tmp_path)
    config = load_config(write_config(
        tmp_path, stream={"window": "2D", "initial_batches": 2}, drift={"enabled": False},
        train={"window_batches": 4, "strategy": "retrain",
               "search": {"halving": True},
               "families": {"linear": {"grid": {"alpha": [0.1, 1.0, 10.0, 100.0]}},
                            "tree": {"grid": {"max_depth": [1]}}}}))
    models, evaluations = _replay(config, 2, open_store)
    assert list(models["strategy"]) == ["retrain", "retrain"]
    second = evaluations[evaluations["batch_id"] == models["batch_ids"].iloc[1][-1]]
    full = second[(second["rung"].fillna(0) == 0) & (second["family"] != "baseline")]
    assert set(full["family"]) == {"linear"}  # the stump stopped at the rung
    assert "fallback and router kept from v1" in models["strategy_note"].iloc[1]
    first, kept = (load_model(config.workspace / path, sha) for path, sha in
                   zip(models["path"], models["sha256"], strict=True))
    assert kept.fallback is not None
    X = pd.read_csv(config.source.path).head(300)
    np.testing.assert_array_equal(kept.fallback.predict(X), first.fallback.predict(X))
    assert kept.router.get_params() == first.router.get_params()


def test_sample_every_trains_on_a_sample_spread_over_the_window(tmp_path, open_store):
    from conveyor.train.data import BatchFrames
    from conveyor.workspace import Workspace

    write_flights_slice(tmp_path)
    config = load_config(write_config(
        tmp_path, stream={"window": "1D", "initial_batches": 2}, drift={"enabled": False},
        train={"window_batches": 3, "strategy": "refit", "sample_every": 3,
               "families": {"linear": {"grid": {"alpha": [1.0]}}}}))
    models, evaluations = _replay(config, 3, open_store)
    store = open_store(config)
    batches = {b["id"]: b for b in store.accepted_batches(10)}
    prequential = store.frame("prequential")
    workspace = Workspace.of(config)
    for _, model in models.iterrows():
        rows = BatchFrames(config, workspace).window([batches[b] for b in model["batch_ids"]])
        assert model["train_rows"] == -(-len(rows) // 3)  # every 3rd, the newest included
    # prequential scores still read whole batches
    newest = models["batch_ids"].iloc[-1][-1]
    scored = prequential[(prequential["batch_id"] == newest)
                         & (prequential["role"] == "production")]
    whole = BatchFrames(config, workspace).window([batches[newest]])
    assert scored["rows"].tolist() == [len(whole)]
