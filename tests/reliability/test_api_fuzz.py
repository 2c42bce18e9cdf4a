"""The REST API against malformed and generated requests, served for real by uvicorn.

Bodies are size-limited (413, also when sent chunked without a length) and checked
against the served model's columns (422 naming the row and the field); admin
endpoints compare the token in constant time; and schemathesis, generating requests
from the app's own OpenAPI schema (records with the model's columns, admin endpoints
with the token), gets no 5xx over at least 1,000 requests counted on both sides.

    python -m pytest tests/reliability/test_api_fuzz.py -q -s   # prints the figures

Knobs: ``CONVEYOR_FUZZ_EXAMPLES`` (schemathesis examples per operation and round,
default 400), ``CONVEYOR_FUZZ_SEED`` (default 7), ``CONVEYOR_FUZZ_REQUESTS`` (least
number of requests, default 1,000; rounds with the next seeds run until reached).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest

from conveyor.config import load_config
from conveyor.serve import api
from tests.reliability.apikit import Server, enriched_workspace, request_records
from tests.serve.test_api import free_port
from tests.waiting import wait_for

TOKEN = "fuzz-admin-token-5d1c"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    path = enriched_workspace(folder, serve={"port": port, "max_body_bytes": 1_000_000})
    server = Server(path, port, folder / "logs", TOKEN)
    yield server, path
    server.stop()


def post(url: str, body: object) -> httpx.Response:
    return httpx.post(f"{url}/predict", json=body, timeout=30)


def test_a_valid_request_gets_finite_routed_predictions(served):
    server, _ = served
    records = request_records(3)
    records[2]["dep_delay"] = 1e308  # valid JSON, far beyond training: flagged, and finite
    response = post(server.url, {"records": records})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert np.isfinite(answer["predictions"]).all() and len(answer["predictions"]) == 3
    assert answer["route_reasons"][2] == "out_of_range:dep_delay"
    # each record says which model of the answering version gave its prediction
    assert set(answer["routes"]) <= {"champion", "fallback"} and len(answer["routes"]) == 3
    assert isinstance(answer["model_version"], int)


@pytest.mark.parametrize(("column", "value", "says"), [
    ("dep_delay", "late", "must be a number"),
    ("dep_delay", 10**400, "must be a finite number"),
    ("dep_delay", [1, 2], "must be a number"),
    ("carrier", {"code": "UA"}, "must be a string"),
    ("time_hour", "5301-01-14T12:49:57Z", "must be a time between 1678 and 2261"),
    ("time_hour", "1001-01-01T00:00:00+01:00", "must be a time between 1678 and 2261"),
    ("time_hour", True, "must be a time"),
    ("time_hour", None, "is needed to join the enrichment tables"),
])
def test_a_bad_value_gets_422_naming_row_and_field(served, column, value, says):
    server, _ = served
    records = request_records(2)
    records[1][column] = value
    response = post(server.url, {"records": records})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", "records", 1, column]
    assert says in detail[0]["msg"]


def test_malformed_bodies_get_422(served):
    server, _ = served
    records = request_records(1)
    unparseable = dict(records[0], time_hour="the day after tomorrow")
    response = post(server.url, {"records": [unparseable]})
    assert response.status_code == 422 and "time_hour" in response.text
    missing = {k: v for k, v in records[0].items() if k != "carrier"}
    response = post(server.url, {"records": [missing]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "records", 0]
    assert "carrier" in response.json()["detail"][0]["msg"]
    nan = json.dumps({"records": records}).replace('"dep_delay": ', '"dep_delay": NaN, "x": ')
    response = httpx.post(f"{server.url}/predict", content=nan,
                          headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "records", 0, "dep_delay"]
    for body in [{"records": []}, {"records": "x"}, {"rows": records}, [records]]:
        response = post(server.url, body)
        assert response.status_code == 422 and response.json()["detail"][0]["loc"][0] == "body"
    for raw in [b"{not json", b"\x00\xff", b""]:
        response = httpx.post(f"{server.url}/predict", content=raw,
                              headers={"content-type": "application/json"})
        assert response.status_code == 422


def raw_post(url: str, body: object) -> httpx.Response:
    """POST ``body`` as JSON with non-ASCII escaped, as lone surrogates must be sent."""
    return httpx.post(f"{url}/predict", content=json.dumps(body).encode("ascii"),
                      headers={"content-type": "application/json"}, timeout=30)


@pytest.mark.parametrize("lone", ["\ud800", "\udfff", "ok\udc80ok"])
def test_lone_surrogates_in_any_key_or_text_get_422_naming_the_field(served, lone):
    server, _ = served
    record = request_records(1)[0]
    bodies = {f"value of {k}": {"records": [dict(record, **{k: lone})]}
              for k, v in record.items() if isinstance(v, str) or v is None}
    bodies |= {f"key {k}": {"records": [{(k + lone if c == k else c): v
                                         for c, v in record.items()}]} for k in record}
    bodies["extra key"] = {"records": [dict(record, **{lone: 1})]}
    bodies["sticky key"] = {"records": [record], "key": lone}
    for where, body in bodies.items():
        response = raw_post(server.url, body)
        assert response.status_code == 422, (where, response.text)
        message = response.json()["detail"][0]["msg"]
        assert "not valid Unicode" in message, (where, message)
        if where.startswith(("value of", "key ")):
            assert f"column '{where.split()[-1]}" in message, (where, message)
    assert raw_post(server.url, {"records": [record]}).status_code == 200


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def test_a_small_body_of_many_values_is_answered_fast_and_small(served):
    """330,000 integers in place of records: one problem named, in well under a second,
    an answer of a few hundred bytes, and no memory kept across 20 such requests."""
    server, path = served
    body = ("{\"records\": [" + ",".join(["1"] * 330_000) + "]}").encode()
    assert len(body) < load_config(path).serve.max_body_bytes
    headers = {"content-type": "application/json"}
    httpx.post(f"{server.url}/predict", content=body, headers=headers, timeout=30)  # warm up
    before = rss_mb(server.process.pid)
    slowest = 0.0
    for _ in range(20):
        began = time.perf_counter()
        response = httpx.post(f"{server.url}/predict", content=body, headers=headers,
                              timeout=30)
        slowest = max(slowest, time.perf_counter() - began)
        assert response.status_code == 422
        assert len(response.content) < 10_000, len(response.content)
        assert "record 0 must be an object" in response.json()["detail"][0]["msg"]
    grown = rss_mb(server.process.pid) - before
    print(f"\n330,000 integers: slowest answer {slowest * 1000:.0f} ms, "
          f"{len(response.content)} bytes; server RSS +{grown:.1f} MB over 20 requests")
    assert slowest < 1.0 and grown < 30
    # many records, each with problems: at most MAX_PROBLEMS named, the rest counted
    bad = [{"dep_delay": "x", "distance": "y"}] * 900
    response = post(server.url, {"records": bad})
    assert response.status_code == 422 and len(response.content) < 10_000
    assert len(response.json()["detail"]) <= api.MAX_PROBLEMS + 1


def test_bodies_over_the_limit_get_413_with_or_without_a_length(served):
    server, path = served
    limit = load_config(path).serve.max_body_bytes
    records = request_records(1)
    big = json.dumps({"records": records * (limit // len(json.dumps(records)) + 10)}).encode()
    assert len(big) > limit
    response = httpx.post(f"{server.url}/predict", content=big,
                          headers={"content-type": "application/json"})
    assert response.status_code == 413 and "serve.max_body_bytes" in response.text

    def chunks(data: bytes):  # no Content-Length: the server must count as it reads
        for start in range(0, len(data), 16_384):
            yield data[start:start + 16_384]

    response = httpx.post(f"{server.url}/predict", content=chunks(big),
                          headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == 413 and "serve.max_body_bytes" in response.text
    small = json.dumps({"records": records * 5}).encode()
    response = httpx.post(f"{server.url}/predict", content=chunks(small),
                          headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == 200 and len(response.json()["predictions"]) == 5
    too_many = load_config(path).serve.max_records + 1
    response = post(server.url, {"records": [{"dep_delay": 1}] * too_many})
    assert response.status_code == 413 and "serve.max_records" in response.text


def test_admin_needs_the_token_compared_in_constant_time(served, monkeypatch):
    """Every admin request goes through hmac.compare_digest on two sha256 digests, so the
    time taken says nothing about how much of a guess was right, nor the token's length."""
    server, path = served
    for headers in [{}, {"authorization": "Bearer"}, {"authorization": f"Basic {TOKEN}"},
                    {"authorization": f"Bearer {TOKEN[:-1]}"},
                    {"authorization": f"Bearer {TOKEN}x"}]:
        response = httpx.post(f"{server.url}/rollback", headers=headers)
        assert response.status_code == 401, (headers, response.text)
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    monkeypatch.setenv(api.TOKEN_ENV, TOKEN)
    app = api.create_app(load_config(path))

    async def promote(guess: str) -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            response = await client.post("/promote/999999",
                                         headers={"authorization": f"Bearer {guess}"})
        return response.status_code

    for guess in ["x", TOKEN[:-1] + "?", "?" + TOKEN[1:], TOKEN * 50]:
        assert asyncio.run(promote(guess)) == 401
    assert asyncio.run(promote(TOKEN)) == 409  # through the check: no such version
    assert len(calls) == 5
    assert all(len(a) == len(b) == 32 for a, b in calls)  # digests, whatever the guess


