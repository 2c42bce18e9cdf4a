"""Checks on what a client sends, each bounded by the request's size: the body limit,
the records against the model's schema, times, the admin token; and the 422 answer."""

from __future__ import annotations

import hashlib
import hmac
from collections import deque
from typing import Any

import numpy as np
import pandas as pd
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.collect.enrich import Enricher
from conveyor.serve.api.schemas import MAX_PROBLEMS, value_problem
from conveyor.serve.inputs import ISO_TIME


def _safe(value: Any) -> Any:
    """A location part or message that any JSON writer can write (lone surrogates escaped)."""
    return value.encode("utf-8", "backslashreplace").decode() if isinstance(value, str) \
        else value


async def validation_problem(_: Request, exc: Exception) -> JSONResponse:
    """422 naming at most the first MAX_PROBLEMS problems, without echoing their input."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    detail = [{"loc": [_safe(part) for part in error["loc"]], "msg": _safe(str(error["msg"]))[:300],
               "type": error["type"]} for error in errors[:MAX_PROBLEMS]]
    if len(errors) > MAX_PROBLEMS:
        detail.append({"loc": ["body"], "type": "too_many_errors",
                       "msg": f"{len(errors) - MAX_PROBLEMS} more problem(s) not shown"})
    return JSONResponse({"detail": detail}, status_code=422)


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


def check_times(records: list[dict[str, Any]], columns: list[str], joined: str | None) -> None:
    """Raise 422 naming the row of a time that is not text or a number, or that falls
    outside the years pandas' nanosecond timestamps hold (1677-2262), which the as-of
    join and the calendar features need; or that is missing in ``joined``, the column an
    as-of join of enrichment tables needs. Unparseable text is named later. ISO 8601
    text with a year well inside the range needs no parse."""
    low, high = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    for column in dict.fromkeys([*columns, *([joined] if joined else [])]):
        if not any(column in record for record in records):
            continue
        values = [record.get(column) for record in records]
        if column == joined:
            absent = [row for row, v in enumerate(values) if v is None or v != v]
            if absent:
                raise HTTPException(status_code=422, detail=[{
                    "loc": ["body", "records", absent[0], column], "type": "missing",
                    "msg": f"'{column}' is needed to join the enrichment tables or compute "
                           f"the history features; record {absent[0]} has none (or give "
                           "those columns yourself)"}])
        unsure: list[tuple[int, Any]] = []
        for row, value in enumerate(values):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                _refuse_time(row, column, value)
            if not (isinstance(value, str) and _inside_years(value.strip())):
                unsure.append((row, value))
        if unsure:
            text = pd.Series([v.strip() if isinstance(v, str) else v for _, v in unsure],
                             dtype=object)
            parsed = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
            bad = ((parsed < low) | (parsed > high)).to_numpy()
            if bad.any():
                row, value = unsure[int(np.flatnonzero(bad)[0])]
                _refuse_time(row, column, value)


_YEARS = range(pd.Timestamp.min.year + 1, pd.Timestamp.max.year)


def _inside_years(text: str) -> bool:
    """ISO 8601 text whose year is inside pandas' range with a year to spare."""
    return ISO_TIME.fullmatch(text) is not None and int(text[:4]) in _YEARS


def as_of_column(enricher: Enricher | None, records: list[dict[str, Any]] | None = None
                 ) -> str | None:
    """The time column the enricher needs (an as-of join or history features) when it
    works on ``records`` (some record lacks a column it adds), or None."""
    if enricher is None or (records is not None and all(
            c in record for record in records for c in enricher.features)):
        return None
    return enricher.time_column if enricher.needs_time else None


def _refuse_time(row: int, column: str, value: Any) -> None:
    low, high = pd.Timestamp.min.year + 1, pd.Timestamp.max.year - 1
    raise HTTPException(status_code=422, detail=[{
        "loc": ["body", "records", row, column], "type": "value_error",
        "msg": f"'{column}' must be a time between {low} and {high}, got {value!r}"[:200]}])


def records_frame(records: list[dict[str, Any]], schema: dict[str, dict[str, Any]]
                  ) -> pd.DataFrame:
    """Records :func:`check_records` passed, as a frame: the schema's columns some record
    holds, and the first record's other columns (a time the enrichment joins on)."""
    present = [c for c in schema if any(c in r for r in records)]
    extra_time = [c for c in records[0] if c not in schema]
    return pd.DataFrame.from_records(records, columns=present + extra_time)


_NONE = type(None)


def _plainly_valid(records: list[dict[str, Any]], schema: dict[str, dict[str, Any]],
                   optional: frozenset[str]) -> bool:
    """Whether :func:`check_records` would pass the records, decided a column at a time
    for the usual case (every column present, finite JSON numbers in numeric columns);
    False means "look value by value", not "invalid"."""
    required = {c for c in schema if c not in optional}
    if not all(record.keys() >= required for record in records):
        return False
    for column, spec in schema.items():
        values = [record.get(column) for record in records]
        kinds = set(map(type, values))
        if spec["kind"] == "numeric":
            if not kinds <= {int, float, _NONE}:
                return False
            try:
                numbers = np.array([v for v in values if v is not None], dtype=float)
            except OverflowError:  # an integer beyond any float
                return False
            if not np.isfinite(numbers).all():
                return False
        elif not kinds <= {str, int, float, _NONE}:
            return False
    return True


def check_records(records: list[dict[str, Any]], schema: dict[str, dict[str, Any]],
                  optional: frozenset[str] = frozenset()) -> None:
    """Check records against the schema; raise 422 naming the row and column.

    ``optional`` columns (joined from enrichment tables) may be left out.
    """
    if _plainly_valid(records, schema, optional):
        return
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
            problem = value_problem(value, spec["kind"])
            if problem is not None:
                kind, message = problem
                shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
                errors.append({"loc": ["body", "records", i, column], "type": kind,
                               "msg": f"'{column}' {message}, got {shown}"})
    if errors:
        raise HTTPException(status_code=422, detail=errors[:MAX_PROBLEMS])
