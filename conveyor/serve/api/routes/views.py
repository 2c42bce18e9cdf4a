"""Read-only views: ``GET /models`` (the registry) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from prometheus_client import generate_latest

from conveyor.serve.api.deps import Holder, State
from conveyor.validate import registry

router = APIRouter()


@router.get("/models")
def models(holder: Holder) -> list[dict[str, Any]]:
    frame = registry.list_models(holder.store)
    keep = ["version", "stage", "family", "params", "metrics", "window_start", "window_end",
            "train_rows", "sha256", "created_at"]
    return [] if frame.empty else [{str(k): v for k, v in record.items()}
                                   for record in frame[keep].to_dict("records")]


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus(state: State) -> PlainTextResponse:
    return PlainTextResponse(generate_latest(state.metrics.registry).decode(),
                             media_type="text/plain; version=0.0.4")
