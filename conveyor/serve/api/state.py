"""The models being served (reloaded when the registry changes), the champion/challenger
choice, and the buffered request figures written to the store."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import Counter as Counter_
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from conveyor.collect.enrich import Enricher, make_enricher
from conveyor.config import Config
from conveyor.errors import ConveyorError
from conveyor.serve.bundle import LoadedModel, load_version
from conveyor.serve.predict import peak_memory_mb
from conveyor.store import Store
from conveyor.store.db import utcnow
from conveyor.validate import registry
from conveyor.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass
class Served:
    """The models currently answering requests, with the enrichment their inputs need."""

    production: LoadedModel
    staging: LoadedModel | None
    enrichers: dict[int, Enricher | None]


class ModelHolder:
    """Loads production (and staging) and reloads them when the registry changes."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.workspace = Workspace.of(config).create()
        self.store = Store.open(self.workspace.db_url)
        self.served: Served | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def _load(self, row: dict[str, Any] | None) -> LoadedModel | None:
        if row is None:
            return None
        return load_version(self.workspace, row)

    def due(self) -> bool:
        """Whether the reload period has passed since the registry was last read."""
        return time.monotonic() - self._checked >= self.config.serve.reload_seconds

    def refresh(self, force: bool = False) -> Served | None:
        """Reload when production or staging changed; at most once per reload period."""
        if not force and not self.due():
            return self.served
        with self._lock:
            if not force and not self.due():  # another thread has just looked
                return self.served
            self._checked = time.monotonic()
            production, staging = self.store.production(), registry.staging(self.store)
            current = self.served
            same = current is not None and production is not None and \
                current.production.version == production["version"] and \
                (current.staging.version if current.staging else None) == \
                (staging["version"] if staging else None) and \
                not self._history_moved(current)
            if not same and production is not None:
                try:
                    loaded = self._load(production)
                    assert loaded is not None
                    challenger = self._load(staging)
                    enrichers = {m.version: make_enricher(self.config, m.features, self.store)
                                 for m in (loaded, challenger) if m is not None}
                    self.served = Served(loaded, challenger, enrichers)
                    log.info("serving v%d (staging: %s)", production["version"],
                             staging["version"] if staging else "none")
                except ConveyorError as exc:
                    log.error("cannot load the new model, keeping the old one: %s", exc)
        return self.served


    def _history_moved(self, served: Served) -> bool:
        """Whether a batch was accepted since the served history features were indexed."""
        marks = {e.history_mark for e in served.enrichers.values()
                 if e is not None and e.history is not None}
        if not marks:
            return False
        newest = self.store.accepted_batches(1)
        return (newest[0]["id"] if newest else None) not in marks


class RequestLog:
    """Buffers per-request figures and writes one row per (version, variant) per period."""

    def __init__(self, store: Store, period: float) -> None:
        self.store, self.period = store, period
        self._lock = threading.Lock()
        self._buffer: dict[tuple[int, str], list[tuple[int, float]]] = defaultdict(list)
        self._routes: dict[tuple[int, str], Counter_[str]] = defaultdict(Counter_)
        self._last = time.monotonic()
        self._flushing = False

    def add(self, version: int, variant: str, rows: int, seconds: float,
            routes: dict[str, int] | None = None) -> None:
        with self._lock:
            self._buffer[(version, variant)].append((rows, seconds))
            self._routes[(version, variant)].update(routes or {})
            due = time.monotonic() - self._last >= self.period and not self._flushing
            if due:
                self._flushing = True
        if due:  # written beside the requests: a slow database write never holds one up
            threading.Thread(target=self._flush_once, name="conveyor-request-log",
                             daemon=True).start()

    def _flush_once(self) -> None:
        try:
            self.flush()
        finally:
            self._flushing = False

    def flush(self) -> None:
        with self._lock:
            buffer, self._buffer = self._buffer, defaultdict(list)
            routes, self._routes = self._routes, defaultdict(Counter_)
            self._last = time.monotonic()
        rows = []
        for (version, variant), calls in buffer.items():
            total_rows = sum(r for r, _ in calls)
            total_seconds = sum(s for _, s in calls)
            latencies = np.array([s for _, s in calls]) * 1000
            rows.append({"at": utcnow(), "kind": "api", "variant": variant, "version": version,
                         "input_path": "(api)", "input_sha256": "", "output_path": "(api)",
                         "calls": len(calls), "rows": total_rows, "seconds": total_seconds,
                         "rows_per_second": total_rows / max(total_seconds, 1e-9),
                         "peak_mb": peak_memory_mb(),
                         "p99_ms": float(np.percentile(latencies, 99)),
                         "route_counts": dict(routes[(version, variant)])})
        if rows:
            try:
                with self.store.transaction() as conn:
                    self.store.insert_rows(conn, "inference_log", rows)
            except Exception as exc:  # noqa: BLE001 - logging must never fail a request
                log.warning("could not record request figures: %s", exc)


def choose_variant(served: Served, key: str | None, share: float) -> tuple[LoadedModel, str]:
    """Pick production or staging; the same key always gets the same variant."""
    if served.staging is None or share <= 0:
        return served.production, "production"
    token = key if key is not None else os.urandom(8).hex()
    bucket = int.from_bytes(hashlib.sha256(token.encode()).digest()[:4], "big") / 2**32
    if bucket < share:
        return served.staging, "staging"
    return served.production, "production"
