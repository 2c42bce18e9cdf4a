"""Admin actions behind the admin token: ``POST /update``, ``/promote/{version}`` and
``/rollback``; each runs the controller, then reloads the served models."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi import Path as UrlPath

from conveyor.errors import ConveyorError, LockedError
from conveyor.serve.api.deps import TOKEN_ENV, State, admin
from conveyor.serve.api.schemas import answers

LARGEST_VERSION = 2**63 - 1  # SQLite's INTEGER; a larger path parameter is a 422, not a 500

refusals = answers(_401="Wrong or missing admin token.",
                   _403=f"Admin endpoints are disabled: {TOKEN_ENV} is not set.",
                   _409="Another update, promotion or rollback holds the workspace, or "
                        "the action is not possible (no such version, nothing to roll "
                        "back to).")

router = APIRouter(dependencies=[Depends(admin)], responses=refusals)


@router.post("/update")
def update(state: State) -> dict[str, Any]:
    from conveyor import pipeline

    try:
        result = pipeline.update(state.config)
    except LockedError as exc:  # another update, promotion or rollback is running
        raise HTTPException(status_code=409, detail=str(exc)) from None
    state.holder.refresh(force=True)
    return {"ok": result.ok, "message": result.message, "version": result.version}


@router.post("/promote/{version}")
def promote(state: State,
            version: int = UrlPath(..., ge=1, le=LARGEST_VERSION)) -> dict[str, Any]:
    from conveyor import pipeline

    try:
        pipeline.promote(state.config, version, "promoted through the API")
    except ConveyorError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    served = state.holder.refresh(force=True)
    return {"model_version": served.production.version if served else None}


@router.post("/rollback")
def rollback(state: State) -> dict[str, Any]:
    from conveyor import pipeline

    try:
        version = pipeline.rollback(state.config, "rolled back through the API")
    except ConveyorError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    state.holder.refresh(force=True)
    return {"model_version": version}
