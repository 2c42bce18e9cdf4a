"""Crash safety: SIGKILL `update` at well over a hundred points of a real stream and check,
after every kill, that the workspace is consistent and the next update carries on; at
the end the stream's batches equal those of a run without kills.

How: the test process forks each update (no Python start-up per kill; see crashkit).
Most kills are *asynchronous*: the parent sends SIGKILL after a random delay, either from
the fork (uniform over an update) or from the moment the child entered a stage
(ingestion, quality, training, registry write, promotion), so short stages get their
share. A second kind is *exact*: the child kills itself at a named point a delay rarely
hits (a temp file complete but not renamed, a model folder renamed but not registered,
an open transaction). The kill point is what the child last reported.

"Equal" at the end means: the same batches (window index, window bounds, rows, rows
with target, sha256, file path, accepted/quarantined) with the same number of
column-stats, quality and EDA rows each (they commit in the batch's transaction), the
same raw files byte for byte, hence the same number of accepted batches. Models are
not compared: a kill after a batch is committed but before its version is registered
loses that training (the next update trains on a window that includes the batch), and
a kill between a model folder's rename and its registry row burns a version number;
so the versions, their promotions and the prequential scores legitimately differ.
Invariants that do hold for models are checked after every kill instead.

Knobs (environment): CONVEYOR_CRASH_KILLS (asynchronous kills, default 100),
CONVEYOR_CRASH_SEED, CONVEYOR_CRASH_REPORT (write the campaign's figures as JSON there).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conveyor import pipeline
from tests.reliability import crashkit as ck

KILLS = int(os.environ.get("CONVEYOR_CRASH_KILLS", "100"))
SEED = int(os.environ.get("CONVEYOR_CRASH_SEED", "20240611"))
# exact kill points, each hit at least once (the child SIGKILLs itself right there)
CHECKPOINTS = [
    "cache-temp-written",       # first update: the source cache's temp file, not renamed
    "raw-temp-written",         # raw batch temp file complete, not renamed
    "raw-written",              # raw file in place, catalog row not committed
    "catalog-tx",               # inside the ingest transaction
    "quality-report",           # batch committed, nothing trained yet
    "reports-temp-written",     # quality report temp file complete, not renamed
    "model-filled",             # model temp folder complete, not renamed
    "model-written",            # model folder in place, no registry row
    "models-row-tx",            # inside the registry-row transaction
    "promote-tx",               # inside the promotion transaction
    "retention-rmtree",         # a deleted version's folder half removed
    "stage-save",               # everything done but the stage timings
]
# where asynchronous kills aim: a stage (the delay counts from its first marker) or the
# whole update (the delay counts from the fork)
AIMS = {"ingestion": 0.2, "quality": 0.2, "training": 0.15, "registry write": 0.2,
        "promotion": 0.15, "uniform": 0.1}


def _reference(config: Any) -> int:
    """Replay the whole stream without kills in a forked child; return its pid."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            pipeline.replay(config, None)
        except BaseException:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    return pid


class Timeline:
    """Typical seconds of each stage, from the markers of updates that ran to the end."""

    def __init__(self) -> None:
        self.spans: dict[str, list[float]] = {b: [] for b in ck.BUCKETS}
        self.totals: list[float] = []

    def add(self, markers: list[tuple[str, float]]) -> None:
        times = {}
        for name, at in markers:
            times.setdefault(name, at)
        if "done" not in times or "settle" not in times:
            return
        entries = [times[ck.BUCKET_ENTRY[b]] for b in ck.BUCKETS] + [times["done"]]
        for bucket, start, end in zip(ck.BUCKETS, entries, entries[1:], strict=False):
            self.spans[bucket].append(end - start)
        self.totals.append(times["done"] - times["start"])

    def span(self, bucket: str) -> float:
        values = self.totals if bucket == "uniform" else self.spans[bucket]
        return statistics.median(values[-10:]) if values else 0.5


