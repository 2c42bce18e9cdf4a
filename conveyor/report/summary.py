"""The summary: a self-contained HTML dashboard plus Markdown and JSON, from stored figures.

Everything is read from the metadata store (never from raw data), so building
the report stays fast however long the stream grows. The HTML embeds
plotly.js once and loads nothing from the network.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from conveyor.config import Config
from conveyor.errors import ConveyorError
from conveyor.io.atomic import atomic_write_text
from conveyor.meta.features import batch_features
from conveyor.report import monitoring
from conveyor.storage import locate
from conveyor.store import Store
from conveyor.train.search import full_rows
from conveyor.validate.metrics import LOWER_IS_BETTER
from conveyor.workspace import Workspace


def _figure_html(figure: go.Figure) -> str:
    figure.update_layout(template="plotly_white", height=figure.layout.height or 380,
                         margin={"l": 60, "r": 20, "t": 40, "b": 90},
                         legend={"orientation": "h", "y": -0.32})
    if not figure.data:  # an empty grid reads as a broken plot: say why it is empty
        figure.update_layout(height=160, xaxis={"visible": False}, yaxis={"visible": False},
                             annotations=[{"text": "nothing to plot yet (see the line above)",
                                           "showarrow": False, "font": {"color": "#6b7280"}}])
    return figure.to_html(full_html=False, include_plotlyjs=False,
                          config={"displaylogo": False, "responsive": True})


def _batch_times(batches: pd.DataFrame) -> dict[int, str]:
    return dict(zip(batches["id"], batches["window_start"], strict=True))


def _stream_section(batches: pd.DataFrame) -> tuple[go.Figure, str]:
    figure = go.Figure()
    for status, color in (("accepted", "#2b8cbe"), ("quarantined", "#e34a33")):
        part = batches[batches["status"] == status]
        figure.add_bar(x=part["window_start"], y=part["rows"], name=status, marker_color=color)
    figure.update_layout(title="Rows per batch", xaxis_title="window start",
                         yaxis_title="rows", barmode="stack")
    quarantined = int((batches["status"] == "quarantined").sum())
    reading = (f"{len(batches)} batches, {int(batches['rows'].sum()):,} rows from "
               f"{batches['window_start'].min()[:10]} to {batches['window_end'].max()[:10]}; "
               f"{quarantined} quarantined.")
    return figure, reading


def _quality_section(quality: pd.DataFrame, times: dict[int, str]) -> tuple[go.Figure, str]:
    figure = go.Figure()
    if quality.empty:
        return figure, "No quality checks recorded yet."
    quality = quality.assign(time=quality["batch_id"].map(times))
    for check in ("duplicate_share", "missing_target_share"):
        part = quality[quality["check"] == check].sort_values("time")
        figure.add_scatter(x=part["time"], y=part["value"], mode="lines+markers", name=check)
    missing = quality[quality["check"] == "missing_share"]
    if not missing.empty:
        mean_missing = missing.groupby("time")["value"].mean().sort_index()
        figure.add_scatter(x=mean_missing.index, y=mean_missing.values, mode="lines+markers",
                           name="mean feature missing share")
    warned = quality[quality["verdict"] == "warn"]
    failed = quality[quality["verdict"] == "fail"]
    flagged = quality[quality["verdict"].isin(["warn", "fail"])]
    most = int(flagged.groupby("batch_id").size().max()) if not flagged.empty else 1
    for verdict, part, colour in (("failed", failed, "#d62728"), ("warned", warned, "#ff9f1c")):
        if part.empty:
            continue
        named = part.assign(text=part["check"] + part["column"].map(
            lambda c: f" ({c})" if isinstance(c, str) and c else ""))
        per_batch = named.groupby("time").agg(count=("check", "size"),
                                              text=("text", lambda t: "<br>".join(t[:12])))
        figure.add_bar(x=per_batch.index, y=per_batch["count"], name=f"{verdict} checks",
                       yaxis="y2", marker={"color": colour}, opacity=0.45,
                       customdata=per_batch["text"],
                       hovertemplate="%{x}<br>%{y} " + verdict + " checks:<br>%{customdata}"
                                     "<extra></extra>")
    figure.update_layout(title="Data quality per batch: shares of rows, and checks that "
                         "warned or failed", xaxis_title="window start", yaxis_title="share",
                         yaxis2={"title": "checks", "overlaying": "y", "side": "right",
                                 "range": [0, 1.1 * most], "dtick": max(1, round(most / 5)),
                                 "showgrid": False}, barmode="stack")
    reading = (f"{len(failed)} failed and {len(warned)} warned checks over "
               f"{quality['batch_id'].nunique()} batches"
               + (f"; most warned column: {warned['column'].mode().iloc[0]}."
                  if not warned.empty else "."))
    return figure, reading


def _prequential_section(prequential: pd.DataFrame, events: pd.DataFrame,
                         times: dict[int, str], metric: str) -> tuple[go.Figure, str]:
    figure = go.Figure()
    if prequential.empty:
        return figure, "No prequential scores yet: they start once a production model exists."
    prequential = prequential.assign(time=prequential["batch_id"].map(times))
    labels = {"production": "production (updated)", "baseline": "baseline (never updated)",
              "fallback": "fallback (robust)", "staging": "challenger (staging)"}
    for role, dash in (("production", "solid"), ("baseline", "dot"), ("fallback", "dashdot"),
                       ("staging", "dash")):
        part = prequential[prequential["role"] == role].sort_values("time")
        if part.empty:
            continue
        label = labels[role]
        figure.add_scatter(x=part["time"], y=part["score"], mode="lines+markers", name=label,
                           line={"dash": dash},
                           customdata=part["version"],
                           hovertemplate="%{x}<br>" + metric + " %{y:.4g}<br>v%{customdata}")
    promotions = events[events["kind"] == "promotion"].dropna(subset=["batch_id"])
    for _, event in promotions.iterrows():
        at = times.get(int(event["batch_id"]))
        if at is not None:
            figure.add_vline(x=at, line_width=1, line_dash="dash", line_color="#31a354")
    figure.add_scatter(x=[None], y=[None], mode="lines", name="promotion",
                       line={"color": "#31a354", "dash": "dash"})
    figure.update_layout(title=f"Prequential {metric} of production on each new batch "
                               "(scored before training on it)",
                         xaxis_title="window start", yaxis_title=metric)
    production = prequential[prequential["role"] == "production"]
    baseline = prequential[prequential["role"] == "baseline"]
    mean_p = production["score"].mean()
    reading = f"Mean prequential {metric}: production {mean_p:.4g}"
    if not baseline.empty:
        mean_b = baseline["score"].mean()
        better = mean_p < mean_b if metric in LOWER_IS_BETTER else mean_p > mean_b
        reading += (f" vs never-updated baseline {mean_b:.4g} "
                    f"({'updating helps' if better else 'updating does not help yet'})")
    return figure, reading + f"; {len(promotions)} promotions."


def _eda_section(store: Store, batches: pd.DataFrame,
                 hidden: set[str]) -> tuple[go.Figure, str]:
    """The newest batch against the reference (the production model's training batches);
    ``hidden`` columns (target, time, excluded ones) stay out of the missingness plot."""
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=2, cols=2, horizontal_spacing=0.12, vertical_spacing=0.18,
                           subplot_titles=("Missing share per feature", "Target distribution",
                                           "Correlation with the target (Pearson)",
                                           "Correlations among numeric features (newest)"))
    accepted = batches[batches["status"] == "accepted"]
    eda = store.frame("eda")
    if accepted.empty or eda.empty:
        return figure, "No EDA yet."
    newest = int(accepted.iloc[-1]["id"])
    production = store.production()
    reference = [b for b in (production["batch_ids"] if production else []) if b != newest]
    stats = store.frame("column_stats")
    stats = stats[~stats["column"].isin(hidden)]
    latest_stats = stats[stats["batch_id"] == newest].set_index("column")["missing_share"]
    ref_stats = stats[stats["batch_id"].isin(reference)].groupby("column")["missing_share"].mean()
    figure.add_bar(x=latest_stats.index, y=latest_stats.values, name="newest batch",
                   marker_color="#e6550d", row=1, col=1)
    if not ref_stats.empty:
        figure.add_bar(x=ref_stats.index, y=ref_stats.values, name="reference",
                       marker_color="#3182bd", row=1, col=1)
    data = eda.set_index("batch_id")["data"]
    for batch_ids, name, color in (([newest], "newest batch", "#e6550d"),
                                   (reference, "reference", "#3182bd")):
        docs = [data[b] for b in batch_ids if b in data.index]
        if not docs:
            continue
        target = docs[-1]["target"]
        if target["kind"] == "histogram" and target["counts"]:
            edges = target["edges"]
            centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
            total = max(sum(target["counts"]), 1)
            figure.add_scatter(x=centers, y=[c / total for c in target["counts"]],
                               mode="lines", name=f"target, {name}", line={"color": color},
                               showlegend=False, row=1, col=2)
        elif target["kind"] == "classes":
            figure.add_bar(x=list(target["shares"]), y=list(target["shares"].values()),
                           marker_color=color, showlegend=False, row=1, col=2)
        correlations = [d.get("target_correlations", {}).get("pearson", {}) for d in docs]
        if correlations and correlations[0]:
            frame = pd.DataFrame(correlations).astype(float).mean()
            figure.add_bar(x=frame.index, y=frame.values, marker_color=color,
                           showlegend=False, row=2, col=1)
    matrix = data[newest]["correlation_matrix"] if newest in data.index else None
    if matrix and matrix["values"]:
        figure.add_heatmap(z=matrix["values"], x=matrix["columns"], y=matrix["columns"],
                           zmin=-1, zmax=1, colorscale="RdBu",
                           colorbar={"len": 0.4, "y": 0.2, "title": "r"}, row=2, col=2)
    figure.update_layout(height=760, barmode="group")
    moved = (latest_stats - ref_stats).abs().dropna().sort_values(ascending=False)
    reading = f"Batch {newest} against reference batches {reference or 'none yet'}"
    if not moved.empty:
        reading += (f"; the largest change in missingness: {moved.index[0]} "
                    f"({ref_stats[moved.index[0]]:.1%} -> {latest_stats[moved.index[0]]:.1%})")
    return figure, reading + "."


def _models_section(evaluations: pd.DataFrame, times: dict[int, str],
                    metric: str) -> tuple[go.Figure, str]:
    figure = go.Figure()
    if evaluations.empty:
        return figure, "No candidates evaluated yet."
    variant = evaluations["variant"].fillna("") if "variant" in evaluations \
        else pd.Series("", index=evaluations.index)
    evaluations = evaluations.assign(time=evaluations["batch_id"].map(times),
                                     family=evaluations["family"].where(
                                         variant == "", evaluations["family"] + "/" + variant))
    best = (evaluations.sort_values("score", ascending=metric in LOWER_IS_BETTER)
            .groupby(["time", "family"], as_index=False).first())
    for family, part in best.groupby("family"):
        figure.add_scatter(x=part["time"], y=part["score"], mode="lines+markers",
                           name=f"{family} (best of its grid)",
                           customdata=part["params"].map(json.dumps),
                           hovertemplate="%{x}<br>%{y:.4g}<br>%{customdata}")
    chosen = evaluations[evaluations["chosen"] == 1].sort_values("time")
    figure.add_scatter(x=chosen["time"], y=chosen["score"], mode="markers", name="chosen",
                       marker={"size": 12, "symbol": "star", "color": "black"},
                       customdata=chosen["family"] + " " + chosen["params"].map(json.dumps),
                       hovertemplate="%{x}<br>%{y:.4g}<br>%{customdata}")
    figure.update_layout(title=f"Validation {metric} of candidates per update",
                         xaxis_title="window start", yaxis_title=metric)
    counts = chosen["family"].value_counts()
    reading = "Chosen family per update: " + ", ".join(f"{k} x{v}" for k, v in counts.items())
    return figure, reading + "."


def _params_table(evaluations: pd.DataFrame, times: dict[int, str]) -> pd.DataFrame:
    chosen = evaluations[evaluations["chosen"] == 1]
    return pd.DataFrame({
        "window start": chosen["batch_id"].map(times).str[:10],
        "family": chosen["family"] + chosen.get("variant", pd.Series("", index=chosen.index))
        .fillna("").map(lambda v: f"/{v}" if v else ""),
        "hyperparameters": chosen["params"].map(lambda p: json.dumps(p, sort_keys=True)),
        "validation score": chosen["score"].round(4),
    }).sort_values("window start")


def _importance_section(store: Store, models: pd.DataFrame) -> tuple[go.Figure, str]:
    """Permutation importance of each input column, per model version over time."""
    figure = go.Figure()
    importance = store.frame("importance")
    if importance.empty or models.empty:
        return figure, "No interpretation stored yet."
    when = models.set_index("version")["window_end"].str[:10]
    table = importance.pivot_table(index="column", columns="version", values="importance")
    # each version's column as shares of its total: one dominant column (a delay that
    # explains most of another) would otherwise leave every other cell the same colour
    share = table.clip(lower=0) / table.clip(lower=0).sum().replace(0, np.nan)
    top = share.mean(axis=1).sort_values(ascending=False).index[:20]
    table, share = table.loc[top], share.loc[top]
    # the colour scale ends a little above the second largest column's share (of any
    # version), so the dominant column saturates and the others keep their contrast
    second = share.apply(lambda c: c.nlargest(2).iloc[-1] if c.notna().sum() > 1 else np.nan)
    cap = float(1.25 * second.max()) if second.notna().any() and second.max() > 0 else None
    figure.add_heatmap(z=share.values, x=[f"v{v} ({when.get(v, '')})" for v in table.columns],
                       y=list(table.index), colorscale="Viridis", zmin=0,
                       zmax=cap,
                       customdata=table.values, colorbar={"title": "share"},
                       hovertemplate="%{y}, %{x}<br>%{z:.1%} of the version's importance"
                                     "<br>score drop %{customdata:.4g}<extra></extra>")
    figure.update_layout(title="Permutation importance on held-out rows: each column's share "
                         "of its version's total (the leading column saturates the colours)",
                         height=max(360, 22 * len(top) + 120))
    latest = table.columns[-1]
    leaders = table[latest].sort_values(ascending=False).index[:3].tolist()
    return figure, f"For v{latest} the most important columns are {', '.join(leaders)}."


def _production_explanation(store: Store, workspace: Workspace | None
                            ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The production model's row and its stored explain.json (None where missing)."""
    production = store.production()
    if production is None or workspace is None:
        return production, None
    # through the model store: the version may live under store.models_url, not here
    try:
        models, key = locate(workspace.model_folder(
            production["path"], int(production["version"])))
    except ConveyorError:
        return production, None
    try:
        return production, json.loads(models.get_bytes(f"{key}/explain.json"))
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return production, None


def _interpretation_html(production: dict[str, Any] | None,
                         data: dict[str, Any] | None) -> str:
    """The production model's coefficients, tree rules and SHAP, from its explain.json."""
    if production is None:
        return "<p>No production model yet.</p>"
    if data is None:
        return "<p>No interpretation stored for this version.</p>"
    parts = [f"<p>v{production['version']:06d}: {html.escape(data['family'])}</p>"]
    if "coefficients" in data:
        top = sorted(data["coefficients"].items(), key=lambda kv: -abs(kv[1]))[:15]
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:+.4g}</td></tr>" for k, v in top)
        parts.append("<h3>Largest coefficients (scaled features)</h3><table class='table'>"
                     f"<tr><th>feature</th><th>coefficient</th></tr>{rows}</table>")
    if "tree" in data:
        tree = data["tree"]
        parts.append(f"<h3>Tree: depth {tree['depth']}, {tree['leaves']} leaves (top levels; "
                     f"drawn in the tree section)</h3><pre>{html.escape(tree['text'])}</pre>")
    if "shap" in data:
        top = sorted(data["shap"].items(), key=lambda kv: -kv[1])[:15]
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.4g}</td></tr>" for k, v in top)
        parts.append("<h3>Mean |SHAP| on held-out rows (target units)</h3><table class='table'>"
                     f"<tr><th>feature</th><th>mean |SHAP|</th></tr>{rows}</table>")
    return "".join(parts)


