"""``conveyor init``: a first, commented ``conveyor.yaml`` inferred from a data file.

A user with a table conveyor has never seen runs ``conveyor init sales.csv
--target revenue`` and gets a config that ``conveyor update`` runs on without
edits. Inference looks at a sample (the first :data:`SAMPLE_ROWS` rows: CSV via
``nrows``, Parquet by row groups, Excel via ``nrows``) and, where cheap, at the
time column of the whole file (CSV: that column only; Parquet: that column
only; Excel: the sample). The rules, in order:

source
    The kind comes from the extension (``.csv .tsv .txt`` CSV, ``.parquet``,
    ``.xlsx``). A CSV's delimiter is sniffed among comma, semicolon, tab and
    pipe (the one that splits the first lines into the most, equally wide,
    fields); its encoding is UTF-8 or else cp1252 / latin-1; with a
    non-comma delimiter, text columns that are all numbers written with a
    decimal comma (``3,14``) make the decimal mark ``,``. Only options that
    differ from the defaults are written.
time column
    ``--time``, or the one column that holds dates: a datetime column, or a
    text column whose sample parses with ``pd.to_datetime(format="mixed")``
    for at least 95 % of its non-missing values (and is not just numbers).
    Among several, the one whose name has a word like time, date or
    timestamp; none, or still several: an error that lists the candidates and
    says to pass ``--time``. The chosen column must parse as conveyor parses
    it on update (:func:`conveyor.collect.sources.parse_time`).
task
    ``--task``, or: a text or boolean target is classification; an integer
    target (integer-valued, missing values allowed) with at most 10 distinct
    values is classification; anything else numeric is regression.
excluded columns
    Never the target or the time column. A column is excluded when at least
    95 % of it is missing, when it is constant, when it is an identifier
    (a different value in every row of a sample of 20+ rows, not a float:
    text, or integers that are sequential, dense, or named like ``id``/
    ``key``), or when it is another date/time column (as text it would be a
    category with a level per value). Each reason is written as a comment.
    A text column that is numbers but for a few stray values (which stops an
    update) is listed under ``columns.categorical`` instead, with a comment.
stream
    The pandas offset among :data:`WINDOWS` whose non-empty windows number
    20 or more, closest to 50, with a median of at least
    :data:`MIN_BATCH_ROWS` rows each (ties: the wider window). When no window
    qualifies (a short time span), row-count batches (``stream.rows``) of
    about a fiftieth of the rows, at least :data:`MIN_BATCH_ROWS`.
    ``initial_batches`` is 2, or as many as the first
    :data:`INITIAL_ROWS` rows need, but at most half of the batches.
    ``quality.min_rows`` is 20, lowered to half of a small batch so that
    ordinary batches are not quarantined for their size.
metric
    The library's default selection metric for the task
    (:attr:`conveyor.config.Config.metric`).
families and features
    The library defaults (no feature engineering). A default grid parameter
    that the task's estimator does not take is fitted to it and written with
    a comment (the linear grid's Ridge ``alpha`` becomes LogisticRegression's
    ``C = 1 / alpha`` for classification); otherwise ``train`` is not written.

The package follows those steps: :mod:`.sample` reads the sample, :mod:`.columns`
infers the column roles and the task, :mod:`.stream_plan` the stream, and
:mod:`.writing` builds, renders and writes the config.

The config is validated with :func:`conveyor.config.parse_config` and against
the sample's column roles before it is written, atomically, and never over an
existing file unless ``force``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from conveyor.collect.init.columns import (
    excluded_columns,
    find_time_column,
    infer_task,
    stray_text_columns,
    time_candidates,
)
from conveyor.collect.init.sample import (
    SAMPLE_ROWS,
    Sample,
    read_sample,
    read_times,
    sniff_delimiter,
    source_kind,
)
from conveyor.collect.init.series import history_features
from conveyor.collect.init.stream_plan import StreamPlan, choose_stream
from conveyor.collect.init.understand import calendar_parts, clock_columns, leaks, time_copies
from conveyor.collect.init.writing import (
    Inferred,
    build_config,
    families_for,
    render_config,
    write_config,
)
from conveyor.collect.init.writing import relative_path as _relative
from conveyor.config import Config, parse_config
from conveyor.errors import ConveyorError, InputError
from conveyor.prepare.roles import resolve_roles

__all__ = ["InitResult", "Inferred", "Sample", "StreamPlan", "build_config", "choose_stream",
           "excluded_columns", "families_for", "find_time_column", "infer", "infer_task",
           "init_config", "read_sample", "read_times", "render_config", "sniff_delimiter",
           "source_kind", "stray_text_columns", "time_candidates", "write_config"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InitResult:
    """What ``conveyor init`` inferred and wrote."""

    path: Path
    config: dict[str, Any]
    text: str
    rows_sampled: int
    total_rows: int
    time_column: str
    task: str
    task_reason: str
    stream: StreamPlan
    excluded: dict[str, str]

    def summary(self) -> str:
        """Return the one-line summary the CLI prints."""
        excluded = ", ".join(f"{c} ({r.split(':')[0]})" for c, r in self.excluded.items())
        return (f"sampled {self.rows_sampled:,} of {self.total_rows:,} rows; time column "
                f"'{self.time_column}'; task {self.task}; {self.stream.describe()}; "
                f"excluded: {excluded or 'none'}")


def infer(sample: Sample, target: str, time: str | None = None,
          task: str | None = None) -> tuple[Inferred, pd.Series]:
    """Infer the column roles, the task and the stream plan from a sample; also return
    the parsed time column the plan was made from."""
    frame = sample.frame
    if target not in frame.columns:
        raise InputError(f"no target column '{target}' in '{sample.path}'; columns: "
                         f"{', '.join(frame.columns)}")
    time_column = find_time_column(frame, target, time)
    times = read_times(sample, time_column)
    if stray_text_columns(frame[[target]], set()):
        raise InputError(f"target column '{target}' is numeric but for a few text values; "
                         "fix them in the data before training on it")
    task, task_reason = infer_task(frame[target], task)
    log.info("time column: %s", time_column)
    log.info("task: %s (%s)", task, task_reason)
    roles = {target, time_column}
    excluded = excluded_columns(frame, keep=roles)
    sample_times = times.iloc[:len(frame)].reset_index(drop=True)  # the sample's rows
    excluded.update(time_copies(frame, sample_times, skip=roles | set(excluded)))
    excluded.update(leaks(frame, target, task, skip=roles | set(excluded)))
    for column, why in excluded.items():
        if why.startswith(("target leakage", "a numeric copy")):
            log.warning("excluded %s: %s", column, why)
    categorical = stray_text_columns(frame, skip=roles | set(excluded))
    derived = tuple(_clock_feature(column, kind) for column, kind in
                    clock_columns(frame.drop(columns=[target])).items()
                    if column not in excluded and column != time_column)
    stream = choose_stream(times)
    history = tuple(history_features(sample_times, frame[target], target,
                                     stream.section.get("window"), task))
    for spec, why in history:
        log.info("history feature %s: %s", spec, why)
    return Inferred(target, time_column, task, task_reason, excluded, categorical,
                    stream, calendar_parts(times), derived, history), times


def _clock_feature(column: str, kind: str) -> tuple[dict[str, Any], str]:
    """A derived feature giving a clock column's number, with the comment init writes."""
    if kind == "time_of_day":
        return ({"name": f"{column}_hour_of_day", "op": kind, "columns": [column]},
                f"{column} holds times of day: kept as a category, and as hours here")
    return ({"name": f"{column}_day_number", "op": kind, "columns": [column]},
            f"{column} holds day names: kept as a category, and as 0 (Monday) to 6 here")


