"""``GET /health``: whether a model is being served, and which versions."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from conveyor.serve.api.deps import Holder

router = APIRouter()


@router.get("/health")
def health(holder: Holder) -> JSONResponse:
    served = holder.refresh()
    if served is None:
        return JSONResponse({"status": "no model", "detail": "run `conveyor update` first"},
                            status_code=503)
    return JSONResponse({"status": "ready", "model_version": served.production.version,
                         "staging_version": served.staging.version if served.staging
                         else None})
