"""Suite-wide settings and shared fixtures: a store, and a replayed workspace built once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from conveyor import pipeline
from conveyor.config import Config, load_config
from conveyor.store import Store
from tests.e2e_helpers import copy_replay, store_url, write_config, write_flights_slice

REPLAY_UPDATES = 3  # the default test config's eight days: the initial batch and two more


@pytest.fixture(autouse=True, scope="session")
def one_openmp_thread():
    """One OpenMP/BLAS thread per process: the suite runs beside API servers and Dask
    workers on small CI machines, where gradient boosting's spinning OpenMP threads slow
    down by 50x when cores are oversubscribed (measured: 7.3 s vs 0.15 s for one fit)."""
    with threadpool_limits(1):
        yield


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """An empty SQLite store in the test's tmp_path, closed after the test."""
    opened = Store.open(store_url(tmp_path))
    yield opened
    opened.close()


@pytest.fixture
def open_store() -> Iterator[Callable[[Config | Path], Store]]:
    """Open the store of a workspace (a config or its folder); each is closed after the test."""
    opened: list[Store] = []

    def open_(where: Config | Path) -> Store:
        folder = where.workspace if isinstance(where, Config) else Path(where)
        opened.append(Store.open(store_url(folder)))
        return opened[-1]

    yield open_
    for each in opened:
        each.close()


@pytest.fixture(scope="session")
def replayed_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo replay, built once per session: the flights slice, the default test
    config and REPLAY_UPDATES updates. Read it only; copy it (``replayed``) to change it."""
    folder = tmp_path_factory.mktemp("replayed")
    write_flights_slice(folder)
    config = load_config(write_config(folder))
    for _ in range(REPLAY_UPDATES):
        assert pipeline.update(config).ok
    return folder


@pytest.fixture
def replayed(replayed_folder: Path, tmp_path: Path) -> Config:
    """A private copy of the session's replayed workspace, free to change."""
    return copy_replay(replayed_folder, tmp_path / "replayed")
