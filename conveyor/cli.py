"""The ``conveyor`` console command and the specification's ``run.py`` contract.

This module only parses arguments, sets up logging, calls the controller
(:mod:`conveyor.pipeline`) and prints results; errors become one readable line
on stderr and a non-zero exit code (a traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConveyorError
from conveyor.logs import setup_logging

if TYPE_CHECKING:  # each command imports the package (`--help` needs none of it)
    from conveyor import pipeline
    from conveyor.config import Config

DEFAULT_CONFIG = "conveyor.yaml"


def version_number(text: str) -> int:
    """A model version as a user writes it: ``11``, ``v11`` or ``v000011``.

    >>> version_number("v11"), version_number("11"), version_number("V000011")
    (11, 11, 11)
    """
    digits = text.strip().lower().removeprefix("v")
    if not digits.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not a model version; write 11 or v11")
    return int(digits)


def _load(path: str, debug: bool, console_level: int = logging.INFO,
          command: str = "") -> Config:
    from conveyor import preflight
    from conveyor.config import load_config

    setup_logging(None, logging.DEBUG if debug else console_level)
    config = load_config(path)
    preflight.check(config, command)  # before the log file: a refused command leaves nothing
    if command != "status" or config.workspace.exists():
        setup_logging(config.workspace / "logs", logging.DEBUG if debug else console_level)
    return config


def _fail(exc: BaseException, debug: bool) -> int:
    from conveyor import pipeline

    error = pipeline.ensure_error(exc)
    if debug or not isinstance(exc, ConveyorError):
        logging.getLogger("conveyor").debug("traceback", exc_info=exc)
    if debug:
        import traceback

        traceback.print_exception(exc)
    print(f"error: {error}", file=sys.stderr)
    return error.exit_code


def _run_update(config: Config) -> int:
    from conveyor import pipeline

    result = pipeline.update(config)
    stream = sys.stderr
    print(f"conveyor: {result.message}", file=stream)
    print(result.ok)
    return 0 if result.ok else 1


def _run_replay(config: Config, batches: int | None) -> int:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from conveyor import pipeline

    start = time.perf_counter()
    rows = 0
    with Progress(TextColumn("[bold]replay"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("batches, {task.fields[rows]:,} rows"), TimeElapsedColumn(),
                  transient=False) as progress:
        task = progress.add_task("replay", total=batches, rows=0)

        def advance(result: pipeline.UpdateResult) -> None:
            nonlocal rows
            rows += result.rows
            mark = "[green]ok[/green]" if result.ok else "[red]FALSE[/red]"
            ids = ",".join(map(str, result.batch_ids)) or "-"
            progress.console.print(f"batch {ids}: {mark} {result.message}", highlight=False)
            progress.update(task, advance=1, rows=rows)
            if progress.tasks[0].total is None:  # known once the source's cache exists
                left = pipeline.batches_left(config)
                if left is not None:
                    progress.update(task, total=progress.tasks[0].completed + left)

        results = pipeline.replay(config, batches, advance)
    ok = sum(r.ok for r in results)
    print(f"replayed {len(results)} batch(es), {rows} rows, {ok} ok, "
          f"{len(results) - ok} failed, in {time.perf_counter() - start:.1f} s")
    return 0


def _print_status(config: Config, as_json: bool) -> int:
    from conveyor import preflight
    from conveyor.status import read_status

    if not config.workspace.exists():  # say so; do not create it
        missing = preflight.missing_sources(config)
        if as_json:
            print(json.dumps({"workspace": str(config.workspace), "exists": False,
                              "missing": [str(path) for _, path in missing]}, indent=2))
            return 0
        print(f"no workspace yet at {config.workspace}: nothing ingested or trained. Next: "
              + (f"write the data the config reads ({preflight.listed(missing)})."
                 + preflight.demo_hint(config) if missing else "`python run.py -mode update`."))
        return 0
    state = read_status(config)
    if as_json:
        print(json.dumps(state, indent=2, allow_nan=False))
    else:
        print(status_text(state))
    return 0


def status_text(state: dict[str, Any]) -> str:
    """The workspace's state as a person reads it: a line per subject."""
    def version(row: dict[str, Any] | None) -> str:
        if row is None:
            return "none"
        params = ", ".join(f"{k}={v}" for k, v in sorted((row["params"] or {}).items()))
        score = "" if row["holdout"] is None else \
            f"; hold-out {row['metric']} {row['holdout']:.4g} as served"
        return (f"{row['version']} {row['family']} ({params or 'defaults'}){score}; trained "
                f"on {str(row['trained_on'][0])[:10]} .. {str(row['trained_on'][1])[:10]}")

    last = state["last_batch"]
    events = state["events"]
    lines = [
        ("workspace", state["workspace"]),
        ("target", state["target"]),
        ("stream", f"{state['batches']} batch(es): {state['accepted']} accepted, "
                   f"{state['quarantined']} quarantined; {state['rows']:,} rows; data up to "
                   f"{state['data_until'] or '-'}"),
        ("production", version(state["production"])),
        ("staging", version(state["staging"])),
        ("models", f"{state['models']} version(s); `conveyor models list` lists them"),
        ("events", f"data-drift alarms {events['data_drift']}, model-drift alarms "
                   f"{events['model_drift']}, window choices {events['window_choice']}, "
                   f"implausible scores {events['suspicious_score']}"),
    ]
    newest = state.get("last_version")
    if newest is not None:
        lines.append(("last update", f"made {newest['version']} ({newest['strategy'] or 'retrain'}"
                                     f", {newest['stage']}) at {newest['created_at']}: "
                                     f"{newest['reason'] or ''}".rstrip(": ")))
    disk = state.get("disk_mb") or {}
    lines.append(("disk", f"{sum(disk.values()):,.1f} MB: " + ", ".join(
        f"{k} {v:,.1f}" for k, v in disk.items())))
    if last is not None:
        why = f" ({last['reason']})" if last.get("reason") else ""
        lines.append(("last batch", f"{last['id']}: {str(last['window'][0])[:16]} .. "
                                    f"{str(last['window'][1])[:16]}, {last['rows']:,} rows, "
                                    f"{last['status']}{why}"))
    lines.append(("next", f"`python run.py -mode update` ingests the window from "
                          f"{str(state['next_window_start'] or 'the start')[:16]}"))
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in lines)


