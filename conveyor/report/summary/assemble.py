"""The report assembled from the store: every panel's figure and reading, the tables
and the headline cards; and the three files written from it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from conveyor.config import Config
from conveyor.io.atomic import atomic_write_text
from conveyor.meta.features import batch_features, meta_evaluations
from conveyor.report import monitoring
from conveyor.report.summary.data import (
    batch_times,
    batches_table,
    columns_table,
    eda_section,
    quality_section,
    stream_section,
)
from conveyor.report.summary.interpretation import (
    interpretation_html,
    production_explanation,
    tree_section,
)
from conveyor.report.summary.models import (
    candidates_section,
    importance_section,
    params_table,
    prequential_section,
    registry_table,
    suspicious_reading,
)
from conveyor.report.summary.page import render_html, render_json, render_markdown
from conveyor.report.summary.performance import inference_section, timings_section
from conveyor.store import Store
from conveyor.train.search import full_rows
from conveyor.workspace import Workspace

Panel = tuple[str, str, tuple[Any, str]]  # key, title, (figure, reading)


def _data_panels(store: Store, config: Config, batches: pd.DataFrame,
                 times: dict[int, str]) -> list[Panel]:
    """Stream, quality, EDA and drift: what came in."""
    hidden = {config.target.column, config.target.source_column,
              config.source.time_column, *config.columns.exclude}
    return [
        ("stream", "Stream and batches", stream_section(batches)),
        ("quality", "Data quality", quality_section(store.frame("quality"), times)),
        ("eda", "EDA: newest batch against the reference", eda_section(store, batches, hidden)),
        ("drift", "Data drift", monitoring.drift_section(store.frame("drift"),
                                                         store.frame("events"), times)),
    ]


def _model_panels(store: Store, config: Config, evaluations: pd.DataFrame,
                  models: pd.DataFrame, times: dict[int, str]) -> list[Panel]:
    """Prequential quality (with champion vs challenger), candidates, importance."""
    metric, prequential, events = config.metric, store.frame("prequential"), store.frame("events")
    figure, reading = prequential_section(prequential, events, times, metric)
    reading += " " + monitoring.challenger_reading(prequential, metric)
    reading += suspicious_reading(events)
    return [
        ("prequential", "Production model quality (prequential)", (figure, reading)),
        ("candidates", "Candidates and chosen hyperparameters",
         candidates_section(evaluations, times, metric)),
        ("importance", "Feature importance over time", importance_section(
            store, models, tuple(h.output for h in config.features.history))),
    ]


def _operation_panels(store: Store, models: pd.DataFrame, times: dict[int, str],
                      production: dict[str, Any] | None) -> list[Panel]:
    """Update and inference performance, training strategy, routing."""
    timings, inference = store.frame("stage_timings"), store.frame("inference_log")
    return [
        ("update", "Update performance", timings_section(timings, times)),
        ("inference", "Inference performance", inference_section(inference)),
        ("strategy", "Training strategy: incremental, refit or retrain (search)",
         _with(monitoring.strategy_section(models, timings, times),
               monitoring.window_choice_reading(store.frame("events")))),
        ("routing", "Routing between champion and fallback",
         monitoring.routing_section(inference, store.frame("prequential"), production)),
    ]


def _with(section: tuple[Any, str], more: str) -> tuple[Any, str]:
    """A panel's figure with more said in its reading."""
    return section[0], section[1] + more


def _insight_panels(store: Store, config: Config, evaluations: pd.DataFrame,
                    production: dict[str, Any] | None,
                    explanation: dict[str, Any] | None) -> list[Panel]:
    """Meta-learning (once candidates were evaluated) and the production tree (if any)."""
    panels: list[Panel] = []
    if not evaluations.empty:
        scored = meta_evaluations(store.frame("evaluations"), store.frame("prequential"),
                                  store.frame("models"))
        figure, reading, _ = monitoring.meta_section(
            scored, batch_features(store.frame("batches"), store.frame("column_stats"),
                                   config.target.column), config.metric)
        panels.append(("meta", "Meta-learning: what drives quality", (figure, reading)))
    if production is not None and explanation and "tree" in explanation:
        panels.append(("tree", "Decision tree of the production model",
                       tree_section(production["version"], explanation["tree"])))
    return panels


def _cards(config: Config, batches: pd.DataFrame, models: pd.DataFrame,
           production: dict[str, Any] | None, events: pd.DataFrame) -> dict[str, Any]:
    """The headline numbers above the panels."""
    def count(kind: str) -> int:
        return int((events["kind"] == kind).sum()) if not events.empty else 0

    return {
        "batches": len(batches),
        "rows": int(batches["rows"].sum()) if not batches.empty else 0,
        "model versions": len(models),
        "production": f"v{production['version']} {production['family']}"
        if production else "none",
        "target": f"{config.target.column} ({config.target.task})",
        "alarms": f"data drift {count('data_drift')}, model drift {count('model_drift')}"
                  + (f", implausible scores {count('suspicious_score')}"
                     if count("suspicious_score") else ""),
    }


def build(store: Store, config: Config, workspace_root: Path | None = None) -> dict[str, Any]:
    """Collect every section's figure, reading and table from the store."""
    batches = store.frame("batches").sort_values("window_index")
    times = batch_times(batches)
    evaluations = full_rows(store.frame("evaluations"))
    models = store.frame("models")
    production, explanation = production_explanation(
        store, None if workspace_root is None else Workspace.of(config))
    panels: list[Panel] = []
    if not batches.empty:
        panels = [*_data_panels(store, config, batches, times),
                  *_model_panels(store, config, evaluations, models, times),
                  *_operation_panels(store, models, times, production),
                  *_insight_panels(store, config, evaluations, production, explanation)]
    tables = {
        "hyperparameters": params_table(evaluations, times) if not evaluations.empty
        else pd.DataFrame(),
        "registry": registry_table(models),
        "columns": columns_table(store.frame("column_stats"), batches),
        "batches": batches_table(batches),
    }
    return {"sections": [{"key": key, "title": title, "figure": figure, "reading": reading}
                         for key, title, (figure, reading) in panels],
            "tables": tables, "cards": _cards(config, batches, models, production,
                                              store.frame("events")),
            "metric": config.metric,
            "interpretation": interpretation_html(production, explanation),
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds")}


def write_summary(store: Store, reports_dir: Path, config: Config) -> Path:
    """Write summary-<time>.html/.md/.json; return the HTML path."""
    report = build(store, config, reports_dir.parent)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = reports_dir / f"summary-{stamp}"
    atomic_write_text(stem.with_suffix(".md"), render_markdown(report))
    atomic_write_text(stem.with_suffix(".json"), render_json(report))
    path = atomic_write_text(stem.with_suffix(".html"), render_html(report))
    _keep_newest(reports_dir, config.registry.keep_reports)
    return path


def _keep_newest(reports_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` reports (each an .html with its .md and .json):
    a report is ~5 MB and each one is complete, so older ones only fill the disk."""
    stems = sorted({p.with_suffix("") for p in reports_dir.glob("summary-*T*Z.*")
                    if p.suffix in (".html", ".md", ".json") and p.is_file()
                    and not p.is_symlink()})
    for stem in stems[:-keep]:
        for suffix in (".html", ".md", ".json"):
            stem.with_suffix(suffix).unlink(missing_ok=True)