def _tree_section(version: int, tree: dict[str, Any]) -> tuple[go.Figure, str]:
    """An icicle of a decision tree: each box a node, its width the training rows reaching it.

    ``tree["nodes"]`` are the first nodes in scikit-learn's depth-first order, so every
    node's parent is among them; a larger tree is drawn down to where the list ends.
    """
    nodes = {n["id"]: n for n in tree["nodes"]}
    above = {child: (parent, side) for parent in tree["nodes"]
             for child, side in ((parent["left"], "≤"), (parent["right"], ">"))}
    ids, labels, parents, values, hover = [], [], [], [], []
    for node in tree["nodes"]:
        ids.append(str(node["id"]))
        values.append(node["samples"])
        value = node["value"]
        hover.append(f"{value:.4g}" if isinstance(value, float)
                     else ", ".join(f"{v:.2f}" for v in value))
        if node["id"] not in above:
            labels.append("all rows")
            parents.append("")
        else:
            parent, side = above[node["id"]]
            labels.append(f"{parent['feature']} {side} {parent['threshold']:.4g}")
            parents.append(str(parent["id"]))
    numeric = all(isinstance(n["value"], float) for n in tree["nodes"])
    colours = {"colors": [n["value"] for n in tree["nodes"]], "colorscale": "RdBu_r",
               "showscale": True, "colorbar": {"title": "prediction"}} if numeric else {}
    figure = go.Figure(go.Icicle(
        ids=ids, labels=labels, parents=parents, values=values, branchvalues="total",
        customdata=hover, tiling={"orientation": "v"}, marker=colours,
        hovertemplate="%{label}<br>%{value} training rows<br>prediction %{customdata}"
                      "<extra></extra>"))
    complete = len(nodes) == 2 * tree["leaves"] - 1
    figure.update_layout(title=f"v{version:06d}: depth {tree['depth']}, {tree['leaves']} "
                         "leaves" + ("" if complete else f", first {len(nodes)} nodes"),
                         height=480)
    root = tree["nodes"][0]
    reading = (f"The first split is on {root['feature']} at {root['threshold']:.4g}"
               if root["feature"] else "The tree is a single leaf")
    return figure, reading + ("." if complete else "; deeper levels are in the text rules "
                              "under Interpretation.")