def run_schemathesis(url: str, seed: int, examples: int, report: Path) -> tuple[int, str]:
    """Run the schemathesis CLI against the live server; return its exit code and output."""
    command = [sys.executable, "-m", "schemathesis.cli", "--no-color", "run",
               f"{url}/openapi.json", "--checks",
               "not_a_server_error,status_code_conformance,response_schema_conformance",
               "--max-examples", str(examples), "--seed", str(seed),
               "--header", f"Authorization: Bearer {TOKEN}", "--request-timeout", "60",
               "--report", "ndjson", "--report-ndjson-path", str(report)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


def interactions(report: Path) -> list[dict]:
    """Every request schemathesis sent and the status it got, from its NDJSON report."""
    sent = []
    for line in report.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        for interaction in finished["recorder"].get("interactions", {}).values():
            request, response = interaction["request"], interaction["response"]
            body = request.get("body") or {}
            sent.append({"method": request["method"], "uri": request["uri"],
                         "status": response["status_code"] if response else None,
                         "body": base64.b64decode(body["$base64"])[:300]
                         if "$base64" in body else b""})
    return sent


def server_errors(server: Server) -> str:
    """The server's last traceback, to show with a failure."""
    text = server.stderr.read_text(errors="replace")
    return text[text.rfind("Traceback"):][-4000:] if "Traceback" in text else ""


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_in_1000_requests(served, tmp_path):
    server, _ = served
    examples = int(os.environ.get("CONVEYOR_FUZZ_EXAMPLES", "400"))
    seed = int(os.environ.get("CONVEYOR_FUZZ_SEED", "7"))
    least = int(os.environ.get("CONVEYOR_FUZZ_REQUESTS", "1000"))
    before = len(server.access_log())
    sent: list[dict] = []
    outputs = []
    began = time.monotonic()
    for round_ in range(4):  # rounds with the next seeds until enough requests were sent
        report = tmp_path / f"round-{round_}.ndjson"
        code, output = run_schemathesis(server.url, seed + round_, examples, report)
        outputs.append(output)
        assert report.exists(), output[-5000:]
        sent += interactions(report)
        assert code == 0, output[-5000:] + server_errors(server)
        if len(sent) >= least:
            break
    seconds = time.monotonic() - began
    # the access log line is written after the response
    wait_for(lambda: len(server.access_log()) - before >= len(sent), timeout=10, interval=0.1)
    answered = server.access_log().iloc[before:]
    client = Counter(s["status"] for s in sent)
    served_by = Counter(answered["status"])
    paths = Counter(answered["path"].str.replace(r"^/promote/.*", "/promote/{version}",
                                                 regex=True))
    print(f"\nschemathesis: {len(sent)} requests in {round_ + 1} round(s), {seconds:.0f} s; "
          f"statuses {dict(sorted(client.items(), key=str))}; server access log: "
          f"{len(answered)} requests, statuses {dict(sorted(served_by.items()))}; "
          f"by path {dict(paths.most_common())}")
    errors = [s for s in sent if s["status"] is None or s["status"] >= 500]
    assert not errors, (errors[:5], server_errors(server))
    assert not [s for s in served_by if s >= 500], server_errors(server)
    assert "Traceback" not in server.stderr.read_text(errors="replace")
    assert len(sent) >= least and len(answered) >= least
    # the requests reached the model and the admin actions, not only the validation
    predicted = answered[(answered["path"] == "/predict") & (answered["status"] == 200)]
    assert len(predicted) >= 100
    for admin in ["/update", "/rollback"]:
        assert ((answered["path"] == admin) & (answered["status"] == 200)).any(), admin
    promoted = answered["path"].str.startswith("/promote/") & (answered["status"] == 200)
    assert promoted.any()
