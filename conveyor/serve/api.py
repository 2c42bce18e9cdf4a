"""The REST service: predictions from the production (or staging) model over HTTP.

One process loads the production model once, verified by sha256, and looks
for a newly promoted version every ``serve.reload_seconds``; a swap replaces
one reference, so in-flight requests finish on the model they started with.
Request figures are buffered in memory and written to the metadata store
every ``serve.log_seconds`` (one writer, few transactions).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import logging
import math
import os
import threading
import time
from collections import Counter as Counter_
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi import Path as UrlPath
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.collect.enrich import Enricher, make_enricher
from conveyor.config import Config
from conveyor.errors import ConveyorError, InputError, LockedError, SourceError
from conveyor.serve.bundle import LoadedModel, load_version
from conveyor.serve.predict import features_frame, peak_memory_mb, predict_rows
from conveyor.serve.routing import route_counts
from conveyor.store import Store
from conveyor.store.db import utcnow
from conveyor.validate import registry
from conveyor.workspace import Workspace

log = logging.getLogger(__name__)

TOKEN_ENV = "CONVEYOR_ADMIN_TOKEN"
LARGEST_VERSION = 2**63 - 1  # SQLite's INTEGER; a larger path parameter is a 422, not a 500


MAX_PROBLEMS = 20  # a 422 names at most this many problems, however many the request has


def _encodable(text: str) -> bool:
    r"""Whether ``text`` is valid Unicode (JSON lets a client send a lone surrogate such as
    ``"\ud800"``, which no UTF-8 writer accepts).

    >>> _encodable("caf\u00e9"), _encodable("\ud800")
    (True, False)
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_records(value: Any) -> Any:
    """Refuse a ``records`` list at its first record that is not an object, or whose key or
    text value is not valid Unicode; cost linear in the body, one error whatever its size."""
    if not isinstance(value, list):
        return value  # pydantic names the wrong type
    for i, record in enumerate(value):
        if not isinstance(record, dict):
            raise PydanticCustomError("dict_type", "record {row} must be an object of column: "
                                      "value pairs", {"row": i})
        for key, item in record.items():
            if not _encodable(key) or (isinstance(item, str) and not _encodable(item)):
                shown = key.encode("utf-8", "backslashreplace").decode()[:60]
                raise PydanticCustomError(
                    "unicode_error", "record {row}: column '{column}' has text that is not "
                    "valid Unicode (a lone surrogate such as \\ud800)", {"row": i, "column": shown})
    return value


def _check_key(value: Any) -> Any:
    if isinstance(value, str) and not _encodable(value):
        raise PydanticCustomError("unicode_error", "the key is not valid Unicode (a lone "
                                  "surrogate such as \\ud800)")
    return value


class PredictRequest(BaseModel):
    """Rows to predict, each a mapping of column name to value."""

    records: Annotated[list[dict[str, Any]], BeforeValidator(_check_records)] = Field(
        ..., min_length=1, description="Rows as {column: value} objects.")
    key: Annotated[str | None, BeforeValidator(_check_key)] = Field(
        None, description="Sticky key for the champion/challenger split.")


class Problem(BaseModel):
    """Why a request was refused."""

    detail: str


def _answers(**statuses: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for refusals with a ``{"detail": "..."}`` body: ``_401="..."``."""
    return {int(code.lstrip("_")): {"model": Problem, "description": text}
            for code, text in statuses.items()}


def _safe(value: Any) -> Any:
    """A location part or message that any JSON writer can write (lone surrogates escaped)."""
    return value.encode("utf-8", "backslashreplace").decode() if isinstance(value, str) \
        else value


async def _validation_problem(_: Request, exc: Exception) -> JSONResponse:
    """422 naming at most the first MAX_PROBLEMS problems, without echoing their input."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    detail = [{"loc": [_safe(part) for part in error["loc"]], "msg": _safe(str(error["msg"]))[:300],
               "type": error["type"]} for error in errors[:MAX_PROBLEMS]]
    if len(errors) > MAX_PROBLEMS:
        detail.append({"loc": ["body"], "type": "too_many_errors",
                       "msg": f"{len(errors) - MAX_PROBLEMS} more problem(s) not shown"})
    return JSONResponse({"detail": detail}, status_code=422)


