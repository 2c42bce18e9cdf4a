"""The REST service, started for real with uvicorn on 127.0.0.1 and called over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from conveyor import pipeline
from conveyor.config import load_config
from tests.e2e_helpers import inference_sample, write_config, write_flights_slice
from tests.waiting import wait_for

TOKEN = "test-token-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def replica_config(config: Path, name: str) -> tuple[Path, int]:
    """A copy of ``config`` beside it, serving on a free port: one more API replica."""
    spec = yaml.safe_load(config.read_text(encoding="utf-8"))
    port = free_port()
    path = config.with_name(f"replica-{name}.yaml")
    path.write_text(yaml.safe_dump({**spec, "serve": {**spec.get("serve", {}), "port": port}}),
                    encoding="utf-8")
    return path, port


def start_server(path, folder, port, token=None):
    """Start `conveyor serve` in a subprocess; return it once it answers /health."""
    env = {k: v for k, v in os.environ.items() if k != "CONVEYOR_ADMIN_TOKEN"}
    if token:
        env["CONVEYOR_ADMIN_TOKEN"] = token
    process = subprocess.Popen([sys.executable, "-m", "conveyor", "--config", str(path), "serve"],
                               cwd=folder, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            httpx.get(f"{url}/health", timeout=1)
        except httpx.TransportError:
            return False
        return True

    if wait_for(answers, timeout=30, interval=0.1):
        return process, url
    process.kill()
    raise RuntimeError(process.stderr.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    write_flights_slice(folder)
    port = free_port()
    path = write_config(folder, stream={"window": "1D", "initial_batches": 2},
                        serve={"port": port, "reload_seconds": 0.2, "log_seconds": 0.2,
                               "max_body_bytes": 200_000, "challenger_share": 0.5})
    config = load_config(path)
    for _ in range(3):
        assert pipeline.update(config).ok
    process, url = start_server(path, folder, port, TOKEN)
    yield url, config, folder
    process.terminate()
    process.wait(timeout=20)


def records(folder, n=3):
    frame = pd.read_csv(inference_sample(folder, rows=n))
    return json.loads(frame.to_json(orient="records"))


def test_health_and_openapi_docs(server, open_store):
    url, config, _ = server
    health = httpx.get(f"{url}/health").json()
    store = open_store(config)
    assert health["status"] == "ready"
    assert health["model_version"] == store.production()["version"]
    assert httpx.get(f"{url}/docs").status_code == 200
    assert "/predict" in httpx.get(f"{url}/openapi.json").json()["paths"]


def test_predict_returns_one_finite_prediction_per_record_with_its_version(server, open_store):
    url, config, folder = server
    answer = httpx.post(f"{url}/predict", json={"records": records(folder, 5)}).json()
    assert len(answer["predictions"]) == 5
    assert all(isinstance(p, float) for p in answer["predictions"])
    store = open_store(config)
    assert answer["model_version"] in {store.production()["version"],
                                       (store.frame("models").query("stage == 'staging'")
                                        ["version"].tolist() or [None])[0]}


def test_bad_rows_get_422_naming_the_field(server):
    url, _, folder = server
    bad = records(folder, 2)
    bad[1]["dep_delay"] = "late"
    del bad[0]["carrier"]
    response = httpx.post(f"{url}/predict", json={"records": bad})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", "records", 0]
    assert "carrier" in detail[0]["msg"]
    assert detail[1]["loc"] == ["body", "records", 1, "dep_delay"]
    assert httpx.post(f"{url}/predict", json={"rows": []}).status_code == 422
    assert httpx.post(f"{url}/predict", content=b"{not json",
                      headers={"content-type": "application/json"}).status_code == 422


def test_oversized_body_is_refused(server):
    url, _, folder = server
    many = records(folder, 1) * 2000
    assert httpx.post(f"{url}/predict", json={"records": many}).status_code == 413


def test_metrics_in_prometheus_format(server):
    url, _, folder = server
    httpx.post(f"{url}/predict", json={"records": records(folder)})
    text = httpx.get(f"{url}/metrics").text
    assert "# TYPE conveyor_requests_total counter" in text
    assert "conveyor_request_seconds_bucket" in text
    assert 'variant="production"' in text or 'variant="staging"' in text


def test_models_lists_the_registry(server, open_store):
    url, config, _ = server
    listed = httpx.get(f"{url}/models").json()
    store = open_store(config)
    assert [m["version"] for m in listed] == sorted(store.frame("models")["version"],
                                                    reverse=True)


def test_sticky_challenger_split(server):
    url, _, folder = server
    body = records(folder, 1)
    first = {httpx.post(f"{url}/predict", json={"records": body, "key": "user-42"}).json()[
        "variant"] for _ in range(5)}
    assert len(first) == 1  # the same key always gets the same model


def batched(url):
    """Requests and calls counted by the server's batch histogram so far."""
    text = httpx.get(f"{url}/metrics").text
    names = ("conveyor_batch_requests_sum", "conveyor_batch_requests_count")
    found = dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith(names))
    return float(found.get("conveyor_batch_requests_sum", 0)), \
        float(found.get("conveyor_batch_requests_count", 0))


