"""The FastAPI application factory (the routes are in :mod:`conveyor.serve.api.routes`),
the OpenAPI document with the served model's record, and the uvicorn entry points."""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi

from conveyor.config import Config
from conveyor.serve.api.batching import MicroBatcher
from conveyor.serve.api.checks import BodyLimit, as_of_column, validation_problem
from conveyor.serve.api.deps import TOKEN_ENV, ApiState
from conveyor.serve.api.routes import ROUTERS
from conveyor.serve.api.routes.predict import predict_jobs
from conveyor.serve.api.schemas import record_schema
from conveyor.serve.api.state import ModelHolder

log = logging.getLogger(__name__)

__all__ = ["TOKEN_ENV", "app_from_env", "create_app", "serve"]


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Write the buffered request figures when the server stops."""
    yield
    app.state.conveyor.batcher.close()
    app.state.conveyor.requests.flush()


def _served_openapi(app: FastAPI, holder: ModelHolder) -> Callable[[], dict[str, Any]]:
    """``app.openapi``: FastAPI's schema, with the columns of the model being served as the
    record."""

    def openapi() -> dict[str, Any]:
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

    return openapi


DOCS_FILES = {  # the Swagger UI files /docs needs, served by name from swagger-ui-py
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def _offline_docs(app: FastAPI) -> None:
    """``GET /docs`` with the Swagger UI's JavaScript and CSS served by this app (from the
    installed ``swagger-ui-py`` package: Swagger UI 5, which reads OpenAPI 3.1), so the
    page works with no network; only the three files it needs are served, each by its
    exact name."""
    from pathlib import Path

    import swagger_ui
    from fastapi import HTTPException
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import FileResponse, HTMLResponse

    folder = Path(swagger_ui.__file__).parent / "static"

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title="conveyor API",
            swagger_js_url="/docs/swagger-ui-bundle.js", swagger_css_url="/docs/swagger-ui.css",
            swagger_favicon_url="/docs/favicon-32x32.png")

    @app.get("/docs/{name}", include_in_schema=False)
    def docs_file(name: str) -> FileResponse:
        if name not in DOCS_FILES:
            raise HTTPException(status_code=404, detail="not found")
        return FileResponse(folder / name, media_type=DOCS_FILES[name])


def create_app(config: Config) -> FastAPI:
    """Build the FastAPI application for one workspace."""
    from threadpoolctl import threadpool_limits

    # one BLAS/OpenMP thread per worker: several workers on few cores collapse otherwise
    threadpool_limits(1)
    state = ApiState.open(config)
    app = FastAPI(title="conveyor", version="1", lifespan=_lifespan, docs_url=None,
                  redoc_url=None, description="Predictions from the conveyor's production "
                  "model.")
    _offline_docs(app)
    batch = config.serve.batch
    state.batcher = MicroBatcher(functools.partial(predict_jobs, state), batch.max_rows,
                                 batch.max_wait_ms)
    app.state.conveyor = state  # what the routes' dependencies read (deps.api_state)
    app.add_middleware(BodyLimit, limit=config.serve.max_body_bytes)
    app.add_exception_handler(RequestValidationError, validation_problem)
    for router in ROUTERS:
        app.include_router(router)
    app.openapi = _served_openapi(app, state.holder)  # type: ignore[method-assign]
    state.holder.refresh(force=True)
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
