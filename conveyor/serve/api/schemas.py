"""What a request and an answer look like: pydantic models with bounded validation,
and the JSON Schema of one record built from the served model's feature schema."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError

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


def answers(**statuses: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for refusals with a ``{"detail": "..."}`` body: ``_401="..."``."""
    return {int(code.lstrip("_")): {"model": Problem, "description": text}
            for code, text in statuses.items()}


class PredictResponse(BaseModel):
    predictions: list[Any]
    model_version: int = Field(..., description="The version that answered: its champion "
                               "or its fallback, as `routes` says per record.")
    variant: str = Field(..., description="production, or staging for the challenger share.")
    routes: list[str] = Field(..., description="Per record, the model of `model_version` "
                              "that answered: champion or fallback.")
    route_reasons: list[str] = Field(..., description="Per record, why it is unusual (the "
                                     "rule that flagged it, e.g. out_of_range:temp), or ''. "
                                     "A flagged record stays with the champion unless the "
                                     "fallback was proven better on such rows.")


def value_problem(value: Any, kind: str) -> tuple[str, str] | None:
    """Why a JSON value cannot go into a column of this kind: (error type, message), or None.

    Numbers given as text are accepted as inference accepts them from a CSV file.

    >>> value_problem(10**400, "numeric")
    ('value_error', 'must be a finite number')
    >>> value_problem("7.5", "numeric") is None, value_problem([1], "categorical")[0]
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
