"""The data-quality report of one batch, as Markdown for people and JSON for tools."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from conveyor.analyze.quality import BatchQuality, Reference
from conveyor.io.atomic import atomic_write_text

MARK = {"pass": "ok", "warn": "WARN", "fail": "FAIL"}


def quality_document(batch: dict[str, Any], quality: BatchQuality, actions: dict[str, int],
                     reference: Reference | None) -> dict[str, Any]:
    """Return the report's content as plain data."""
    return {
        "batch_id": batch["id"], "window_start": batch["window_start"],
        "window_end": batch["window_end"], "rows": batch["rows"], "sha256": batch["sha256"],
        "verdict": quality.verdict, "reason": quality.reason() or None,
        "reference_batches": list(reference.batch_ids) if reference else [],
        "checks": [asdict(c) for c in quality.checks],
        "cleaning_plan": quality.plan.to_dict(), "cleaning_actions": actions,
    }


def quality_markdown(doc: dict[str, Any]) -> str:
    """Render the report as Markdown: verdict, problems first, then every check."""
    lines = [f"# Data quality of batch {doc['batch_id']}", "",
             f"Window {doc['window_start']} .. {doc['window_end']}, {doc['rows']} rows, "
             f"sha256 `{doc['sha256'][:12]}`.", "",
             f"**Verdict: {doc['verdict']}**" + (f" — {doc['reason']}" if doc["reason"] else ""),
             ""]
    if doc["reference_batches"]:
        lines += [f"Reference: batches {doc['reference_batches']} (the production model's "
                  "training window).", ""]
    else:
        lines += ["No reference yet (no production model): only checks within the batch.", ""]
    problems = [c for c in doc["checks"] if c["verdict"] != "pass"]
    lines += ["## Problems", ""]
    lines += [f"- {MARK[c['verdict']]} `{c['check']}`"
              + (f" on `{c['column']}`" if c["column"] else "")
              + f": {c['value']:.4g} (limit {c['threshold']})"
              + (f" — {c['note']}" if c["note"] else "") for c in problems] or ["None."]
    lines += ["", "## Cleaning", ""]
    lines += [f"- {k}: {v}" for k, v in doc["cleaning_actions"].items()] or ["Nothing to do."]
    lines += ["", "## All checks", "", "| check | column | value | limit | verdict |",
              "|---|---|---|---|---|"]
    lines += [f"| {c['check']} | {c['column'] or ''} | {c['value']:.4g} | {c['threshold']} | "
              f"{c['verdict']} |" for c in doc["checks"]]
    return "\n".join(lines) + "\n"


def write_quality_report(folder: Path, batch: dict[str, Any], quality: BatchQuality,
                         actions: dict[str, int], reference: Reference | None) -> Path:
    """Write batch-<window>.md and .json into ``folder``; return the Markdown path."""
    doc = quality_document(batch, quality, actions, reference)
    stem = folder / f"batch-{batch['window_index']:06d}"
    atomic_write_text(stem.with_suffix(".json"), json.dumps(doc, indent=1, default=str))
    return atomic_write_text(stem.with_suffix(".md"), quality_markdown(doc))
