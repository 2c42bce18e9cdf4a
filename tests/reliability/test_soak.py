"""A soak of one workspace by every kind of process at once, for at least 60 s.

Real processes on a small real workspace (eight days of flights, two-day windows):

* two writers, each a loop of `conveyor update` processes, so two updates always
  compete for the writer lock; once the stream is exhausted one of them alternates
  `conveyor rollback` and `conveyor promote VERSION` (a version chosen at random) to
  keep production moving, while the other keeps running `update`;
* two `conveyor serve` processes (hot reload every 0.2 s, request figures written to
  the database every 0.5 s), each polled by a client thread with `POST /predict` of
  three rows (a request, then 0.1 s of pause);
* a loop of `python run.py -mode inference -file sample.csv` (1,000 rows, with the
  model version column).

Afterwards: no "database is locked" anywhere (every process's output, the servers'
logs, the workspace log, the API's answers); every API answer is a 200 from a
version that was production at some point; every inference output has all input
rows, finite predictions and one model version that was production; every writer
process ended as expected; and no two writers held the workspace at the same time
(each writer's log lines, found by its process id, span an interval that overlaps no
other writer's).

    python -m pytest tests/reliability/test_soak.py -q -s   # prints the figures

Knob: ``CONVEYOR_SOAK_SECONDS`` (default 60).
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from conveyor import pipeline
from conveyor.config import load_config
from conveyor.store import Store
from tests.e2e_helpers import (
    inference_sample,
    store_url,
    write_config,
    write_flights_slice,
)
from tests.reliability.apikit import Server, request_records
from tests.serve.test_api import replica_config

ROOT = Path(__file__).resolve().parents[2]
LOCKED = "database is locked"


@dataclass
class Run:
    """One finished command: what ran, its process id, when, and what it said."""

    argv: list[str]
    pid: int
    began: float
    ended: float
    code: int
    stdout: str
    stderr: str


@dataclass
class Soak:
    folder: Path
    config: Path
    deadline: float
    runs: list[Run] = field(default_factory=list)
    answers: list[tuple[float, int, int | None, str]] = field(default_factory=list)
    exhausted: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, *args: str, script: str | None = None) -> Run:
        argv = ([sys.executable, script, *args] if script else
                [sys.executable, "-m", "conveyor", "--config", str(self.config), *args])
        began = time.time()
        process = subprocess.Popen(argv, cwd=self.folder, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        stdout, stderr = process.communicate(timeout=300)
        run = Run(argv, process.pid, began, time.time(), process.returncode, stdout, stderr)
        with self.lock:
            self.runs.append(run)
        return run


def writer(soak: Soak, promotes: bool) -> None:
    """Update until the stream is exhausted; then promote and roll back, or keep updating."""
    turn = 0
    rng = random.Random(7)
    while time.time() < soak.deadline:
        if not (promotes and soak.exhausted.is_set()):
            run = soak.run("update")
            if run.code == 1 and "exhausted" in run.stderr + run.stdout:
                soak.exhausted.set()
            continue
        turn += 1
        if turn % 2 == 0:  # promote first: a slow machine may leave time for one of each
            soak.run("rollback")
            continue
        store = Store.open(store_url(soak.folder / "ws"))
        try:
            models = store.frame("models")
        finally:
            store.close()
        choices = models[models["stage"].isin(["archived", "candidate", "staging"])]
        if len(choices):
            soak.run("promote", str(int(rng.choice(choices["version"].tolist()))))


def inferrer(soak: Soak, sample: Path) -> None:
    while time.time() < soak.deadline:
        soak.run("-mode", "inference", "-file", str(sample), "-config", str(soak.config),
                 script=str(ROOT / "run.py"))


def client(soak: Soak, url: str, records: list[dict], k: int) -> None:
    with httpx.Client(base_url=url, timeout=60) as session:
        i = k
        while time.time() < soak.deadline:
            body = {"records": records[i % len(records):i % len(records) + 3]}
            i += 7
            response = session.post("/predict", json=body)
            version = response.json().get("model_version") if response.is_success else None
            with soak.lock:
                soak.answers.append((time.time(), response.status_code, version,
                                     "" if response.is_success else response.text[:500]))
            time.sleep(0.1)  # polling, not saturating the two cores the writers need


LOG_LINE = re.compile(r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (?P<pid>\d+) "
                      r"(?P<level>[A-Z]+) (?P<name>\S+): (?P<message>.*)$")


def log_lines(path: Path) -> pd.DataFrame:
    """The workspace log's lines with their time and process id."""
    rows = [m.groupdict() for m in map(LOG_LINE.match, path.read_text(
        errors="replace").splitlines()) if m]
    frame = pd.DataFrame(rows, columns=["at", "pid", "level", "name", "message"])
    frame["at"] = [datetime.strptime(a, "%Y-%m-%d %H:%M:%S,%f").timestamp()
                   for a in frame["at"]]
    return frame.astype({"pid": int})


