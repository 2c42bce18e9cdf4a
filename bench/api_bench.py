"""API latency and throughput: ``conveyor serve`` against a bare FastAPI app on the same model.

    python bench/api_bench.py [--seconds 20] [--concurrency 8 64] [--rounds 4]
                              [--big-rows 1000] [--config conveyor.yaml | --serve-config PATH]

Setup (not timed): the config is copied into a temporary folder with the
workspace there, ``stream.window`` set to ``2D`` and a free port, the demo
data written beside it, and three updates replayed in this process. With
``--serve-config`` an existing config whose workspace already has a
production model is served instead (its port is overridden in a copy).

Servers on 127.0.0.1, started as subprocesses:

* baseline: a bare FastAPI app (this file, ``--baseline-server``), one uvicorn
  worker, that loads the same production model file with
  ``conveyor.serve.bundle.load_model`` and answers ``POST /predict`` with
  ``model.predict(pd.DataFrame(records))``;
* conveyor: ``python -m conveyor --config CFG serve`` with one worker (request
  checks against the schema, enrichment when columns are missing, adaptive
  micro-batching of the requests in flight, routing between champion and fallback,
  Prometheus counters, buffered request log in the metadata store, reload check
  every ``serve.reload_seconds``);
* conveyor, 2 workers: the same with ``--workers 2``.

Client: httpx.AsyncClient in this process, one record per request (real rows of
the raw batches: the flights with their weather and plane columns, as JSON
records of the model schema's columns), for each ``--concurrency`` level. After a
warm-up, the servers are measured in alternating phases (``--rounds`` phases of
``seconds / rounds`` each), so all see the same machine load. Then requests of
``--big-rows`` records, two in flight, give rows/s. Last, the single-row path in
process, without HTTP: conveyor's checks, conversion, router and predict against a
bare ``model.predict`` on a one-row frame. conveyor's app limits its numeric libraries
to one thread per worker (``threadpool_limits(1)``); the baseline keeps the process
default, as ten lines of FastAPI would.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the baseline server -------------------------------------------------------------------


class Body(BaseModel):
    records: list[dict[str, Any]]



def baseline_app(model_dir: Path, sha256: str) -> Any:
    """The bare app: load the model once, predict the records as a DataFrame."""
    from fastapi import FastAPI

    from conveyor.serve.bundle import load_model

    model = load_model(model_dir, sha256).model
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/predict")
    def predict(body: Body) -> dict[str, list[float]]:
        return {"predictions": model.predict(pd.DataFrame(body.records)).tolist()}

    return app


def run_baseline_server(model_dir: Path, sha256: str, port: int) -> None:
    import uvicorn

    uvicorn.run(baseline_app(model_dir, sha256), host="127.0.0.1", port=port, log_level="info")


# -- setup ---------------------------------------------------------------------------------


def write_config(source: Path, folder: Path, port: int, train: bool) -> Path:
    """Copy a config into ``folder``: the serve port set; for a fresh workspace also the
    workspace folder and a 2-day window (demo data paths stay relative to the copy)."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data.setdefault("serve", {})
    data["serve"].update({"host": "127.0.0.1", "port": port})
    if train:
        data["workspace"] = str(folder / "workspace")
        data.setdefault("stream", {})["window"] = "2D"
    else:  # serve the existing workspace: every relative path against the original folder
        base = source.resolve().parent
        data["workspace"] = str((base / data.get("workspace", "workspace")).resolve())
        for table in [data["source"], *data.get("enrich", [])]:
            if table.get("path") and not Path(table["path"]).is_absolute():
                table["path"] = str((base / table["path"]).resolve())
    path = folder / "conveyor.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def production_and_rows(config: Any, rows: int) -> tuple[Path, str, list[dict[str, Any]], str]:
    """The production model's folder and sha256, request records, and a description."""
    from conveyor.collect import rawstore
    from conveyor.store import Store
    from conveyor.workspace import Workspace

    workspace = Workspace.of(config)
    store = Store.open(workspace.db_url)
    try:
        production = store.production()
        batches = store.accepted_batches(2)
    finally:
        store.close()
    if production is None:
        raise SystemExit("the workspace has no production model")
    folder = workspace.root / production["path"]
    schema = json.loads((folder / "manifest.json").read_text())["schema"]
    frame = pd.concat([rawstore.read_batch(workspace.root / b["path"]) for b in batches],
                      ignore_index=True)
    frame = frame[list(schema)].sample(n=min(rows, len(frame)), random_state=0)
    records = json.loads(frame.to_json(orient="records", date_format="iso"))
    what = (f"v{production['version']} {production['family']} {production['params']}, "
            f"{len(schema)} input columns")
    return folder, production["sha256"], records, what


