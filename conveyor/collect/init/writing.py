"""The config ``conveyor init`` writes: built from what was inferred, rendered as
commented YAML, written atomically."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conveyor.collect.init.sample import Sample
from conveyor.collect.init.stream_plan import StreamPlan
from conveyor.config import default_families
from conveyor.errors import InputError
from conveyor.io.atomic import atomic_write_text
from conveyor.train.families import build_estimator


def families_for(task: str, seed: int) -> tuple[dict[str, Any] | None, str]:
    """Return the library's default families with grids the task's estimators take.

    None when the defaults fit as they are (nothing is written). A grid parameter
    the task's estimator lacks is dropped, except the regression ``alpha`` of the
    linear family, which becomes LogisticRegression's ``C = 1 / alpha``.
    """
    families: dict[str, Any] = {}
    changed: list[str] = []
    for name, family in default_families().items():
        valid = build_estimator(name, task, {}, seed).get_params()
        grid: dict[str, list[Any]] = {}
        for key, values in family.grid.items():
            if key in valid:
                grid[key] = list(values)
            elif key == "alpha" and "C" in valid:
                grid["C"] = sorted(1 / v for v in values)
                changed.append(f"{name}: alpha -> C = 1/alpha")
            else:
                changed.append(f"{name}: {key} dropped")
        families[name] = {"enabled": family.enabled, "grid": grid}
    if not changed:
        return None, ""
    return families, (f"the library's default grids, fitted to {task} "
                      f"({'; '.join(changed)})")


@dataclass(frozen=True)
class Inferred:
    """What ``conveyor init`` inferred from the sample, each choice with its reason."""

    target: str
    time_column: str
    task: str
    task_reason: str
    excluded: dict[str, str]  # column -> reason
    categorical: dict[str, str]  # column -> reason
    stream: StreamPlan
    calendar: tuple[list[str], str] = ([], "")  # parts of the time column, and why
    derived: tuple[tuple[dict[str, Any], str], ...] = ()  # derived features, each with why
    history: tuple[tuple[dict[str, Any], str], ...] = ()  # history features, each with why


def build_config(sample: Sample, source_path: str,
                 inferred: Inferred) -> tuple[dict[str, Any], dict[str, str]]:
    """Return the config mapping and its comments (keyed by dotted path).

    ``validate.metric`` is left to the caller: it is the library's default for the
    task, read from the parsed config.
    """
    time_column, task, stream = inferred.time_column, inferred.task, inferred.stream
    excluded, categorical = inferred.excluded, inferred.categorical
    source: dict[str, Any] = {"kind": sample.kind, "path": source_path,
                              "time_column": time_column}
    notes = {"workspace": "state folder: database, raw batches, models, reports",
             "seed": "seed of every random choice",
             "source.kind": f"from the extension {sample.path.suffix}",
             "source.time_column": "the stream is cut into windows on it",
             "target.task": inferred.task_reason,
             "columns.features": "null: every column except target, time and exclude",
             "columns.categorical": "null: text columns are categories, numbers are numbers",
             "quality.min_rows": "a batch with fewer rows is quarantined (kept, not trained on)",
             **sample.notes, **stream.notes}
    defaults = {"delimiter": ",", "encoding": "utf-8", "decimal": "."}
    options = {k: v for k, v in sample.options.items() if defaults.get(k) != v}
    if options:
        source["csv"] = options
    else:
        notes.pop("source.csv", None)
    columns = {"features": None, "exclude": list(excluded),
               "categorical": list(categorical) or None}
    notes.update({f"columns.exclude[{c}]": r for c, r in excluded.items()})
    notes.update({f"columns.categorical[{c}]": r for c, r in categorical.items()})
    if categorical:
        notes["columns.categorical"] = "numeric-looking columns read as categories"
    config = {"workspace": "workspace", "seed": 42, "source": source,
              "target": {"column": inferred.target, "task": task}, "columns": columns,
              "stream": stream.section, "quality": {"min_rows": stream.min_rows}}
    features = _features(inferred, notes)
    if features:
        config["features"] = features
    families, why = families_for(task, 42)
    if families is not None:
        config["train"] = {"families": families}
        notes["train.families"] = why
    return config, notes


def _features(inferred: Inferred, notes: dict[str, str]) -> dict[str, Any]:
    """The ``features`` section: calendar parts of the time column and derived columns."""
    features: dict[str, Any] = {}
    parts, why = inferred.calendar
    if parts:
        features["calendar"] = parts
        features["timezone"] = "UTC"
        notes["features.calendar"] = why
        notes["features.timezone"] = "calendar parts are read in this zone; set the local one"
    if inferred.derived:
        features["derived"] = [spec for spec, _ in inferred.derived]
        notes.update({f"features.derived[{spec}]": reason for spec, reason in inferred.derived})
    if inferred.history:
        features["history"] = [spec for spec, _ in inferred.history]
        notes["features.history"] = ("the target's own past, point in time: a row reads "
                                     "labels one window old; delete a line to drop one")
        notes.update({f"features.history[{spec}]": reason for spec, reason in inferred.history})
    return features


COMMENT_COLUMN = 30
FLOW_WIDTH = 70  # a section or list without inner comments stays on one line up to this


def _reads_back(text: str, value: str) -> bool:
    try:
        return (yaml.safe_load(f"k: {text}\n") == {"k": value}
                and yaml.safe_load(f"- {text}\n") == [value])
    except yaml.YAMLError:
        return False


def _scalar(value: Any) -> str:
    """Return a value as a YAML flow scalar that reads back as itself after ``key:`` or ``-``."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10_000)
    text = text.removesuffix("\n...\n").strip()
    if isinstance(value, str) and not _reads_back(text, value):
        text = yaml.safe_dump(value, default_style='"', allow_unicode=True, width=10_000).strip()
    return text