def init_config(data_file: Path, target: str, out: Path, time: str | None = None,
                task: str | None = None, force: bool = False,
                max_rows: int = SAMPLE_ROWS) -> InitResult:
    """Infer a config for ``data_file``, validate it and write it to ``out``."""
    data_file, out = Path(data_file).resolve(), Path(out).resolve()
    if out.exists() and not force:  # fail before reading a large file
        raise InputError(f"'{out}' already exists; pass --force to overwrite it")
    sample = read_sample(data_file, max_rows)
    inferred, times = infer(sample, target, time, task)
    config, notes = build_config(sample, _relative(data_file, out.parent), inferred)
    metric = _validated(config, out).metric  # the library's default for the task
    config["validate"] = {"metric": metric}
    notes["validate.metric"] = f"the default selection metric for {inferred.task}"
    header = (f"conveyor configuration for {data_file.name}, written by `conveyor init`\n"
              f"from {len(sample.frame):,} sampled rows. Every key is documented in "
              "docs/configuration.md;\nsee docs/your-data.md for what to check and edit. "
              "Paths are relative to this file.")
    text = render_config(config, notes, header)
    _check_text(text, config, sample.frame, inferred, out)
    if (out.parent / "workspace").exists():
        log.warning("%s already exists: `update` continues from the batches and models kept "
                    "there; delete it to start the stream over",
                    out.parent / "workspace")
    write_config(out, text, force)
    return InitResult(out, config, text, len(sample.frame), len(times), inferred.time_column,
                      inferred.task, inferred.task_reason, inferred.stream, inferred.excluded)


def _check_text(text: str, config: dict[str, Any], frame: pd.DataFrame, inferred: Inferred,
                out: Path) -> None:
    """The rendered text must read back as built, parse, and leave usable features."""
    if yaml.safe_load(text) != config:
        raise ConveyorError("conveyor init rendered a config that does not read back as "
                            "built; please report this with the data file's header")
    parsed = _validated(yaml.safe_load(text), out)
    try:
        resolve_roles(frame, parsed.columns, inferred.target, inferred.time_column)
    except ConveyorError as exc:
        raise InputError(f"the inferred config leaves no usable features: {exc}") from None


def _validated(data: dict[str, Any], out: Path) -> Config:
    try:
        return parse_config(data, out.parent)
    except ConveyorError as exc:
        raise ConveyorError(f"conveyor init built an invalid config ({exc}); please report "
                            "this with the data file's header") from None