def _inference_section(inference: pd.DataFrame) -> tuple[go.Figure, str]:
    figure = go.Figure()
    if inference.empty:
        return figure, "No inference calls yet."
    inference = inference.sort_values("at")
    figure.add_scatter(x=inference["at"], y=inference["rows_per_second"], name="rows/s",
                       mode="lines+markers", customdata=inference["version"],
                       hovertemplate="%{x}<br>%{y:.0f} rows/s<br>v%{customdata}")
    figure.add_scatter(x=inference["at"], y=inference["peak_mb"], name="peak memory (MiB)",
                       yaxis="y2", mode="lines+markers")
    figure.update_layout(title="Inference calls: throughput and peak memory",
                         yaxis={"title": "rows/s"},
                         yaxis2={"title": "MiB", "overlaying": "y", "side": "right"})
    last = inference.iloc[-1]
    reading = (f"{len(inference)} calls; the last predicted {int(last['rows']):,} rows in "
               f"{last['seconds']:.2f} s ({last['rows_per_second']:,.0f} rows/s) with v"
               f"{int(last['version'])}, peak {last['peak_mb']:.0f} MiB.")
    return figure, reading


def _timings_section(timings: pd.DataFrame, times: dict[int, str]) -> tuple[go.Figure, str]:
    figure = go.Figure()
    if timings.empty:
        return figure, "No updates timed yet."
    timings = timings.assign(time=timings["batch_id"].map(times))
    per_stage = timings.groupby(["time", "stage"], as_index=False)["seconds"].sum()
    for stage, part in per_stage.groupby("stage", sort=False):
        figure.add_bar(x=part["time"], y=part["seconds"], name=stage)
    figure.update_layout(title="Update seconds per stage", barmode="stack",
                         xaxis_title="window start", yaxis_title="seconds")
    totals = per_stage.groupby("time")["seconds"].sum()
    reading = (f"Median update {totals.median():.1f} s, slowest {totals.max():.1f} s; "
               f"peak memory {timings['peak_mb'].max():.0f} MiB.")
    return figure, reading


