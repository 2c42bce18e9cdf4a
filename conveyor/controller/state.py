"""What an update knows and what it reports: the snapshot of the registry it starts
from, the timing of its stages, and its result."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from conveyor.serve.predict import peak_memory_mb
from conveyor.store import Store
from conveyor.validate import registry


@dataclass(frozen=True)
class UpdateState:
    """The registry as an update found it, read once: production, staging, the
    never-updated baseline and where the training window starts."""

    production: dict[str, Any] | None
    staging: dict[str, Any] | None
    baseline: dict[str, Any] | None
    window_anchor: int | None

    @classmethod
    def load(cls, store: Store) -> UpdateState:
        return cls(store.production(), registry.staging(store), store.first_production(),
                   store.window_anchor())

    def with_production(self, store: Store) -> UpdateState:
        """The state after production changed (a rollback by the model-drift policy)."""
        return replace(self, production=store.production())

    def with_anchor(self, batch_id: int | None) -> UpdateState:
        return replace(self, window_anchor=batch_id)


@dataclass
class UpdateResult:
    """What one update did; ``ok`` is the True/False the contract prints."""

    ok: bool
    message: str
    batch_ids: list[int] = field(default_factory=list)
    rows: int = 0
    version: int | None = None
    promoted: bool = False
    exhausted: bool = False


class Stages:
    """Times each stage of a run and records seconds and peak memory."""

    def __init__(self, store: Store, run: str) -> None:
        self.store, self.run = store, run
        self.batch_id: int | None = None
        self.rows: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.rows.append({"run": self.run, "batch_id": self.batch_id, "stage": name,
                          "seconds": time.perf_counter() - start, "peak_mb": peak_memory_mb()})

    def save(self) -> None:
        for row in self.rows:  # stages timed before the batch id was known (collect)
            row["batch_id"] = row["batch_id"] if row["batch_id"] is not None else self.batch_id
        with self.store.transaction() as conn:
            self.store.insert_rows(conn, "stage_timings", self.rows)