def _print_models(config: Config, args: argparse.Namespace) -> int:
    from conveyor import pipeline

    if args.action == "show":
        if args.version is None:
            raise ConveyorError("`conveyor models show` needs a VERSION, e.g. `models show 7`")
        print(json.dumps(pipeline.model_detail(config, args.version), indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    frame = pipeline.models(config)
    table = Table(title=f"models in {config.workspace}")
    for column in ("version", "stage", "family", "hyperparameters", config.metric,
                   "trained on", "rows", "created"):
        table.add_column(column)
    for row in frame.to_dict("records"):
        score = ((row["metrics"] or {}).get("holdout") or {}).get(config.metric)
        table.add_row(f"v{row['version']}", row["stage"], row["family"],
                      json.dumps(row["params"], sort_keys=True),
                      "" if score is None else f"{score:.4g}",
                      f"{row['window_start'][:10]} .. {row['window_end'][:10]}",
                      str(row["train_rows"]), row["created_at"])
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    return 0


def _run_demo(config: Config, batches: int, prepare_only: bool) -> int:
    from conveyor import pipeline
    from conveyor.demo import prepare_demo_data

    source, sample = prepare_demo_data(config)
    print(f"demo data: {source}")
    if prepare_only:
        return 0
    _run_replay(config, batches)
    output = pipeline.inference(config, sample)
    report = pipeline.summary(config)
    print(f"predictions: {output}")
    print(f"summary: {report}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conveyor", description="Continuous training for streaming tabular data.")
    parser.add_argument("--config", "-config", default=DEFAULT_CONFIG,
                        help="config file (default: ./conveyor.yaml)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    # --config also after the command (`conveyor replay --config x.yaml`); the top-level one
    # is the default when the command does not repeat it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-config", default=argparse.SUPPRESS,
                        help="config file (default: ./conveyor.yaml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kwargs)
    command("update", help="ingest the next window and run every stage; prints True/False")
    infer = command("inference", help="predict a file; prints the output's path")
    infer.add_argument("file", type=Path)
    command("summary", help="write the monitoring report; prints its path")
    rep = command("replay", help="run updates over the stream with a progress bar")
    rep.add_argument("--batches", type=int, default=None, help="stop after N updates")
    status = command("status", help="show the workspace's batches and production model")
    status.add_argument("--json", action="store_true",
                        help="print the state as strict JSON (for scripts)")
    serve = command("serve", help="start the REST API (FastAPI + uvicorn)")
    serve.add_argument("--workers", type=_workers, default=1, metavar="N|auto",
                       help="uvicorn worker processes; auto: one per core (default 1)")
    serve.add_argument("--host", default=None, help="address to listen on (default: "
                       "serve.host; 0.0.0.0 inside a container)")
    serve.add_argument("--port", type=int, default=None, help="port (default: serve.port)")
    explain = command("explain", help="explain one prediction of the production model")
    explain.add_argument("--file", type=Path, required=True)
    explain.add_argument("--row", type=int, default=0, help="0-based row number")
    models = command("models", help="list model versions, or `models show VERSION`")
    models.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    models.add_argument("version", nargs="?", type=version_number)
    promote = command("promote", help="make a version production")
    promote.add_argument("version", type=version_number)
    promote.add_argument("--reason", default="promoted by hand")
    rollback = command("rollback", help="switch production back to its predecessor")
    rollback.add_argument("--reason", default="rolled back by hand")
    demo = command("demo", help="prepare the demo data, replay, predict a sample, "
                                       "write the summary")
    demo.add_argument("--batches", type=int, default=10, help="updates to replay (default 10)")
    demo.add_argument("--prepare-only", action="store_true",
                      help="only write the demo data files")
    init = command("init", help="write a commented conveyor.yaml inferred from a "
                                       "data file; prints its path and a summary")
    init.add_argument("data_file", type=Path, metavar="DATA_FILE",
                      help="CSV/TSV, Parquet or .xlsx file with a time column")
    init.add_argument("--target", required=True, metavar="COL", help="column to predict")
    init.add_argument("--time", metavar="COL", help="time column (default: detected)")
    init.add_argument("--task", choices=["regression", "classification"],
                      help="default: inferred from the target")
    init.add_argument("--out", type=Path, default=None,
                      help="config file to write (default: --config, i.e. ./conveyor.yaml)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    return parser


def _pipeline() -> ModuleType:
    """:mod:`conveyor.pipeline`, imported on first use (it loads scikit-learn and pandas)."""
    return importlib.import_module("conveyor.pipeline")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``conveyor`` command."""
    args = build_parser().parse_args(argv)
    quiet = args.command in ("replay", "demo")
    try:
        if args.command == "init":  # there is no config to load yet
            setup_logging(None, logging.DEBUG if args.debug else logging.INFO)
            return _run_init(args)
        config = _load(args.config, args.debug, logging.WARNING if quiet else logging.INFO,
                       args.command)
        commands: dict[str, Callable[[], int]] = {
            "update": lambda: _run_update(config),
            "inference": lambda: _print_path(_pipeline().inference(config, args.file)),
            "summary": lambda: _print_path(_pipeline().summary(config)),
            "replay": lambda: _run_replay(config, args.batches),
            "status": lambda: _print_status(config, args.json),
            "models": lambda: _print_models(config, args),
            "explain": lambda: _print_json(_pipeline().explain(config, args.file, args.row)),
            "serve": lambda: _serve(_with_address(config, args.host, args.port), args.config,
                                    args.workers),
            "promote": lambda: _promote(config, args.version, args.reason),
            "rollback": lambda: _done(f"v{_pipeline().rollback(config, args.reason)} "
                                      "is production"),
            "demo": lambda: _run_demo(config, args.batches, args.prepare_only),
        }
        return commands[args.command]()
    except BrokenPipeError:  # `conveyor status | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line + exit code
        if args.command == "update":
            code = _fail(exc, args.debug)
            print(False)
            return code
        return _fail(exc, args.debug)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _run_init(args: argparse.Namespace) -> int:
    from conveyor.collect.init import init_config

    result = init_config(args.data_file, args.target, args.out or Path(args.config),
                         time=args.time, task=args.task, force=args.force)
    print(result.path)
    print(f"conveyor: {result.summary()}", file=sys.stderr)
    return 0


def _with_address(config: Config, host: str | None, port: int | None) -> Config:
    serve = config.serve.model_copy(update={k: v for k, v in (("host", host), ("port", port))
                                            if v is not None})
    return config.model_copy(update={"serve": serve})


def _workers(text: str) -> int:
    """``--workers``: a positive count, or ``auto`` for one per core."""
    if text != "auto" and not (text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"expected a positive number or auto, got {text!r}")
    return (os.cpu_count() or 1) if text == "auto" else int(text)


def _serve(config: Config, path: str, workers: int) -> int:
    from conveyor.serve.api import serve

    serve(config, path, workers)
    return 0


def _print_json(data: object) -> int:
    print(json.dumps(data, indent=2, default=str))
    return 0


def _done(message: str) -> int:
    print(message)
    return 0


def _promote(config: Config, version: int, reason: str) -> int:
    from conveyor import pipeline

    pipeline.promote(config, version, reason)
    return _done(f"v{version} is production")


def _print_path(path: Path) -> int:
    print(path)
    return 0


def run_py(argv: Sequence[str] | None = None) -> int:
    """The specification's contract: ``run.py -mode update|inference|summary [-file F]``."""
    parser = argparse.ArgumentParser(prog="run.py", description="conveyor, as the spec asks.")
    parser.add_argument("-mode", "--mode", required=True,
                        choices=["update", "inference", "summary"])
    parser.add_argument("-file", "--file", help="input file for inference")
    parser.add_argument("-config", "--config", default=DEFAULT_CONFIG)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    forwarded: list[str] = ["--config", args.config] + (["--debug"] if args.debug else [])
    if args.mode == "inference":
        if not args.file:
            parser.error("-mode inference needs -file PATH")
        return main([*forwarded, "inference", args.file])
    return main([*forwarded, args.mode])