@pytest.mark.slow
def test_sigkill_anywhere_in_update_keeps_the_workspace_consistent(tmp_path):
    started = time.monotonic()
    rng = random.Random(SEED)
    campaign, reference = tmp_path / "campaign", tmp_path / "reference"
    for folder in (campaign, reference):
        folder.mkdir()
        ck.write_stream(folder)
    config = ck.write_crash_config(campaign)
    reference_pid = _reference(ck.write_crash_config(reference))
    root = config.workspace
    recorder = ck.Recorder()
    timeline = Timeline()

    violations: list[str] = []
    kills: list[dict[str, Any]] = []
    completed: list[dict[str, Any]] = []
    pending = list(CHECKPOINTS)
    async_kills = 0
    after_kill_ok = 0  # updates that ran to the end right after a kill
    attempt = 0
    exhausted = previous_killed = False
    windows_left = None
    while True:
        attempt += 1
        if async_kills >= KILLS and not pending and windows_left is None:
            windows_left = ck.WINDOWS - len(ck.batch_state(root))  # the stream's margin
        if exhausted and async_kills >= KILLS and not pending:
            break
        if exhausted:
            pytest.fail(f"the stream ended after {async_kills} asynchronous kills and with "
                        f"checkpoints {pending} untried; lengthen crashkit.STREAM_END")
        plan: dict[str, Any]
        if attempt == 1:
            plan = {"kind": "exact", "at": "cache-temp-written"}
        elif attempt <= 3 or rng.random() < 0.1:
            plan = {"kind": "clean"}  # the first ones also calibrate the timeline
        elif pending and (async_kills >= KILLS or rng.random() < 0.2):
            plan = {"kind": "exact", "at": pending[0]}
            pending.append(pending.pop(0))  # try another next time if it is not reached
        elif async_kills < KILLS:
            aim = rng.choices(list(AIMS), weights=list(AIMS.values()))[0]
            delay = rng.uniform(0, 1.1 * timeline.span(aim))
            plan = {"kind": "async", "aim": aim, "delay": delay}
        else:
            plan = {"kind": "clean"}
        before = ck.batch_state(root) if (root / "conveyor.db").exists() else []

        if plan["kind"] == "exact":
            outcome = ck.run_update(config, recorder, kill_at=plan["at"])
        elif plan["kind"] == "async":
            after = None if plan["aim"] == "uniform" else ck.BUCKET_ENTRY[plan["aim"]]
            outcome = ck.run_update(config, recorder, after=after, delay=plan["delay"])
        else:
            outcome = ck.run_update(config, recorder)

        where = f"attempt {attempt} ({plan}, last marker {outcome.marker})"
        if outcome.killed:
            if plan["kind"] == "exact":
                if outcome.marker == plan["at"] and plan["at"] in pending:
                    pending.remove(plan["at"])
            else:
                async_kills += 1
            after_kill = ck.batch_state(root) if (root / "conveyor.db").exists() else []
            kills.append({"kind": plan["kind"], "marker": outcome.marker,
                          "bucket": outcome.bucket, "seconds": round(outcome.seconds, 3),
                          "committed_batch": len(after_kill) > len(before),
                          "hidden_leftovers": len(ck.hidden_leftovers(root))})
        else:
            result = outcome.result or {}
            completed.append(result)
            timeline.add(outcome.markers)
            quarantined = str(result.get("message", "")).startswith("quarantined")
            if not (result.get("ok") or result.get("exhausted") or quarantined):
                    # (a quarantine is the data's verdict: the final comparison checks that
                # the run without kills quarantined the same windows)
                violations.append(f"{where}: update failed after a kill: "
                                  f"{result.get('message')}\n{result.get('error', '')}")
            # the writer lock's sweep removed what earlier kills left; this run left none
            left = ck.hidden_leftovers(root)
            if left:
                violations.append(f"{where}: temp files left after a completed update: "
                                  f"{[str(p.relative_to(root)) for p in left]}")
            exhausted = bool(result.get("exhausted"))
            after_kill_ok += bool(kills) and attempt > 1 and previous_killed
        previous_killed = outcome.killed
        violations.extend(f"{where}: {p}" for p in ck.check_invariants(root))
        if len(violations) > 20:
            break

    # the run without kills, for the final comparison
    _, status = os.waitpid(reference_pid, 0)
    reference_root = reference / "ws"
    final: list[str] = []  # problems of the end state
    if os.waitstatus_to_exitcode(status) != 0:
        final.append("the reference replay (no kills) failed")
    elif exhausted:
        final += [f"reference: {p}" for p in ck.check_invariants(reference_root)]
        if ck.batch_state(root) != ck.batch_state(reference_root):
            final.append("the batches after the kills differ from those of a run without kills")
        if ck.file_hashes(root, "raw") != ck.file_hashes(reference_root, "raw"):
            final.append("the raw files differ from those of a run without kills")
        final += [f"end: {p}" for p in ck.check_invariants(root, next_retry=False)]
    accepted = [b for b in ck.batch_state(root) if b[ck.BATCH_FIELDS.index("status")]
                == "accepted"]
    reference_models = ck.db_rows(reference_root, "SELECT version FROM models")

    # a model folder a kill left unregistered is never listed, promoted or served
    orphans = ck.orphan_model_folders(root)
    listed = set(pipeline.models(config)["version"])
    registered = {m["version"] for m in ck.db_rows(root, "SELECT version FROM models")}
    if listed != registered or listed & set(orphans):
        final.append(f"`conveyor models` lists {sorted(listed)}; registered "
                     f"{sorted(registered)}; orphan folders {orphans}")

    by_bucket = Counter(k["bucket"] for k in kills)
    by_marker = Counter(k["marker"] for k in kills)
    leftovers = ck.hidden_leftovers(root)
    report = {
        "kills": len(kills), "async_kills": async_kills,
        "exact_kills": len(kills) - async_kills, "attempts": attempt - 1,
        "windows_left_when_done_killing": windows_left,
        "completed_updates": len(completed), "completed_right_after_a_kill": after_kill_ok,
        "violations": len(violations) + len(final),
        "kills_by_stage": dict(by_bucket), "kills_by_marker": dict(by_marker),
        "kills_with_batch_committed": sum(k["committed_batch"] for k in kills),
        "batches": len(accepted), "models": len(registered),
        "reference_models": len(reference_models), "orphan_model_folders": orphans,
        "most_hidden_temp_files_after_a_kill": max(k["hidden_leftovers"] for k in kills),
        "hidden_temp_files_at_the_end": len(leftovers),
        "median_update_seconds": round(statistics.median(timeline.totals), 3),
        "seconds": round(time.monotonic() - started, 1),
    }
    print("\ncrash campaign:", json.dumps(report, indent=1))
    if os.environ.get("CONVEYOR_CRASH_REPORT"):
        Path(os.environ["CONVEYOR_CRASH_REPORT"]).write_text(json.dumps(report, indent=1))
    assert not violations and not final, "\n".join(violations[:20] + final)
    assert async_kills >= KILLS and not pending
    assert all(by_bucket[b] for b in ck.BUCKETS), f"a stage was never killed: {by_bucket}"


