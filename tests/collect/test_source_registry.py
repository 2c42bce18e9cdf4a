"""A data source is a factory and a registration: a toy generator through a real update."""

from __future__ import annotations

import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conveyor import pipeline
from conveyor.collect import registry
from conveyor.collect.protocol import Batch
from conveyor.collect.stream import Window
from conveyor.config import Config, SourceConfig, load_config
from conveyor.errors import ConfigError
from conveyor.store import Store
from conveyor.workspace import Workspace
from tests.e2e_helpers import write_config

DAY = pd.Timedelta("1D")
ORIGIN = pd.Timestamp("2024-01-01", tz="UTC")


class ToySource:
    """A synthetic frame per daily window, five windows; the cursor is the window index."""

    days = 5

    def __init__(self, config: Config, workspace: object, store: Store) -> None:
        self.time_column = config.source.time_column

    def next_batch(self, cursor: int) -> Batch | None:
        if cursor >= self.days:
            return None
        start = ORIGIN + cursor * DAY
        rng = np.random.default_rng(cursor)
        n = 200
        x = rng.normal(size=n)
        frame = pd.DataFrame({
            self.time_column: start + pd.to_timedelta(np.arange(n) * 7, unit="min"),
            "x": x, "group": rng.choice(["a", "b"], n),
            "y": 2 * x + rng.normal(0, 0.1, n)})
        return Batch(Window(cursor, start, start + DAY), frame, f"toy-{cursor}")

    def message(self, ingested: int) -> str:
        return f"toy: {ingested} batch(es)" if ingested else "toy: no day left"


def toy_config(tmp_path) -> Config:
    (tmp_path / "unused.csv").write_text("time,x,group,y\n", encoding="utf-8")
    config = load_config(write_config(
        tmp_path, source={"kind": "csv", "path": "unused.csv", "time_column": "time"},
        target={"column": "y", "task": "regression"}, columns={"exclude": []},
        stream={"window": "1D", "initial_batches": 2},
        train={"window_batches": 3, "families": {"linear": {"grid": {"alpha": [1.0]}}},
               "strategy": "retrain"}))
    source = config.source.model_copy(update={"kind": "toy"})  # a kind the config lacks
    return config.model_copy(update={"source": source})


def test_a_registered_source_feeds_a_real_update(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.SOURCES, "toy", ToySource)
    config = toy_config(tmp_path)
    first = pipeline.update(config)
    assert first.ok, first.message
    assert first.message != "toy: no day left"
    assert pipeline.update(config).ok
    store = Store.open(f"sqlite:///{config.workspace / 'conveyor.db'}")
    try:
        batches = store.frame("batches").sort_values("window_index")
    finally:
        store.close()
    assert batches["window_index"].tolist() == [0, 1, 2]
    assert batches["source"].tolist() == ["toy-0", "toy-1", "toy-2"]
    assert (batches["rows"] == 200).all()
    assert (batches["status"] == "accepted").all()
    workspace = Workspace.of(config)
    for path in batches["path"]:
        assert Path(workspace.resolve(path)).is_file()


def test_an_unknown_kind_is_a_config_error(tmp_path):
    config = toy_config(tmp_path)
    with pytest.raises(ConfigError, match="not a source kind"):
        pipeline.update(config)


def test_every_configurable_kind_is_registered():
    kinds = typing.get_args(SourceConfig.model_fields["kind"].annotation)
    assert set(kinds) == set(registry.SOURCES)
