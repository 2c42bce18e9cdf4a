"""API latency and throughput: ``conveyor serve`` against a bare FastAPI app on the same model.

    python bench/api_bench.py [--seconds 20] [--concurrency 8] [--rounds 4]
                              [--config conveyor.yaml | --serve-config PATH]

Setup (not timed): the config is copied into a temporary folder with the
workspace there, ``stream.window`` set to ``2D`` and a free port, the demo
data written beside it, and three updates replayed in this process. With
``--serve-config`` an existing config whose workspace already has a
production model is served instead (its port is overridden in a copy).

Servers, both one uvicorn worker on 127.0.0.1, started as subprocesses:

* conveyor: ``python -m conveyor --config CFG serve`` (request validation
  against the schema, enrichment when columns are missing, routing between
  champion and fallback, Prometheus counters, buffered request log in the
  metadata store, reload check every ``serve.reload_seconds``);
* baseline: a bare FastAPI app (this file, ``--baseline-server``) that loads
  the same production model file with ``conveyor.serve.bundle.load_model``
  and answers ``POST /predict`` with ``model.predict(pd.DataFrame(records))``,
  run by ``uvicorn.run`` with the same arguments conveyor uses.

With ``--replicas`` (the default) a second ``conveyor serve`` on the same workspace
is started too, and a third variant sends half of the clients to each replica, as a
round-robin load balancer would (on 2 cores the client, and each server's one
process, compete for them).

Client: httpx.AsyncClient in this process, ``--concurrency`` requests in
flight, one record per request (real rows of the raw batches: the flights
with their weather and plane columns, as JSON records of the model schema's
columns). After a warm-up, the servers are measured in alternating phases
(``--rounds`` phases of ``seconds / rounds`` each), so both see the same
machine load. conveyor's app sets ``threadpool_limits(1)`` itself; the
baseline keeps the process default (OMP_NUM_THREADS is printed).
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


async def phase(url: str, records: list[dict[str, Any]], seconds: float,
                concurrency: int, offset: int) -> tuple[list[float], int, float]:
    """Send single-record requests for ``seconds``; return latencies (s), errors, elapsed."""
    import httpx

    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        began = time.perf_counter()
        stop = began + seconds

        async def worker(k: int) -> None:
            nonlocal errors
            i = offset + k
            while time.perf_counter() < stop:
                body = {"records": [records[i % len(records)]]}
                i += concurrency
                sent = time.perf_counter()
                response = await client.post("/predict", json=body)
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - sent)
                else:
                    errors += 1
                    if errors == 1:
                        log(f"{url}: HTTP {response.status_code} {response.text[:300]}")

        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - began
    return latencies, errors, elapsed


async def spread(urls: list[str], records: list[dict[str, Any]], seconds: float,
                 concurrency: int, offset: int) -> tuple[list[float], int, float]:
    """:func:`phase` against several servers at once, the clients split between them."""
    share = max(1, concurrency // len(urls))
    parts = await asyncio.gather(*(phase(url, records, seconds, share, offset + 7919 * i)
                                   for i, url in enumerate(urls)))
    return ([lat for p in parts for lat in p[0]], sum(p[1] for p in parts),
            max(p[2] for p in parts))


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
    (schema check, type conversion, router + champion/fallback); and how many of the rows
    the router sends to the fallback."""
    from threadpoolctl import threadpool_limits

    from conveyor.serve.api.checks import records_frame
    from conveyor.serve.bundle import load_model
    from conveyor.serve.predict import features_frame
    from conveyor.serve.routing import predict_routed

    loaded = load_model(model_dir, sha256)
    schema = loaded.manifest["schema"]
    parts: dict[str, list[float]] = {"bare predict": [], "conveyor schema check + types": [],
                                     "conveyor router + predict": []}
    routed = 0
    with threadpool_limits(1):  # as conveyor's app
        for record in records[:n]:
            begin = time.perf_counter()
            loaded.model.predict(pd.DataFrame([record]))
            parts["bare predict"].append(time.perf_counter() - begin)
            begin = time.perf_counter()
            features = features_frame(records_frame([record], schema), schema, "request")
            middle = time.perf_counter()
            _, to_fallback, _ = predict_routed(loaded.model, loaded.fallback, loaded.router,
                                               features)
            end = time.perf_counter()
            parts["conveyor schema check + types"].append(middle - begin)
            parts["conveyor router + predict"].append(end - middle)
            routed += int(to_fallback[0])
    return {k: 1000 * float(np.median(v)) for k, v in parts.items()}, routed