def start(command: list[str], url: str, logfile: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start a server whose output goes to a file; return it once /health answers 200."""
    import httpx

    out = logfile.open("wb")
    process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {logfile.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    process.kill()
    raise SystemExit(f"server did not answer /health: {logfile.read_text()[-2000:]}")


# -- the client ----------------------------------------------------------------------------


def request_bodies(records: list[dict[str, Any]], per_request: int,
                   count: int = 500) -> list[bytes]:
    """POST /predict requests as bytes, encoded before the clock starts."""
    bodies = []
    for k in range(count):
        at = (k * per_request) % len(records)
        body = json.dumps({"records": (records + records)[at:at + per_request]}).encode()
        bodies.append(b"POST /predict HTTP/1.1\r\nHost: bench\r\nContent-Type: "
                      b"application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return bodies


async def phase(url: str, records: list[dict[str, Any]], seconds: float,
                concurrency: int, offset: int, per_request: int = 1
                ) -> tuple[list[float], int, float]:
    """Send requests of ``per_request`` records for ``seconds``, ``concurrency`` kept-alive
    connections each with one request in flight; return latencies (s), errors, elapsed.

    The client is plain HTTP/1.1 on asyncio streams with the requests encoded
    beforehand: it shares the 2 cores with the servers, and a full HTTP client library
    spends more time per request than the bare server does."""
    host, port = url.removeprefix("http://").split(":")
    bodies = request_bodies(records, per_request)
    latencies: list[float] = []
    errors = 0
    began = time.perf_counter()
    stop = began + seconds

    async def worker(k: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        i = offset + k
        try:
            while time.perf_counter() < stop:
                request = bodies[i % len(bodies)]
                i += concurrency
                sent = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:-2])
                answer = await reader.readexactly(int(fields[b"content-length"]))
                if head.startswith(b"HTTP/1.1 200"):
                    latencies.append(time.perf_counter() - sent)
                else:
                    errors += 1
                    if errors == 1:
                        log(f"{url}: {head.splitlines()[0]!r} {answer[:300]!r}")
        finally:
            writer.close()

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return latencies, errors, time.perf_counter() - began


def check_same_predictions(urls: dict[str, str], records: list[dict[str, Any]]) -> str:
    """Both servers must give the same answer for the same rows (champion routes)."""
    import httpx

    sample = records[:50]
    out = {}
    for name, url in urls.items():
        answers = []
        for record in sample:
            response = httpx.post(f"{url}/predict", json={"records": [record]}, timeout=30)
            if response.status_code != 200:
                raise SystemExit(f"{name}: HTTP {response.status_code} {response.text[:500]}")
            answers.append(response.json()["predictions"][0])
        out[name] = np.array(answers, dtype=float)
    a, b = out["conveyor"], out["baseline"]
    same = int(np.isclose(a, b, rtol=1e-6, atol=1e-6).sum())
    return f"{same} of {len(sample)} single-row predictions identical"


def in_process(model_dir: Path, sha256: str, records: list[dict[str, Any]],
               n: int = 200) -> tuple[dict[str, float], int]:
    """Milliseconds per single-row call without HTTP, interleaved on the same rows: the
    baseline's ``model.predict(pd.DataFrame(records))`` against conveyor's request path
    (the API's checks, the conversion to the model's input, router + champion/fallback);
    and how many of the rows the router sends to the fallback."""
    from threadpoolctl import threadpool_limits

    from conveyor.serve.api.checks import check_records, check_times
    from conveyor.serve.api.routes.predict import features_of
    from conveyor.serve.bundle import load_model
    from conveyor.serve.predict import predict_rows

    loaded = load_model(model_dir, sha256)
    schema = loaded.manifest["schema"]
    times = [c for c, spec in schema.items() if spec["kind"] == "datetime"]
    parts: dict[str, list[float]] = {"bare predict": [], "conveyor checks": [],
                                     "conveyor conversion": [], "conveyor router + predict": [],
                                     "conveyor in all": []}
    routed = 0
    with threadpool_limits(1):  # as conveyor's app
        for record in [*records[:20], *records[:n]]:  # the first 20: warm-up, not counted
            begin = time.perf_counter()
            loaded.model.predict(pd.DataFrame([record]))
            bare = time.perf_counter()
            check_records([record], schema)
            check_times([record], times, None)
            checked = time.perf_counter()
            features = features_of(loaded, None, [record])
            converted = time.perf_counter()
            _, to_fallback, _ = predict_rows(loaded, features, "request")
            end = time.perf_counter()
            for name, seconds in [("bare predict", bare - begin),
                                  ("conveyor checks", checked - bare),
                                  ("conveyor conversion", converted - checked),
                                  ("conveyor router + predict", end - converted),
                                  ("conveyor in all", end - bare)]:
                parts[name].append(seconds)
            routed += int(to_fallback[0])
    return {k: 1000 * float(np.median(v[20:])) for k, v in parts.items()}, routed


# -- main ----------------------------------------------------------------------------------


def measure(urls: dict[str, str], records: list[dict[str, Any]], seconds: float,
            rounds: int, concurrency: int, per_request: int) -> dict[str, dict[str, float]]:
    """Alternating phases per server; requests, errors, p50/p99 ms, requests/s, rows/s."""
    results: dict[str, dict[str, Any]] = {
        name: {"latencies": [], "errors": 0, "seconds": 0.0} for name in urls}
    for r in range(rounds):
        order = list(urls) if r % 2 == 0 else list(reversed(urls))
        for name in order:
            latencies, errors, elapsed = asyncio.run(phase(
                urls[name], records, seconds / rounds, concurrency, r * 997, per_request))
            results[name]["latencies"] += latencies
            results[name]["errors"] += errors
            results[name]["seconds"] += elapsed
            log(f"{concurrency} in flight x {per_request} rows, round {r + 1} {name}: "
                f"{len(latencies) / elapsed:.0f} req/s")
    figures = {}
    for name, r in results.items():
        lat = np.array(r["latencies"]) * 1000
        figures[name] = {"requests": len(lat), "errors": r["errors"],
                         "p50": float(np.percentile(lat, 50)),
                         "p99": float(np.percentile(lat, 99)),
                         "rps": len(lat) / r["seconds"],
                         "rows": len(lat) * per_request / r["seconds"]}
    return figures


LABELS = {"baseline": "baseline: bare FastAPI + `model.predict`",
          "conveyor": "conveyor serve", "conveyor2": "conveyor serve --workers 2"}


def table(figures: dict[str, dict[str, float]], rows_too: bool = False) -> list[str]:
    """A Markdown table of :func:`measure`'s figures with the ratios to the baseline."""
    b = figures["baseline"]
    unit = "rows/s" if rows_too else "requests/s"
    lines = [f"| server | requests | errors | p50 ms | p99 ms | {unit} | ratio to baseline |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, f in figures.items():
        rate = f["rows"] if rows_too else f["rps"]
        base = b["rows"] if rows_too else b["rps"]
        lines.append(f"| {LABELS[name]} | {f['requests']:,} | {f['errors']} | {f['p50']:.1f} | "
                     f"{f['p99']:.1f} | {rate:,.0f} | {rate / base:.2f}x |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "conveyor.yaml",
                        help="config to copy and train a fresh workspace with")
    parser.add_argument("--serve-config", type=Path, default=None,
                        help="serve this config's existing workspace instead of training")
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="measured per server and concurrency level")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=4, help="alternating phases per server")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--big-rows", type=int, default=1000,
                        help="records per request in the rows/s phase (0: skip it)")
    parser.add_argument("--rows", type=int, default=2000, help="distinct request rows")
    parser.add_argument("--baseline-server", nargs=3, metavar=("MODEL_DIR", "SHA256", "PORT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_server:
        model_dir, sha, port = args.baseline_server
        run_baseline_server(Path(model_dir), sha, int(port))
        return
    command = "python bench/api_bench.py" + "".join(
        f" {shlex.quote(a)}" for a in (sys.argv[1:] if argv is None else argv))

    from conveyor import pipeline
    from conveyor.config import load_config

    with tempfile.TemporaryDirectory(prefix="api-bench-") as tmp:
        folder = Path(tmp)
        ports = {"conveyor": free_port(), "baseline": free_port(), "conveyor2": free_port()}
        train = args.serve_config is None
        path = write_config(args.serve_config or args.config, folder, ports["conveyor"], train)
        config = load_config(path)
        if train:
            from conveyor.demo import prepare_demo_data

            prepare_demo_data(config)
            log(f"replaying {args.updates} updates (window {config.stream.window})")
            for result in pipeline.replay(config, args.updates):
                log(f"  {result.message[:120]}")
        model_dir, sha, records, model = production_and_rows(config, args.rows)
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        two = folder / "two-workers.yaml"  # the same workspace on its own port, 2 workers
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec["serve"]["port"] = ports["conveyor2"]
        two.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        env = {**os.environ}
        env.pop("CONVEYOR_ADMIN_TOKEN", None)
        servers = {
            "baseline": start([sys.executable, str(Path(__file__).resolve()),
                               "--baseline-server", str(model_dir), sha,
                               str(ports["baseline"])], urls["baseline"],
                              folder / "baseline.log", folder),
            "conveyor": start([sys.executable, "-m", "conveyor", "--config", str(path), "serve"],
                              urls["conveyor"], folder / "conveyor.log", folder),
            "conveyor2": start([sys.executable, "-m", "conveyor", "--config", str(two), "serve",
                                "--workers", "2"], urls["conveyor2"], folder / "two.log",
                               folder),
        }
        try:
            agreement = check_same_predictions(
                {"conveyor": urls["conveyor"], "baseline": urls["baseline"]}, records)
            log(agreement)
            for url in urls.values():
                asyncio.run(phase(url, records, args.warmup, max(args.concurrency), 0))
            levels = {c: measure(urls, records, args.seconds, args.rounds, c, 1)
                      for c in args.concurrency}
            big = measure(urls, records, args.seconds, args.rounds, 2, args.big_rows) \
                if args.big_rows else None
        finally:
            for process in servers.values():
                process.terminate()
            for process in servers.values():
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        parts, routed = in_process(model_dir, sha, records)  # before the folder goes

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"`{command}` on {dt.date.today().isoformat()}", "",
        f"Machine: {os.cpu_count()} CPUs, load average at the end {load}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}. Model: {model}. "
        f"{len(records):,} distinct rows; {args.rounds} alternating phases of "
        f"{args.seconds / args.rounds:.1f} s per server after a {args.warmup:.0f} s warm-up; "
        f"{agreement}; the client runs on the same 2 cores."]
    for c, figures in levels.items():
        two_ratio = figures["conveyor2"]["rps"] / figures["conveyor"]["rps"]
        lines += ["", f"**{c} requests in flight, one record each** (2 workers / 1: "
                  f"{two_ratio:.2f}x):", "", *table(figures)]
    if big is not None:
        lines += ["", f"**Requests of {args.big_rows:,} records, two in flight:**", "",
                  *table(big, rows_too=True)]
    ratio = parts["conveyor in all"] / parts["bare predict"]
    lines += ["", f"In process, without HTTP (median ms per single-row call over "
              f"{min(200, len(records))} rows, one thread; conveyor's router sent {routed} of "
              f"them to the fallback model; conveyor in all / bare predict: {ratio:.2f}x):", "",
              "| step | median ms |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in parts.items()]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