@pytest.mark.slow
@pytest.mark.serial
def test_updates_promotions_api_and_inference_at_once(tmp_path, open_store):
    seconds = float(os.environ.get("CONVEYOR_SOAK_SECONDS", "60"))
    write_flights_slice(tmp_path)
    sample = inference_sample(tmp_path, rows=1000)
    path = write_config(tmp_path, stream={"window": "2D", "initial_batches": 1},
                        train={"window_batches": 3, "strategy": "retrain", "families": {
                            "linear": {"grid": {"alpha": [1.0, 10.0]}},
                            "tree": {"grid": {"max_depth": [4]}}}},
                        validate={"promotion_margin": 0.0},
                        serve={"reload_seconds": 0.2, "log_seconds": 0.5,
                               "version_column": True},
                        lock={"timeout_seconds": 120})
    assert pipeline.update(load_config(path)).ok  # a production model before the servers
    servers = []
    try:
        for name in ("a", "b"):
            replica, port = replica_config(path, name)
            servers.append(Server(replica, port, tmp_path / "logs"))
        began = time.time()
        soak = Soak(tmp_path, path, began + seconds)
        records = request_records(500)
        threads = [threading.Thread(target=writer, args=(soak, True)),
                   threading.Thread(target=writer, args=(soak, False)),
                   threading.Thread(target=inferrer, args=(soak, sample))]
        threads += [threading.Thread(target=client, args=(soak, server.url, records, k))
                    for k, server in enumerate(servers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ended = time.time()
    finally:
        for server in servers:
            server.stop()

    store = open_store(tmp_path / "ws")
    models, events = store.frame("models"), store.frame("events")
    api_log = store.frame("inference_log")
    ever_production = set(events.loc[events["kind"].isin(["promotion", "rollback"]),
                                     "version"].astype(int))
    runs = {kind: [r for r in soak.runs if kind in r.argv] for kind in
            ("update", "promote", "rollback", "inference")}
    statuses = Counter(status for _, status, _, _ in soak.answers)
    print(f"\nsoak: {ended - began:.0f} s; updates {len(runs['update'])} (trained "
          f"{sum(r.code == 0 for r in runs['update'])}), promotions "
          f"{len(runs['promote'])}, rollbacks {len(runs['rollback'])}, inference runs "
          f"{len(runs['inference'])}, API requests {len(soak.answers)} {dict(statuses)}; "
          f"versions registered {len(models)}, ever in production {len(ever_production)}; "
          f"API answers by version {dict(Counter(v for _, _, v, _ in soak.answers))}; "
          f"inference_log rows {len(api_log)}")

    for run in sorted(soak.runs, key=lambda r: r.began):
        print(f"  {run.began - began:6.1f} s +{run.ended - run.began:5.1f} s  exit {run.code}  "
              f"{' '.join(run.argv[2:5])}  {run.stdout.strip()[-60:]!r}")

    # nobody saw a locked database
    texts = [r.stdout + r.stderr for r in soak.runs]
    texts += [s.stdout.read_text(errors="replace") + s.stderr.read_text(errors="replace")
              for s in servers]
    texts += [p.read_text(errors="replace") for p in (tmp_path / "ws" / "logs").glob("*")]
    texts += [body for *_, body in soak.answers]
    assert not [t for t in texts if LOCKED in t]
    assert not [t for t in texts if "Traceback" in t]

    # the API answered every request, each from a version that was production
    assert ended - began >= seconds and len(soak.answers) > 0
    assert set(statuses) == {200}, [a for a in soak.answers if a[1] != 200][:5]
    assert {v for _, _, v, _ in soak.answers} <= ever_production

    # every writer process ended as expected; updates ran until the stream was exhausted
    for run in runs["update"]:
        assert run.code == 0 or (run.code == 1 and "exhausted" in run.stderr + run.stdout), \
            (run.code, run.stderr[-2000:])
    for run in runs["promote"] + runs["rollback"]:
        assert run.code == 0, run.stderr[-2000:]
    assert soak.exhausted.is_set() and runs["promote"] and runs["rollback"]
    assert len(ever_production) >= 3

    # every inference output is complete and from one version that was production
    assert runs["inference"]
    rows = len(pd.read_csv(sample))
    for run in runs["inference"]:
        assert run.code == 0, run.stderr[-2000:]
        output = pd.read_csv(run.stdout.strip().splitlines()[-1])
        assert len(output) == rows and np.isfinite(output["predict"]).all()
        assert output["model_version"].nunique() == 1
        assert int(output["model_version"].iloc[0]) in ever_production

    # no two writers held the workspace at once: each writer's lines in the shared log
    # (after it got the lock) span an interval that overlaps no other writer's
    lines = log_lines(tmp_path / "ws" / "logs" / "conveyor.log")
    writers = {r.pid for r in runs["update"] + runs["promote"] + runs["rollback"]}
    held = (lines[lines["pid"].isin(writers) & ~lines["message"].str.contains("waiting up to")]
            .groupby("pid")["at"].agg(["min", "max"]).sort_values("min"))
    assert len(held) >= len(runs["promote"]) + len(runs["rollback"])
    released = held["max"].cummax().shift(1)  # the latest end of every earlier writer
    assert (held["min"] >= released.fillna(0)).all(), held[held["min"] < released]
    waited = lines[lines["message"].str.contains("waiting up to")]["pid"].nunique()
    print(f"writers that waited for the lock: {waited}")