def _line(text: str, note: str | None) -> str:
    if not note:
        return text
    return f"{text.ljust(COMMENT_COLUMN - 1)} # {note}"


def _has_notes(path: str, notes: dict[str, str]) -> bool:
    return any(key.startswith((f"{path}.", f"{path}[")) for key in notes)


def _render(mapping: dict[str, Any], notes: dict[str, str], prefix: str,
            indent: int) -> list[str]:
    lines: list[str] = []
    pad = " " * indent
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        head = f"{pad}{_scalar(key)}:"
        flow = _scalar(value)
        if isinstance(value, dict | list) and value and (
                _has_notes(path, notes) or (isinstance(value, dict) and indent == 0)
                or len(head) + len(flow) > FLOW_WIDTH):
            if indent == 0 and lines:
                lines.append("")
            lines.append(_line(head, notes.get(path)))
            if isinstance(value, dict):
                lines.extend(_render(value, notes, f"{path}.", indent + 2))
            else:
                lines.extend(_line(f"{pad}  - {_scalar(item)}", notes.get(f"{path}[{item}]"))
                             for item in value)
        else:
            lines.append(_line(f"{head} {flow}", notes.get(path)))
    return lines


def render_config(config: dict[str, Any], notes: dict[str, str], header: str = "") -> str:
    """Return the config as YAML text with a short comment after each inferred value.

    >>> print(render_config({"target": {"column": "y", "task": "regression"},
    ...                      "columns": {"exclude": ["id"]}},
    ...                     {"target.task": "numeric", "columns.exclude[id]": "identifier"}))
    target:
      column: y
      task: regression            # numeric
    <BLANKLINE>
    columns:
      exclude:
        - id                      # identifier
    <BLANKLINE>
    """
    body = "\n".join(_render(config, notes, "", 0))
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return f"{comment}\n{body}\n" if comment else f"{body}\n"


def write_config(path: Path, text: str, force: bool = False) -> Path:
    """Write the config text atomically; refuse to replace a file unless ``force``."""
    if path.exists() and not force:
        raise InputError(f"'{path}' already exists; pass --force to overwrite it")
    if path.is_dir():
        raise InputError(f"'{path}' is a folder; pass --out FILE")
    return atomic_write_text(path, text)


def relative_path(data_file: Path, folder: Path) -> str:
    """Return the data file's path as the config holds it: relative to the config's folder
    when they share a folder below the root (the pair can move together), else absolute."""
    try:
        shared = Path(os.path.commonpath([data_file, folder]))
    except ValueError:  # another drive on Windows
        return data_file.as_posix()
    if shared == Path(shared.anchor):
        return data_file.as_posix()
    return Path(os.path.relpath(data_file, folder)).as_posix()