def _registry_table(models: pd.DataFrame) -> pd.DataFrame:
    if models.empty:
        return models
    return pd.DataFrame({
        "version": models["version"].map(lambda v: f"v{v:06d}"),
        "stage": models["stage"],
        "family": models["family"] + models.get("variant", pd.Series("", index=models.index))
        .fillna("").map(lambda v: f"/{v}" if v else ""),
        "strategy": models.get("strategy", pd.Series("", index=models.index)).fillna(""),
        "hyperparameters": models["params"].map(lambda p: json.dumps(p, sort_keys=True)),
        "hold-out": models["metrics"].map(lambda m: json.dumps(
            {k: round(v, 4) for k, v in (m.get("holdout") or {}).items() if v is not None})),
        "trained on": models["window_start"].str[:10] + " .. " + models["window_end"].str[:10],
        "rows": models["train_rows"],
        "sha256": models["sha256"].str[:12],
    }).sort_values("version", ascending=False)


def _columns_table(stats: pd.DataFrame, batches: pd.DataFrame) -> pd.DataFrame:
    """Meta-parameters of the newest batch, one row per column."""
    if batches.empty or stats.empty:
        return pd.DataFrame()
    newest = batches.iloc[-1]["id"]
    part = stats[stats["batch_id"] == newest]

    def summary(row: pd.Series) -> str:
        if row["dtype"] == "numeric" and row["mean"] is not None and pd.notna(row["mean"]):
            return (f"mean {row['mean']:.4g}, std {row['std'] if pd.notna(row['std']) else 0:.4g}"
                    f", min {row['min']:.4g}, median {row['q50']:.4g}, max {row['max']:.4g}")
        if isinstance(row["top"], dict):
            return ", ".join(f"{k} {v:.0%}" for k, v in row["top"].items())
        return ""

    return pd.DataFrame({
        "column": part["column"], "type": part["dtype"],
        "missing": part["missing_share"].map(lambda v: f"{v:.1%}"),
        "distinct": part["n_unique"], "summary": part.apply(summary, axis=1),
    })


