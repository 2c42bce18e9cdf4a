"""What the routes share, as FastAPI dependencies: the served models, the request log and
the Prometheus figures of one app, and the admin token check."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter, Histogram

from conveyor.config import Config
from conveyor.serve.api.batching import MicroBatcher
from conveyor.serve.api.checks import tokens_match
from conveyor.serve.api.state import ModelHolder, RequestLog, Served

TOKEN_ENV = "CONVEYOR_ADMIN_TOKEN"


class ApiMetrics:
    """The Prometheus figures of one app, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("conveyor_requests_total", "Prediction requests",
                                ["version", "variant", "status"], registry=self.registry)
        self.rows = Counter("conveyor_rows_total", "Rows predicted", ["version", "variant"],
                            registry=self.registry)
        self.routes = Counter("conveyor_route_rows_total", "Rows per route (champion or the "
                              "fallback's reason)", ["version", "route"], registry=self.registry)
        self.latency = Histogram("conveyor_request_seconds", "Prediction latency",
                                 registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5, 1, 2.5, 5))
        self.batch = Histogram("conveyor_batch_requests", "Requests predicted together in "
                               "one call (adaptive micro-batching)", registry=self.registry,
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))

    def record(self, version: int, variant: str, rows: int, seconds: float,
               routes: dict[str, int]) -> None:
        """Count one answered prediction request."""
        self.requests.labels(version, variant, "ok").inc()
        self.rows.labels(version, variant).inc(rows)
        for route, n in routes.items():
            self.routes.labels(version, route).inc(n)
        self.latency.observe(seconds)


@dataclass
class DashboardCache:
    """The newest live dashboard page and the store's row counts it was built from."""

    key: tuple[int, ...] | None = None
    html: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class ApiState:
    """One app's workspace config, served models, request log and figures."""

    config: Config
    holder: ModelHolder
    requests: RequestLog
    metrics: ApiMetrics
    dashboard: DashboardCache = field(default_factory=DashboardCache)
    batcher: MicroBatcher = field(init=False)  # set by create_app: its run needs the routes

    async def served(self) -> Served | None:
        """The served models; the registry is read (in a worker thread, never blocking the
        event loop) once the reload period has passed."""
        if self.holder.due():
            return await run_in_threadpool(self.holder.refresh)
        return self.holder.served

    @classmethod
    def open(cls, config: Config) -> ApiState:
        holder = ModelHolder(config)
        return cls(config, holder, RequestLog(holder.store, config.serve.log_seconds),
                   ApiMetrics())


async def api_state(request: Request) -> ApiState:
    """The state of the app answering this request (set by ``create_app``)."""
    state: ApiState = request.app.state.conveyor
    return state


State = Annotated[ApiState, Depends(api_state)]


async def model_holder(state: State) -> ModelHolder:
    """The served models; a route calls ``refresh()`` to pick up a newly promoted version."""
    return state.holder


Holder = Annotated[ModelHolder, Depends(model_holder)]

bearer = HTTPBearer(auto_error=False, description=f"The server's {TOKEN_ENV}.")


def admin(credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
          ) -> None:
    """Let the request through only with the admin token (403 while none is set)."""
    expected = os.environ.get(TOKEN_ENV)
    if not expected:
        raise HTTPException(status_code=403, detail=f"admin endpoints are disabled: set "
                            f"{TOKEN_ENV} for the server to enable them")
    if not tokens_match(credentials.credentials if credentials else "", expected):
        raise HTTPException(status_code=401, detail="wrong or missing admin token")