class PredictResponse(BaseModel):
    predictions: list[Any]
    model_version: int
    variant: str
    routes: list[str] | None = None  # per record: "champion" or the fallback's reason


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

    def refresh(self, force: bool = False) -> Served | None:
        """Reload when production or staging changed; at most once per reload period."""
        now = time.monotonic()
        if not force and now - self._checked < self.config.serve.reload_seconds:
            return self.served
        with self._lock:
            self._checked = now
            production, staging = self.store.production(), registry.staging(self.store)
            current = self.served
            same = current is not None and production is not None and \
                current.production.version == production["version"] and \
                (current.staging.version if current.staging else None) == \
                (staging["version"] if staging else None)
            if not same and production is not None:
                try:
                    loaded = self._load(production)
                    assert loaded is not None
                    challenger = self._load(staging)
                    enrichers = {m.version: make_enricher(self.config, m.features)
                                 for m in (loaded, challenger) if m is not None}
                    self.served = Served(loaded, challenger, enrichers)
                    log.info("serving v%d (staging: %s)", production["version"],
                             staging["version"] if staging else "none")
                except ConveyorError as exc:
                    log.error("cannot load the new model, keeping the old one: %s", exc)
        return self.served


class RequestLog:
    """Buffers per-request figures and writes one row per (version, variant) per period."""

    def __init__(self, store: Store, period: float) -> None:
        self.store, self.period = store, period
        self._lock = threading.Lock()
        self._buffer: dict[tuple[int, str], list[tuple[int, float]]] = defaultdict(list)
        self._routes: dict[tuple[int, str], Counter_[str]] = defaultdict(Counter_)
        self._last = time.monotonic()

    def add(self, version: int, variant: str, rows: int, seconds: float,
            routes: dict[str, int] | None = None) -> None:
        with self._lock:
            self._buffer[(version, variant)].append((rows, seconds))
            self._routes[(version, variant)].update(routes or {})
        if time.monotonic() - self._last >= self.period:
            self.flush()

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


def _choose(served: Served, key: str | None, share: float) -> tuple[LoadedModel, str]:
    """Pick production or staging; the same key always gets the same variant."""
    if served.staging is None or share <= 0:
        return served.production, "production"
    token = key if key is not None else os.urandom(8).hex()
    bucket = int.from_bytes(hashlib.sha256(token.encode()).digest()[:4], "big") / 2**32
    if bucket < share:
        return served.staging, "staging"
    return served.production, "production"


def _value_problem(value: Any, kind: str) -> tuple[str, str] | None:
    """Why a JSON value cannot go into a column of this kind: (error type, message), or None.

    Numbers given as text are accepted as inference accepts them from a CSV file.

    >>> _value_problem(10**400, "numeric")
    ('value_error', 'must be a finite number')
    >>> _value_problem("7.5", "numeric") is None, _value_problem([1], "categorical")[0]
    (True, 'type_error')
    """
    if kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return "type_error", "must be a number"
        try:
            number = float(value)
        except ValueError:
            return "type_error", "must be a number"
        except OverflowError:  # an integer beyond any float
            return "value_error", "must be a finite number"
        if not isinstance(value, str) and not math.isfinite(number):
            return "value_error", "must be a finite number"
        return None
    if kind == "datetime" and isinstance(value, bool):
        return "type_error", "must be a time"
    if not isinstance(value, str | int | float):  # categorical or datetime
        return "type_error", "must be a string"
    return None


def record_schema(schema: dict[str, dict[str, Any]], optional: frozenset[str] = frozenset(),
                  join_time: str | None = None) -> dict[str, Any]:
    """JSON Schema of one record for a model's feature schema (shown in the OpenAPI page).

    Columns the enrichment tables add are optional, ``join_time`` (the time an as-of
    join of those tables needs) is required; other keys are allowed.

    >>> record_schema({"x": {"kind": "numeric", "min": 0.0, "max": 2.0},
    ...                "c": {"kind": "categorical", "levels": ["a"]}})["required"]
    ['x', 'c']
    """
    properties: dict[str, Any] = {}
    for column, spec in schema.items():
        if spec["kind"] == "numeric":
            low, high = spec.get("min"), spec.get("max")
            example = low if low is None or high is None else (low + high) / 2
            properties[column] = {"type": ["number", "null"], "examples": [example]}
        elif spec["kind"] == "categorical":
            properties[column] = {"type": ["string", "number", "null"],
                                  "examples": list(spec.get("levels", []))[:1]}
        else:
            properties[column] = {"type": ["string", "null"], "format": "date-time"}
    required = [c for c in schema if c not in optional]
    if join_time is not None:
        properties[join_time] = {"type": "string", "format": "date-time"}
        required += [] if join_time in required else [join_time]
    return {"type": "object", "properties": properties, "additionalProperties": True,
            "required": required}


