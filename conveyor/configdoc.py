"""Generate docs/configuration.md from the pydantic config models, so it cannot go stale.

    python -m conveyor.configdoc > docs/configuration.md
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from conveyor.config import Config

HEADER = """# conveyor.yaml reference

Generated from the pydantic models in `conveyor/config/` by
`python -m conveyor.configdoc > docs/configuration.md`; a test fails when this
file and the code disagree. Paths are relative to the config file's folder.
Unknown keys are errors.
"""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is list:
        return f"list of {_type_name(typing.get_args(annotation)[0])}"
    if origin is dict:
        key, value = typing.get_args(annotation)
        return f"map {_type_name(key)} -> {_type_name(value)}"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default if field.default_factory is None else field.default_factory()
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, dict) and value and isinstance(next(iter(value.values())), BaseModel):
        value = {k: v.model_dump(mode="json") for k, v in value.items()}
    return f"`{json.dumps(value, default=str)}`"


def _section(model: type[BaseModel], prefix: str, out: list[str]) -> None:
    rows, nested = [], []
    for name, field in model.model_fields.items():
        key = field.alias or name
        annotation = field.annotation
        inner = typing.get_args(annotation)[0] if typing.get_origin(annotation) is list else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested.append((f"{prefix}{key}", annotation))
        elif isinstance(inner, type) and issubclass(inner, BaseModel):
            nested.append((f"{prefix}{key}[]", inner))
        rows.append(f"| `{prefix}{key}` | {_type_name(annotation)} | {_default(field)} | "
                    f"{(field.description or '').replace('|', '/')} |")
    out += [f"## `{prefix.rstrip('.') or 'top level'}`", "", "| key | type | default | meaning |",
            "|---|---|---|---|", *rows, ""]
    for key, sub in nested:
        _section(sub, key + ".", out)


def reference() -> str:
    """Return the Markdown reference of every config key."""
    out = [HEADER]
    _section(Config, "", out)
    return "\n".join(out)


if __name__ == "__main__":
    print(reference(), end="")