def test_the_writer_lock_sweeps_temp_files_a_killed_writer_left(tmp_path):
    """What a SIGKILL inside atomic_write/atomic_write_dir leaves (hidden, never read) is
    removed the next time a writer takes the lock; nothing else is touched."""
    from conveyor.workspace import Workspace

    workspace = Workspace(tmp_path / "ws").create()
    left = [workspace.raw / ".batch-000003-0123abcd.parquet.k2j_x9q0.tmp",
            workspace.cache / ".source-0123456789abcdef.parquet.abcdefgh.tmp",
            workspace.reports / "quality" / ".batch-000003.json.a1b2c3d4.tmp"]
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    folder = workspace.models / ".v000004.zz9_ab12.tmp"
    folder.mkdir()
    (folder / "model.skops").write_bytes(b"half")
    kept = [workspace.predictions / ".out.csv.abcdefgh.tmp",  # inference: no lock
            workspace.reports / ".summary.html.abcdefgh.tmp",  # summary: no lock
            workspace.raw / ".keep-me.tmp", workspace.raw / "batch-000001-0123abcd.parquet"]
    for path in kept:
        path.write_bytes(b"x")
    with workspace.lock(1):
        pass
    assert not any(p.exists() for p in [*left, folder])
    assert all(p.exists() for p in kept)