def tokens_match(given: str, expected: str) -> bool:
    """Compare an admin token in constant time (hashed first, so not even the length of
    the expected token shows in the timing).

    >>> tokens_match("s3cret", "s3cret"), tokens_match("s3cre", "s3cret")
    (True, False)
    """
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(),
                               hashlib.sha256(expected.encode()).digest())


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 before the app sees it.

    A declared ``Content-Length`` is checked first; a body sent without one (chunked) is
    counted as it arrives, so it cannot grow past the limit in memory either.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await self._refuse(scope, receive, send)
            return
        messages: deque[Message] = deque()
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client went away: the app sees that when it reads
            size += len(message.get("body", b""))
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.popleft() if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse({"detail": f"request body over {self.limit} bytes "
                                           "(serve.max_body_bytes)"}, status_code=413)
        await response(scope, receive, send)


def _check_times(frame: pd.DataFrame, columns: list[str], joined: str | None) -> None:
    """Raise 422 naming the row of a time that is not text or a number, or that falls
    outside the years pandas' nanosecond timestamps hold (1677-2262), which the as-of
    join and the calendar features need; or that is missing in ``joined``, the column an
    as-of join of enrichment tables needs. Unparseable text is named later."""
    low, high = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    for column in dict.fromkeys([*columns, *([joined] if joined else [])]):
        if column not in frame.columns:
            continue
        values = frame[column].astype(object)
        if column == joined and values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise HTTPException(status_code=422, detail=[{
                "loc": ["body", "records", row, column], "type": "missing",
                "msg": f"'{column}' is needed to join the enrichment tables; record {row} "
                       "has none (or give the joined columns yourself)"}])
        for row, value in enumerate(values):
            if value is not None and (isinstance(value, bool) or not isinstance(
                    value, str | int | float)):
                _refuse_time(row, column, value)
        text = values.map(lambda v: v.strip() if isinstance(v, str) else v)
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
        bad = ((parsed < low) | (parsed > high)).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            _refuse_time(row, column, values.iloc[row])


def _as_of_column(enricher: Enricher | None, frame: pd.DataFrame | None = None) -> str | None:
    """The time column the enricher joins on as of time (if it joins ``frame``), or None."""
    if enricher is None or (frame is not None and all(c in frame.columns
                                                      for c in enricher.features)):
        return None
    as_of = any(spec.time_column for spec, _ in enricher.tables)
    return enricher.time_column if as_of else None


def _refuse_time(row: int, column: str, value: Any) -> None:
    low, high = pd.Timestamp.min.year + 1, pd.Timestamp.max.year - 1
    raise HTTPException(status_code=422, detail=[{
        "loc": ["body", "records", row, column], "type": "value_error",
        "msg": f"'{column}' must be a time between {low} and {high}, got {value!r}"[:200]}])


def _records_frame(records: list[dict[str, Any]], schema: dict[str, dict[str, Any]],
                   optional: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Check records against the schema; raise 422 naming the row and column.

    ``optional`` columns (joined from enrichment tables) may be left out.
    """
    errors: list[dict[str, Any]] = []
    for i, record in enumerate(records):
        if len(errors) >= MAX_PROBLEMS:
            break
        missing = [c for c in schema if c not in record and c not in optional]
        if missing:
            shown = f"{missing[:10]}" + (f" and {len(missing) - 10} more" if len(missing) > 10
                                         else "")
            errors.append({"loc": ["body", "records", i], "type": "missing",
                           "msg": f"record {i} lacks required column(s) {shown}"})
            continue
        for column, spec in schema.items():
            value = record.get(column)
            if value is None:
                continue
            problem = _value_problem(value, spec["kind"])
            if problem is not None:
                kind, message = problem
                shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
                errors.append({"loc": ["body", "records", i, column], "type": kind,
                               "msg": f"'{column}' {message}, got {shown}"})
    if errors:
        raise HTTPException(status_code=422, detail=errors[:MAX_PROBLEMS])
    present = [c for c in schema if any(c in r for r in records)]
    extra_time = [c for c in records[0] if c not in schema]
    return pd.DataFrame.from_records(records, columns=present + extra_time)


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
    app.add_exception_handler(RequestValidationError, _validation_problem)

    @app.get("/health")
    def health() -> JSONResponse:
        served = holder.refresh()
        if served is None:
            return JSONResponse({"status": "no model", "detail": "run `conveyor update` first"},
                                status_code=503)
        return JSONResponse({"status": "ready", "model_version": served.production.version,
                             "staging_version": served.staging.version if served.staging
                             else None})

    @app.post("/predict", response_model=PredictResponse, responses=_answers(
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
        model, variant = _choose(served, body.key, config.serve.challenger_share)
        start = time.perf_counter()
        enricher = served.enrichers.get(model.version)
        schema = model.manifest["schema"]
        frame = _records_frame(body.records, schema, enricher.added if enricher else frozenset())
        _check_times(frame, [c for c, spec in schema.items() if spec["kind"] == "datetime"],
                     _as_of_column(enricher, frame))
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

    refusals = _answers(_401="Wrong or missing admin token.",
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
                                   _as_of_column(enricher))
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