# -- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "conveyor.yaml",
                        help="config to copy and train a fresh workspace with")
    parser.add_argument("--serve-config", type=Path, default=None,
                        help="serve this config's existing workspace instead of training")
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured per server")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=4, help="alternating phases per server")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--replicas", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure two conveyor replicas on the same workspace")
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
        ports = {"conveyor": free_port(), "baseline": free_port(), "replica": free_port()}
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
        replica = folder / "replica.yaml"  # a second `conveyor serve` on the same workspace
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec["serve"]["port"] = ports["replica"]
        replica.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        env = {**os.environ}
        env.pop("CONVEYOR_ADMIN_TOKEN", None)
        servers = {
            "conveyor": start([sys.executable, "-m", "conveyor", "--config", str(path), "serve"],
                              urls["conveyor"], folder / "conveyor.log", folder),
            "baseline": start([sys.executable, str(Path(__file__).resolve()),
                               "--baseline-server", str(model_dir), sha,
                               str(ports["baseline"])], urls["baseline"],
                              folder / "baseline.log", folder),
        }
        if args.replicas:
            servers["replica"] = start([sys.executable, "-m", "conveyor", "--config",
                                        str(replica), "serve"], urls["replica"],
                                       folder / "replica.log", folder)
        # what the client sends to: one server, or both replicas (half the clients each,
        # as a round-robin load balancer would spread them)
        targets = {"conveyor": [urls["conveyor"]], "baseline": [urls["baseline"]]}
        if args.replicas:
            targets["replicas"] = [urls["conveyor"], urls["replica"]]
        try:
            agreement = check_same_predictions(
                {k: v for k, v in urls.items() if k != "replica"}, records)
            log(agreement)
            for url in urls.values():
                if url in {u for t in targets.values() for u in t}:
                    asyncio.run(phase(url, records, args.warmup, args.concurrency, 0))
            results: dict[str, dict[str, Any]] = {
                name: {"latencies": [], "errors": 0, "seconds": 0.0} for name in targets}
            each = args.seconds / args.rounds
            for r in range(args.rounds):
                order = list(targets) if r % 2 == 0 else list(reversed(targets))
                for name in order:
                    latencies, errors, elapsed = asyncio.run(
                        spread(targets[name], records, each, args.concurrency, r * 997))
                    results[name]["latencies"] += latencies
                    results[name]["errors"] += errors
                    results[name]["seconds"] += elapsed
                    log(f"round {r + 1} {name}: {len(latencies) / elapsed:.0f} req/s")
        finally:
            for process in servers.values():
                process.terminate()
            for process in servers.values():
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        parts, routed = in_process(model_dir, sha, records)  # before the folder goes

    figures = {}
    for name, r in results.items():
        lat = np.array(r["latencies"]) * 1000
        figures[name] = {"requests": len(lat), "errors": r["errors"],
                         "p50": float(np.percentile(lat, 50)),
                         "p99": float(np.percentile(lat, 99)),
                         "rps": len(lat) / r["seconds"]}
    c, b = figures["conveyor"], figures["baseline"]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"`{command}` on {dt.date.today().isoformat()}", "",
        f"Machine: {os.cpu_count()} CPUs, load average at the end {load}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} (conveyor's app limits "
        "its thread pools to 1; the baseline keeps the default). Model: " + model + ". "
        f"{args.concurrency} requests in flight, one record each, {len(records):,} distinct "
        f"rows; {args.rounds} alternating phases of {args.seconds / args.rounds:.1f} s per "
        f"server after a {args.warmup:.0f} s warm-up; {agreement}.", "",
        "| server | requests | errors | p50 ms | p99 ms | requests/s |",
        "|---|---:|---:|---:|---:|---:|"]
    rows = [("baseline", "baseline: bare FastAPI + `model.predict`"),
            ("conveyor", "conveyor serve")]
    for name, label in rows:
        f = figures[name]
        lines.append(f"| {label} | {f['requests']:,} | {f['errors']} | {f['p50']:.1f} | "
                     f"{f['p99']:.1f} | {f['rps']:.0f} |")
    lines.append(f"| ratio conveyor / baseline | | | {c['p50'] / b['p50']:.2f} | "
                 f"{c['p99'] / b['p99']:.2f} | {c['rps'] / b['rps']:.2f} |")
    if "replicas" in figures:
        f = figures["replicas"]
        lines.append(f"| conveyor serve, 2 replicas (the clients split between them) | "
                     f"{f['requests']:,} | {f['errors']} | {f['p50']:.1f} | {f['p99']:.1f} | "
                     f"{f['rps']:.0f} |")
        lines.append(f"| ratio 2 replicas / 1 | | | {f['p50'] / c['p50']:.2f} | "
                     f"{f['p99'] / c['p99']:.2f} | {f['rps'] / c['rps']:.2f} |")
    lines += ["", f"In process, without HTTP (median ms per single-row call over "
              f"{min(200, len(records))} rows, one thread; conveyor's router sent {routed} of "
              "them to the fallback model):", "", "| step | median ms |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in parts.items()]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
