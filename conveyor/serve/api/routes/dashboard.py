"""``GET /dashboard``: the summary dashboard, live, built from the store and kept until the
store changes (a new batch, version, event, prequential score or inference call)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from conveyor.serve.api.deps import State

router = APIRouter()

CHANGES = ("batches", "models", "events", "prequential", "inference_log")


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard(state: State) -> HTMLResponse:
    """The dashboard ``summary`` writes, served from the store (nothing is written)."""
    from conveyor.report.summary.assemble import build
    from conveyor.report.summary.page import render_html

    store, cache = state.holder.store, state.dashboard
    key = tuple(store.count(table) for table in CHANGES)
    with cache.lock:  # one build at a time; the others wait and get it
        if cache.key != key:
            report = build(store, state.config, state.holder.workspace.root)
            cache.html, cache.key = render_html(report), key
        return HTMLResponse(cache.html)
