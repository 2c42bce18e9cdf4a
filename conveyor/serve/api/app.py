"""The FastAPI application: routes for predictions, health, models, metrics and the admin
actions, and the uvicorn entry points."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi import Path as UrlPath
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from conveyor.config import Config
from conveyor.errors import ConveyorError, InputError, LockedError, SourceError
from conveyor.serve.api.checks import (
    BodyLimit,
    as_of_column,
    check_times,
    records_frame,
    tokens_match,
    validation_problem,
)
from conveyor.serve.api.schemas import PredictRequest, PredictResponse, answers, record_schema
from conveyor.serve.api.state import ModelHolder, RequestLog, choose_variant
from conveyor.serve.predict import features_frame, predict_rows
from conveyor.serve.routing import route_counts
from conveyor.validate import registry

log = logging.getLogger(__name__)


TOKEN_ENV = "CONVEYOR_ADMIN_TOKEN"


LARGEST_VERSION = 2**63 - 1  # SQLite's INTEGER; a larger path parameter is a 422, not a 500

def create_app(config: Config) -> FastAPI:
    """Build the FastAPI application for one workspace."""
    from threadpoolctl import threadpool_limits

    # one BLAS/OpenMP thread per worker: several workers on few cores collapse otherwise
    threadpool_limits(1)
    holder = ModelHolder(config)
    requests_log = RequestLog(holder.store, config.serve.log_seconds)
    metrics = CollectorRegistry()
    request_count = Counter("conveyor_requests_total", "Prediction requests",
                            ["version", "variant", "status"], registry=metrics)
    rows_count = Counter("conveyor_rows_total", "Rows predicted", ["version", "variant"],
                         registry=metrics)
    route_count = Counter("conveyor_route_rows_total", "Rows per route (champion or the "
                          "fallback's reason)", ["version", "route"], registry=metrics)
    latency = Histogram("conveyor_request_seconds", "Prediction latency", registry=metrics,
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                 2.5, 5))
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        requests_log.flush()

    app = FastAPI(title="conveyor", version="1", lifespan=lifespan,
                  description="Predictions from the conveyor's production model.")

    app.add_middleware(BodyLimit, limit=config.serve.max_body_bytes)
    app.add_exception_handler(RequestValidationError, validation_problem)

    @app.get("/health")
    def health() -> JSONResponse:
        served = holder.refresh()
        if served is None:
            return JSONResponse({"status": "no model", "detail": "run `conveyor update` first"},
                                status_code=503)
        return JSONResponse({"status": "ready", "model_version": served.production.version,
                             "staging_version": served.staging.version if served.staging
                             else None})

    @app.post("/predict", response_model=PredictResponse, responses=answers(
        _400="The body is not text in any encoding JSON allows.",
        _413="The body is over serve.max_body_bytes or holds over serve.max_records records.",
        _503="No model is in production yet."))
    def predict(body: PredictRequest) -> PredictResponse:
        served = holder.refresh()
        if served is None:
            raise HTTPException(status_code=503, detail="no production model yet")
        if len(body.records) > config.serve.max_records:
            raise HTTPException(status_code=413, detail=f"{len(body.records)} records, over "
                                f"{config.serve.max_records} (serve.max_records)")
        model, variant = choose_variant(served, body.key, config.serve.challenger_share)
        start = time.perf_counter()
        enricher = served.enrichers.get(model.version)
        schema = model.manifest["schema"]
        frame = records_frame(body.records, schema, enricher.added if enricher else frozenset())
        check_times(frame, [c for c, spec in schema.items() if spec["kind"] == "datetime"],
                     as_of_column(enricher, frame))
        try:
            if enricher is not None:
                frame = enricher(frame)
            features = features_frame(frame, schema, "request")
            predictions, reasons = predict_rows(model, features, "request")
        except (InputError, SourceError) as exc:  # the message names the column or the row
            raise HTTPException(status_code=422, detail=[{
                "loc": ["body", "records"], "type": "value_error", "msg": str(exc)}]) from None
        seconds = time.perf_counter() - start
        counts = route_counts(reasons)
        request_count.labels(model.version, variant, "ok").inc()
        rows_count.labels(model.version, variant).inc(len(frame))
        for route, n in counts.items():
            route_count.labels(model.version, route).inc(n)
        latency.observe(seconds)
        requests_log.add(model.version, variant, len(frame), seconds, counts)
        values = [p.item() if hasattr(p, "item") else p for p in predictions]
        routes = [r or "champion" for r in reasons] if config.serve.route_columns else None
        return PredictResponse(predictions=values, model_version=model.version, variant=variant,
                               routes=routes)

    @app.get("/models")
    def models() -> list[dict[str, Any]]:
        frame = registry.list_models(holder.store)
        keep = ["version", "stage", "family", "params", "metrics", "window_start", "window_end",
                "train_rows", "sha256", "created_at"]
        return [] if frame.empty else [{str(k): v for k, v in record.items()}
                                       for record in frame[keep].to_dict("records")]

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics).decode(),
                                 media_type="text/plain; version=0.0.4")

    bearer = HTTPBearer(auto_error=False, description=f"The server's {TOKEN_ENV}.")

    def admin(credentials: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
              ) -> None:
        """Let the request through only with the admin token (403 while none is set)."""
        expected = os.environ.get(TOKEN_ENV)
        if not expected:
            raise HTTPException(status_code=403, detail=f"admin endpoints are disabled: set "
                                f"{TOKEN_ENV} for the server to enable them")
        if not tokens_match(credentials.credentials if credentials else "", expected):
            raise HTTPException(status_code=401, detail="wrong or missing admin token")

    refusals = answers(_401="Wrong or missing admin token.",
                        _403=f"Admin endpoints are disabled: {TOKEN_ENV} is not set.",
                        _409="Another update, promotion or rollback holds the workspace, or "
                             "the action is not possible (no such version, nothing to roll "
                             "back to).")

    @app.post("/update", dependencies=[Depends(admin)], responses=refusals)
    def update() -> dict[str, Any]:
        from conveyor import pipeline

        try:
            result = pipeline.update(config)
        except LockedError as exc:  # another update, promotion or rollback is running
            raise HTTPException(status_code=409, detail=str(exc)) from None
        holder.refresh(force=True)
        return {"ok": result.ok, "message": result.message, "version": result.version}

    @app.post("/promote/{version}", dependencies=[Depends(admin)], responses=refusals)
    def promote(version: int = UrlPath(..., ge=1, le=LARGEST_VERSION)) -> dict[str, Any]:
        from conveyor import pipeline

        try:
            pipeline.promote(config, version, "promoted through the API")
        except ConveyorError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        served = holder.refresh(force=True)
        return {"model_version": served.production.version if served else None}

    @app.post("/rollback", dependencies=[Depends(admin)], responses=refusals)
    def rollback() -> dict[str, Any]:
        from conveyor import pipeline

        try:
            version = pipeline.rollback(config, "rolled back through the API")
        except ConveyorError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        holder.refresh(force=True)
        return {"model_version": version}

    def openapi() -> dict[str, Any]:
        """FastAPI's schema, with the columns of the model being served as the record."""
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(title=app.title, version=app.version,
                                             description=app.description, routes=app.routes)
        document = copy.deepcopy(app.openapi_schema)
        served = holder.served
        if served is not None:
            enricher = served.enrichers.get(served.production.version)
            record = record_schema(served.production.manifest["schema"],
                                   enricher.added if enricher else frozenset(),
                                   as_of_column(enricher))
            body = document["components"]["schemas"]["PredictRequest"]["properties"]
            body["records"]["items"] = record
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    holder.refresh(force=True)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` with several workers: the config path from the env."""
    from conveyor.config import load_config

    return create_app(load_config(os.environ.get("CONVEYOR_CONFIG", "conveyor.yaml")))


def serve(config: Config, config_path: str, workers: int = 1) -> None:
    """Run the API with uvicorn (blocking)."""
    import uvicorn

    if workers == 1:
        uvicorn.run(create_app(config), host=config.serve.host, port=config.serve.port,
                    log_level="info")
        return
    os.environ["CONVEYOR_CONFIG"] = str(config_path)
    uvicorn.run("conveyor.serve.api:app_from_env", factory=True, host=config.serve.host,
                port=config.serve.port, workers=workers, log_level="info")