def _html_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p>None yet.</p>"
    return frame.to_html(index=False, classes="table", border=0, escape=True)


def _markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "None yet.\n"
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(str(v).replace("|", "/") for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;
color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;color:#c8ccd4}
nav{padding:8px 32px;background:#fff;border-bottom:1px solid #e3e6ea}
nav a{margin-right:14px;color:#2b6cb0;text-decoration:none;font-size:14px}
main{padding:16px 32px;max-width:1300px}
section{background:#fff;border:1px solid #e3e6ea;border-radius:8px;margin:16px 0;padding:12px 20px}
section h2{font-size:18px;margin:6px 0} .reading{color:#4a5568;margin:4px 0 8px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #e3e6ea;border-radius:8px;padding:10px 16px;min-width:150px}
.card b{display:block;font-size:20px}
table.table{border-collapse:collapse;font-size:13px;width:100%}
table.table th,table.table td{border-bottom:1px solid #edf0f3;padding:4px 8px;text-align:left}
"""


def build(store: Store, config: Config, workspace_root: Path | None = None) -> dict[str, Any]:
    """Collect every section's figure, reading and table from the store."""
    batches = store.frame("batches").sort_values("window_index")
    times = _batch_times(batches)
    metric = config.metric
    evaluations = full_rows(store.frame("evaluations"))
    models = store.frame("models")
    production, explanation = _production_explanation(
        store, None if workspace_root is None else Workspace.of(config))
    sections: list[dict[str, Any]] = []
    if not batches.empty:
        for key, title, (figure, reading) in (
            ("stream", "Stream and batches", _stream_section(batches)),
            ("quality", "Data quality", _quality_section(store.frame("quality"), times)),
            ("eda", "EDA: newest batch against the reference", _eda_section(
                store, batches, {config.target.column, config.target.source_column,
                                 config.source.time_column, *config.columns.exclude})),
            ("prequential", "Production model quality (prequential)",
             _prequential_section(store.frame("prequential"), store.frame("events"), times,
                                  metric)),
            ("candidates", "Candidates and chosen hyperparameters",
             _models_section(evaluations, times, metric)),
            ("importance", "Feature importance over time", _importance_section(store, models)),
            ("update", "Update performance", _timings_section(store.frame("stage_timings"),
                                                              times)),
            ("inference", "Inference performance", _inference_section(
                store.frame("inference_log"))),
        ):
            sections.append({"key": key, "title": title, "figure": figure, "reading": reading})
        events = store.frame("events")
        drift_figure, drift_reading = monitoring.drift_section(store.frame("drift"), events,
                                                              times)
        sections.insert(3, {"key": "drift", "title": "Data drift", "figure": drift_figure,
                            "reading": drift_reading})
        prequential = next(s for s in sections if s["key"] == "prequential")
        prequential["reading"] += " " + monitoring.challenger_reading(
            store.frame("prequential"), metric)
        figure, reading = monitoring.strategy_section(models, store.frame("stage_timings"),
                                                      times)
        sections.append({"key": "strategy", "title": "Training strategy: incremental, refit "
                         "or retrain (search)", "figure": figure, "reading": reading})
        figure, reading = monitoring.routing_section(store.frame("inference_log"))
        sections.append({"key": "routing", "title": "Routing between champion and fallback",
                         "figure": figure, "reading": reading})
        if not evaluations.empty:
            figure, reading, _ = monitoring.meta_section(
                evaluations, batch_features(store.frame("batches"), store.frame("column_stats"),
                                            config.target.column), metric)
            sections.append({"key": "meta", "title": "Meta-learning: what drives quality",
                             "figure": figure, "reading": reading})
        if production is not None and explanation and "tree" in explanation:
            figure, reading = _tree_section(production["version"], explanation["tree"])
            sections.append({"key": "tree", "title": "Decision tree of the production model",
                             "figure": figure, "reading": reading})
    tables = {
        "hyperparameters": _params_table(evaluations, times) if not evaluations.empty
        else pd.DataFrame(),
        "registry": _registry_table(models),
        "columns": _columns_table(store.frame("column_stats"), batches),
        "batches": batches[["id", "window_start", "window_end", "rows", "rows_with_target",
                            "status", "reason", "sha256"]].assign(
                                sha256=lambda f: f["sha256"].str[:12]) if not batches.empty
        else pd.DataFrame(),
    }
    cards = {
        "batches": len(batches),
        "rows": int(batches["rows"].sum()) if not batches.empty else 0,
        "model versions": len(models),
        "production": f"v{production['version']:06d} {production['family']}"
        if production else "none",
        "target": f"{config.target.column} ({config.target.task})",
    }
    return {"sections": sections, "tables": tables, "cards": cards, "metric": metric,
            "interpretation": _interpretation_html(production, explanation),
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds")}


def render_html(report: dict[str, Any]) -> str:
    nav = "".join(f'<a href="#{s["key"]}">{html.escape(s["title"])}</a>'
                  for s in report["sections"])
    nav += '<a href="#hyperparameters">Hyperparameters</a><a href="#registry">Registry</a>'
    nav += '<a href="#batches">Batches</a><a href="#columns">Columns</a>'
    cards = "".join(f'<div class="card">{html.escape(k)}<b>{html.escape(str(v))}</b></div>'
                    for k, v in report["cards"].items())
    body = "".join(
        f'<section id="{s["key"]}" class="plot-section"><h2>{html.escape(s["title"])}</h2>'
        f'<p class="reading">{html.escape(s["reading"])}</p>{_figure_html(s["figure"])}</section>'
        for s in report["sections"])
    body += (f'<section id="interpretation"><h2>Interpretation of the production model</h2>'
             f'{report["interpretation"]}</section>')
    for key, title in (("hyperparameters", "Chosen model and hyperparameters per update"),
                       ("registry", "Model registry"), ("batches", "Batches"),
                       ("columns", "Meta-parameters of the newest batch")):
        body += (f'<section id="{key}"><h2>{title}</h2>'
                 f'{_html_table(report["tables"][key])}</section>')
    if not report["sections"]:
        body = "<section><h2>No data yet</h2><p>Run <code>python run.py -mode update</code> " \
               "to ingest the first batch.</p></section>" + body
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<title>conveyor summary</title><style>{CSS}</style>'
            f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
            f'<header><h1>conveyor summary</h1><p>generated {report["generated_at"]}; '
            f'metric: {html.escape(report["metric"])}</p></header><nav>{nav}</nav>'
            f'<main><div class="cards">{cards}</div>{body}</main></body></html>')


def render_markdown(report: dict[str, Any]) -> str:
    lines = ["# conveyor summary", "", f"Generated {report['generated_at']}.", ""]
    lines += [f"- **{k}**: {v}" for k, v in report["cards"].items()] + [""]
    for section in report["sections"]:
        lines += [f"## {section['title']}", "", section["reading"], ""]
    for key, title in (("hyperparameters", "Chosen model and hyperparameters per update"),
                       ("registry", "Model registry"), ("batches", "Batches"),
                       ("columns", "Meta-parameters of the newest batch")):
        lines += [f"## {title}", "", _markdown_table(report["tables"][key])]
    return "\n".join(lines)


def render_json(report: dict[str, Any]) -> str:
    data = {
        "generated_at": report["generated_at"], "metric": report["metric"],
        "cards": report["cards"],
        "sections": [{"key": s["key"], "title": s["title"], "reading": s["reading"],
                      "figure": json.loads(s["figure"].to_json())}
                     for s in report["sections"]],
        "tables": {k: json.loads(v.to_json(orient="records")) if not v.empty else []
                   for k, v in report["tables"].items()},
    }
    return json.dumps(data, indent=1)


def write_summary(store: Store, reports_dir: Path, config: Config) -> Path:
    """Write summary-<time>.html/.md/.json; return the HTML path."""
    report = build(store, config, reports_dir.parent)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = reports_dir / f"summary-{stamp}"
    atomic_write_text(stem.with_suffix(".md"), render_markdown(report))
    atomic_write_text(stem.with_suffix(".json"), render_json(report))
    return atomic_write_text(stem.with_suffix(".html"), render_html(report))
