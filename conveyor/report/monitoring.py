"""Summary sections about what changed under the models: drift, the training strategy,
routing between champion and fallback, champion vs challenger, and meta-learning.

Each function takes stored tables and returns a figure and a one-line reading,
like the sections in :mod:`conveyor.report.summary`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import stats

from conveyor.meta import findings, fit_meta, meta_table
from conveyor.report.summary.data import plural
from conveyor.serve.routing import is_fallback_route
from conveyor.validate.metrics import LOWER_IS_BETTER


def drift_section(drift: pd.DataFrame, events: pd.DataFrame,
                  times: dict[int, str]) -> tuple[go.Figure, str]:
    """Heatmap of the deciding statistic per batch and feature, drifted cells marked."""
    figure = go.Figure()
    if drift.empty:
        return figure, "No drift measured yet: it starts once a production model exists."
    # one scale for every column: the effect size (KS D, Cramer's V) or the PSI/JS value
    effect = [scores.get("cramers_v", stat) if method == "chi2" else stat
              for method, stat, scores in zip(drift["method"], drift["statistic"],
                                              drift["scores"], strict=True)]
    drift = drift.assign(time=drift["batch_id"].map(times), statistic=effect)
    features = drift[drift["role"].isin(["feature", "target", "prediction"])]
    label = np.where(features["role"] == "feature", features["column"],
                     features["role"] + ": " + features["column"])
    features = features.assign(label=label)
    z = features.pivot_table(index="label", columns="time", values="statistic", aggfunc="max")
    flagged = features.pivot_table(index="label", columns="time", values="drifted",
                                   aggfunc="max").reindex_like(z)
    order = z.mean(axis=1).sort_values().index
    z, flagged = z.loc[order], flagged.loc[order]
    text = np.where(flagged.fillna(0).to_numpy() > 0, "●", "")
    figure.add_heatmap(z=z.to_numpy(), x=list(z.columns), y=list(z.index), text=text,
                       texttemplate="%{text}", colorscale="OrRd", zmin=0, zmax=1,
                       colorbar={"title": "effect"},
                       hovertemplate="%{y}<br>%{x}<br>effect %{z:.3f}<extra></extra>")
    alarms = events[events["kind"] == "data_drift"].dropna(subset=["batch_id"])
    alarm_times = [times.get(int(b)) for b in alarms["batch_id"]]
    figure.add_scatter(x=[t for t in alarm_times if t], y=[z.index[-1]] * len(alarms),
                       mode="markers", name="dataset alarm",
                       marker={"symbol": "triangle-down", "size": 12, "color": "#b30000"})
    figure.update_layout(title="Drift per batch and column (● drifted)",
                         height=max(360, 22 * len(z) + 120), xaxis_title="window start")
    share = features[features["role"] == "feature"].groupby("column")["drifted"].mean()
    reading = (f"Each cell is the effect of the deciding method (KS D, Cramer's V, PSI or "
               f"JS). {plural(len(alarms), 'dataset-level alarm', 'dataset-level alarms')} "
               f"over {plural(drift['batch_id'].nunique(), 'batch', 'batches')}")
    if not share.empty and share.max() > 0:
        reading += (f"; most often drifted: {share.idxmax()} "
                    f"({share.max():.0%} of batches)")
    elif not share.empty:
        reading += "; no feature drifted"
    prediction = features[features["role"] == "prediction"]
    if not prediction.empty:
        reading += f"; production's predictions drifted on {int(prediction['drifted'].sum())}"
    return figure, reading + "."


def strategy_section(models: pd.DataFrame, timings: pd.DataFrame,
                     times: dict[int, str]) -> tuple[go.Figure, str]:
    """Which strategy each update used (incremental, refit or retrain) and what it cost."""
    figure = go.Figure()
    if models.empty or "strategy" not in models or models["strategy"].isna().all():
        return figure, "No training strategy recorded yet."
    models = models.dropna(subset=["strategy"]).copy()
    models["batch_id"] = models["batch_ids"].map(lambda ids: ids[-1] if ids else None)
    totals = timings.groupby("batch_id")["seconds"].sum()
    models["seconds"] = models["batch_id"].map(totals)
    models["time"] = models["batch_id"].map(times)
    for strategy, color in (("retrain", "#756bb1"), ("refit", "#3182bd"),
                            ("incremental", "#31a354")):
        part = models[models["strategy"] == strategy]
        figure.add_bar(x=part["time"], y=part["seconds"], name=strategy, marker_color=color,
                       customdata=part["strategy_note"].fillna(""),
                       hovertemplate="%{x}<br>%{y:.1f} s<br>%{customdata}<extra></extra>")
    figure.update_layout(title="Update seconds by training strategy", xaxis_title="window start",
                         yaxis_title="seconds per update")
    by = models.groupby("strategy")["seconds"].median()
    counts = models["strategy"].value_counts()
    reading = ", ".join(f"{k} x{v} (median {by.get(k, float('nan')):.1f} s)"
                        for k, v in counts.items())
    return figure, f"Strategies: {reading}."


def window_choice_reading(events: pd.DataFrame) -> str:
    """How often drift handling compared training windows, what it chose, the newest
    comparison in full."""
    if events.empty:
        return ""
    choices = events[events["kind"] == "window_choice"]
    if choices.empty:
        return ""
    messages = choices["message"].astype(str)
    kept = int(messages.str.contains("window by evidence: everything kept").sum())
    unjudged = int(messages.str.contains("too few new rows").sum())
    shorter = len(choices) - kept - unjudged
    return (f" Drift handling compared training windows {len(choices)} time(s): kept every "
            f"batch {kept + unjudged} time(s), shortened the window {shorter} time(s). Newest "
            f"(batch {int(choices.iloc[-1]['batch_id'])}): {messages.iloc[-1]}.")


def routing_section(inference: pd.DataFrame, prequential: pd.DataFrame,
                    production: dict[str, Any] | None) -> tuple[go.Figure, str]:
    """Share of rows each route answered: per inference call or API flush when there are
    any, else per new batch as production served it (prequential); and which routing
    rules production has proven, on what evidence."""
    figure = go.Figure()
    decision = routing_decision_reading(production)
    found = _route_counts_over_time(inference, prequential)
    if found is None:
        return figure, "No routed predictions yet." + decision
    at, counts, what = found
    shares = pd.DataFrame(counts).fillna(0)
    shares = shares.div(shares.sum(axis=1), axis=0)
    for route in shares.columns:
        figure.add_bar(x=at, y=shares[route], name=route)
    figure.update_layout(title=f"Share of rows per route and {what}", barmode="stack",
                         yaxis_title="share of rows", yaxis_tickformat=".0%")
    total = pd.DataFrame(counts).fillna(0).sum()
    kept = total[[k for k in total.index if str(k).startswith("kept:")]]
    top = total[[k for k in total.index if is_fallback_route(str(k))]]
    rows = max(total.sum(), 1)
    reading = f"{top.sum() / rows:.1%} of {int(total.sum()):,} rows went to the fallback"
    if not top.empty and top.max() > 0:
        reading += f", mostly for {top.idxmax()}"
    if kept.sum() > 0:
        reading += (f"; {kept.sum() / rows:.1%} were unusual but stayed with the champion, "
                    "whose rule the fallback has not proven better on (kept:<reason>)")
    return figure, reading + "." + decision


def _route_counts_over_time(inference: pd.DataFrame, prequential: pd.DataFrame
                            ) -> tuple[pd.Series, list[dict[str, Any]], str] | None:
    """Rows per route over time, with the x values and what each bar is: per inference
    call or API flush when there are any, else per new batch as production served it."""
    if not inference.empty and "route_counts" in inference:
        calls = inference.dropna(subset=["route_counts"]).sort_values("at")
        calls = calls[calls["route_counts"].map(bool)]
        if not calls.empty:
            return calls["at"], list(calls["route_counts"]), "inference call"
    if prequential.empty:
        return None
    served = prequential[prequential["role"] == "production"].sort_values("batch_id")
    served = served[served["metrics"].map(lambda m: isinstance(m, dict) and "routes" in m)]
    if served.empty:
        return None
    counts = [{k: v["rows"] for k, v in m["routes"].items()} for m in served["metrics"]]
    return served["batch_id"].map(lambda b: f"batch {b}"), counts, "new batch (prequential)"


def routing_decision_reading(production: dict[str, Any] | None) -> str:
    """Which rules production routes by, and the evidence (held-out and past batches)."""
    metrics = (production or {}).get("metrics") or {}
    routing = metrics.get("routing") if isinstance(metrics, dict) else None
    if not routing:
        return ""
    rules = routing.get("rules", {})
    on = [r for r, e in rules.items() if e["route"]]

    def evidence(rule: str) -> str:
        e = rules[rule]
        if not e["rows"]:
            return f"{rule} (no rows yet)"
        batches = e.get("batches", 0)
        return (f"{rule} ({e['rows']:,} rows in {batches} batch{'es' if batches != 1 else ''}, "
                f"loss champion {e['champion_loss']:.4g} vs fallback {e['fallback_loss']:.4g})")

    version = (production or {}).get("version")
    reading = (f" Production v{version} sends rows to its fallback for {len(on)} of "
               f"{len(rules)} rules")
    reading += (": " + "; ".join(evidence(r) for r in on)) if on else \
        (" (the fallback has not been proven better on any rule's rows: that takes "
         "enough rows from two batches or more and a one-sided t test across batches)")
    tried = sorted((r for r, e in rules.items() if not e["route"] and e["rows"]),
                   key=lambda r: -rules[r]["rows"])[:5]
    if tried:
        reading += ". Not proven: " + "; ".join(evidence(r) for r in tried)
    skipped = routing.get("skipped") or {}
    if skipped:
        reading += ". Never route by themselves: " + ", ".join(
            f"{c} ({why})" for c, why in sorted(skipped.items()))
    return reading + "."


def challenger_reading(prequential: pd.DataFrame, metric: str) -> str:
    """Champion vs challenger (staging) on the same batches: a paired Wilcoxon test."""
    if prequential.empty or "staging" not in set(prequential["role"]):
        return "No challenger (staging model) has been scored yet."
    pivot = prequential.pivot_table(index="batch_id", columns="role", values="score")
    pairs = pivot[["production", "staging"]].dropna()
    if len(pairs) < 5:
        return (f"Champion vs challenger: {plural(len(pairs), 'shared batch', 'shared batches')}"
                ", too few for a test.")
    difference = pairs["staging"] - pairs["production"]
    test = stats.wilcoxon(difference)
    lower = metric in LOWER_IS_BETTER
    better = difference.mean() < 0 if lower else difference.mean() > 0
    return (f"Champion vs challenger over {len(pairs)} batches: mean {metric} "
            f"{pairs['production'].mean():.4g} vs {pairs['staging'].mean():.4g}; the "
            f"challenger is {'better' if better else 'worse'}, Wilcoxon p = {test.pvalue:.3g}"
            f" ({'significant' if test.pvalue < 0.05 else 'not significant'} at 5%).")


def meta_section(evaluations: pd.DataFrame, batch_features: pd.DataFrame,
                 metric: str) -> tuple[go.Figure, str, dict[str, Any]]:
    """What drives a candidate's quality: the meta-learner's findings."""
    figure = go.Figure()
    direction = "min" if metric in LOWER_IS_BETTER else "max"
    try:
        table = meta_table(evaluations, batch_features, direction)
        meta = fit_meta(table)
    except (ValueError, KeyError) as exc:
        return figure, f"Meta-learning not available: {exc}.", {}
    if not meta.fitted:
        return figure, f"Meta-learning waits for more history: {meta.reason}.", {}
    found = findings(meta, table)
    if found:
        figure.add_bar(x=[f.importance for f in found][::-1], y=[f.input for f in found][::-1],
                       orientation="h", hovertext=[f.reading for f in found][::-1])
    figure.update_layout(title=f"What drives a candidate's rank in its race "
                               f"(meta-model forward R2 {meta.cv_r2:.2f})",
                         xaxis_title="permutation importance (drop in R2)",
                         height=max(320, 28 * len(found) + 120))
    readings = [f.reading for f in found[:3]]
    text = (f"Meta-model over {meta.n_rows} scored candidates on {meta.n_batches} batches, "
            "from searches and from production's champion and fallback on each new batch "
            f"(forward R2 {meta.cv_r2:.2f}). " + " ".join(f"{r}." for r in readings))
    return figure, text, {"cv_r2": meta.cv_r2, "findings": [f.reading for f in found]}