def test_concurrent_requests_are_predicted_together_and_answered_each_alone(server):
    """Requests in flight are gathered into one call; each gets its own rows' answers, the
    same as when sent alone, and a record the model cannot take fails only its request."""
    url, _, folder = server
    rows = records(folder, 24)
    bodies = [{"records": [row], "key": f"user-{i}"} for i, row in enumerate(rows)]
    alone = [httpx.post(f"{url}/predict", json=body).json() for body in bodies]
    # Python reads "1_000" as a number, so the request's first check lets it through;
    # the conversion for the model does not (pandas reads numbers as CSV files write them)
    broken = {"records": [{**rows[5], "dep_delay": "1_000"}], "key": "user-5"}
    requests_before, calls_before = batched(url)

    async def together():
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            return await asyncio.gather(*(client.post("/predict", json=body)
                                          for body in [*bodies, broken]))

    answers = asyncio.run(together())
    assert [a.status_code for a in answers] == [200] * len(bodies) + [422]
    assert "'dep_delay' must be numeric; row 1 holds '1_000'" in answers[-1].json()[
        "detail"][0]["msg"]  # row 1 of its own request, not of the batch
    for answer, single in zip(answers, alone, strict=False):
        got = answer.json()
        assert (got["variant"], got["model_version"], got["routes"]) == (
            single["variant"], single["model_version"], single["routes"])
        assert got["predictions"] == pytest.approx(single["predictions"], rel=1e-9)
    requests_after, calls_after = batched(url)
    # the 25 requests took fewer calls than requests: some were predicted together
    assert requests_after - requests_before >= len(bodies)
    assert calls_after - calls_before < requests_after - requests_before


def test_admin_needs_the_token_and_promotion_is_hot_reloaded(server, open_store):
    url, config, folder = server
    assert httpx.post(f"{url}/rollback").status_code == 401
    wrong = {"authorization": "Bearer nope"}
    assert httpx.post(f"{url}/rollback", headers=wrong).status_code == 401
    store = open_store(config)
    current = store.production()["version"]
    other = int(store.frame("models").query("stage in ['archived', 'candidate']")
                ["version"].iloc[0])
    auth = {"authorization": f"Bearer {TOKEN}"}
    response = httpx.post(f"{url}/promote/{other}", headers=auth)
    assert response.status_code == 200, response.text
    assert httpx.get(f"{url}/health").json()["model_version"] == other
    # a promotion made outside the API (by `conveyor promote`) is picked up too
    pipeline.promote(config, current, "back")
    assert wait_for(lambda: httpx.get(f"{url}/health").json()["model_version"] == current)
    answer = httpx.post(f"{url}/predict", json={"records": records(folder), "key": "k"}).json()
    assert answer["model_version"] in {current, other} or answer["variant"] == "staging"


def test_request_figures_reach_the_store(server, open_store):
    url, config, folder = server
    for _ in range(3):
        httpx.post(f"{url}/predict", json={"records": records(folder)})
    store = open_store(config)

    def logged() -> pd.DataFrame | None:  # a request after the log period writes them
        httpx.post(f"{url}/predict", json={"records": records(folder)})
        api = store.frame("inference_log").query("kind == 'api'")
        return api if len(api) else None

    api = wait_for(logged, timeout=10, interval=0.25)
    assert api is not None and api["rows"].sum() >= 3 and (api["p99_ms"] > 0).all()


def test_not_ready_before_a_model_and_admin_disabled_without_a_token(tmp_path):
    write_flights_slice(tmp_path)
    port = free_port()
    path = write_config(tmp_path, serve={"port": port, "reload_seconds": 0.2})
    process, url = start_server(path, tmp_path, port)
    try:
        assert httpx.get(f"{url}/health").status_code == 503  # no model yet
        assert httpx.post(f"{url}/predict", json={"records": [{"a": 1}]}).status_code == 503
        response = httpx.post(f"{url}/rollback", headers={"authorization": "Bearer x"})
        assert response.status_code == 403 and "disabled" in response.json()["detail"]
        assert pipeline.update(load_config(path)).ok  # the first model is picked up live
        assert wait_for(lambda: httpx.get(f"{url}/health").json()["status"] == "ready")
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_the_dashboard_is_served_live_and_follows_the_store(server, open_store):
    url, config, _ = server
    reports = config.workspace / "reports"
    written = sorted(reports.glob("summary-*")) if reports.exists() else []
    versions = int(open_store(config).count("models"))
    first = httpx.get(f"{url}/dashboard", timeout=120)
    assert first.status_code == 200 and "<title>conveyor summary</title>" in first.text
    assert "Production model quality (prequential)" in first.text
    assert f"model versions<b>{versions}</b>" in first.text
    again = httpx.get(f"{url}/dashboard", timeout=120)
    assert again.text == first.text  # nothing changed in the store: the same page
    assert (sorted(reports.glob("summary-*")) if reports.exists() else []) == written
    assert pipeline.update(config).ok  # a new batch and version: a new page
    newer = httpx.get(f"{url}/dashboard", timeout=120)
    assert newer.status_code == 200 and f"model versions<b>{versions + 1}</b>" in newer.text
