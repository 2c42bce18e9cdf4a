"""Dashboard panels about the data: the stream of batches, data quality, EDA, and the
tables of batches and of the newest batch's columns."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from conveyor.store import Store


def batch_times(batches: pd.DataFrame) -> dict[int, str]:
    """Each batch id's window start, the x axis of every panel over time."""
    return dict(zip(batches["id"], batches["window_start"], strict=True))


FEATURE_BARS = 15  # features in a bar panel (most missing, strongest correlations)
HEATMAP = 10  # features in the correlation heatmap


def plural(count: int, one: str, many: str) -> str:
    """``1 batch``, ``2 batches``.

    >>> plural(1, "batch", "batches"), plural(3, "call", "calls")
    ('1 batch', '3 calls')
    """
    return f"{count:,} {one if count == 1 else many}"


def stream_section(batches: pd.DataFrame) -> tuple[go.Figure, str]:
    """Rows per batch, accepted and quarantined stacked."""
    figure = go.Figure()
    for status, color in (("accepted", "#2b8cbe"), ("quarantined", "#e34a33")):
        part = batches[batches["status"] == status]
        figure.add_bar(x=part["window_start"], y=part["rows"], name=status, marker_color=color)
    figure.update_layout(title="Rows per batch", xaxis_title="window start",
                         yaxis_title="rows", barmode="stack")
    quarantined = int((batches["status"] == "quarantined").sum())
    first = batches["time_min"].min() if "time_min" in batches else batches["window_start"].min()
    last = batches["time_max"].max() if "time_max" in batches else batches["window_end"].max()
    reading = (f"{plural(len(batches), 'batch', 'batches')}, {int(batches['rows'].sum()):,} "
               f"rows with times from {str(first)[:16]} to {str(last)[:16]}; {quarantined} "
               "quarantined.")
    return figure, reading


def quality_section(quality: pd.DataFrame, times: dict[int, str]) -> tuple[go.Figure, str]:
    """Row shares per batch, with the checks that warned or failed as bars."""
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
                         "warned or failed", xaxis_title="window start",
                         yaxis={"title": "share of rows", "tickformat": ".1%"},
                         yaxis2={"title": "checks", "overlaying": "y", "side": "right",
                                 "range": [0, 1.1 * most], "dtick": max(1, round(most / 5)),
                                 "showgrid": False}, barmode="stack")
    reading = (f"{len(failed)} failed and {len(warned)} warned checks over "
               f"{plural(quality['batch_id'].nunique(), 'batch', 'batches')}"
               + (f"; most warned column: {warned['column'].mode().iloc[0]}"
                  if not warned.empty else "")
               + (". A failed check on a column leaves that column out of the batch's "
                  "training rows; only the checks in quality.quarantine_on quarantine a whole "
                  "batch." if not failed.empty else "."))
    return figure, reading


def _missing_bars(figure: go.Figure, latest: pd.Series, reference: pd.Series) -> None:
    """The columns with the most missing values only, as horizontal bars (a column's name
    reads along its bar however long it is): a bar of zeros per column says nothing."""
    worst = pd.concat([latest, reference], axis=1).max(axis=1)
    shown = worst[worst > 0].sort_values().index[-FEATURE_BARS:]  # the most missing on top
    figure.add_bar(y=list(shown), x=latest.reindex(shown).values, name="newest batch",
                   orientation="h", marker_color="#e6550d", row=1, col=1)
    if not reference.empty:
        figure.add_bar(y=list(shown), x=reference.reindex(shown).values, name="reference",
                       orientation="h", marker_color="#3182bd", row=1, col=1)
    figure.update_xaxes(tickformat=".2~%", row=1, col=1)  # 0.25%, not four "0%" ticks


def _strongest(doc: dict[str, Any]) -> list[str]:
    """The features most correlated with the target in a batch's EDA (by |r|), at most
    FEATURE_BARS: forty bars or a forty-row heatmap have labels no one can read."""
    pearson = pd.Series(doc.get("target_correlations", {}).get("pearson", {}), dtype=float)
    return pearson.abs().sort_values(ascending=False).index[:FEATURE_BARS].tolist()


def _correlation_heatmap(figure: go.Figure, matrix: dict[str, Any] | None,
                         strongest: list[str]) -> None:
    """The correlations among the numeric features the batch's EDA paired, at most the
    HEATMAP most correlated with the target."""
    if not matrix or not matrix["values"]:
        return
    keep = [i for i, c in enumerate(matrix["columns"]) if c in strongest[:HEATMAP]] or \
        list(range(min(HEATMAP, len(matrix["columns"]))))
    names = [matrix["columns"][i] for i in keep]
    figure.add_heatmap(z=[[matrix["values"][i][j] for j in keep] for i in keep], x=names,
                       y=names, zmin=-1, zmax=1, colorscale="RdBu", row=4, col=1,
                       colorbar={"len": 0.22, "y": 0.11, "title": {"text": "r", "side": "right"}})


def eda_section(store: Store, batches: pd.DataFrame,
                 hidden: set[str]) -> tuple[go.Figure, str]:
    """The newest batch against the reference (the production model's training batches);
    ``hidden`` columns (target, time, excluded ones) stay out of the missingness plot."""
    from plotly.subplots import make_subplots

    # one panel per row: feature names are long, and side by side they have no room
    figure = make_subplots(
        rows=4, cols=1, vertical_spacing=0.07, row_heights=[0.3, 0.15, 0.3, 0.25],
        subplot_titles=(f"Missing share (the {FEATURE_BARS} most missing features)",
                        "Target distribution",
                        f"Correlation with the target (the {FEATURE_BARS} strongest)",
                        "Correlations among numeric features (newest batch)"))
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
    _missing_bars(figure, latest_stats, ref_stats)
    data = eda.set_index("batch_id")["data"]
    strongest = _strongest(data[newest] if newest in data.index else {})
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
                               showlegend=False, row=2, col=1)
        elif target["kind"] == "classes":
            figure.add_bar(x=list(target["shares"]), y=list(target["shares"].values()),
                           marker_color=color, showlegend=False, row=2, col=1)
        correlations = [d.get("target_correlations", {}).get("pearson", {}) for d in docs]
        if correlations and correlations[0]:
            frame = pd.DataFrame(correlations).astype(float).mean()
            frame = frame[[c for c in reversed(strongest) if c in frame.index]]
            figure.add_bar(y=frame.index, x=frame.values, orientation="h", marker_color=color,
                           showlegend=False, row=3, col=1)
    if newest in data.index:
        _correlation_heatmap(figure, data[newest].get("correlation_matrix"), strongest)
    figure.update_layout(height=1500, barmode="group")
    moved = (latest_stats - ref_stats).abs().dropna().sort_values(ascending=False)
    reading = (f"Batch {newest} against reference batches {reference}" if reference else
               f"Batch {newest}: no reference yet (the reference is production's training "
               "window, so it starts with the first model)")
    if not moved.empty:
        reading += (f"; the largest change in missingness: {moved.index[0]} "
                    f"({ref_stats[moved.index[0]]:.1%} -> {latest_stats[moved.index[0]]:.1%})")
    return figure, reading + "."


def columns_table(stats: pd.DataFrame, batches: pd.DataFrame) -> pd.DataFrame:
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


def batches_table(batches: pd.DataFrame) -> pd.DataFrame:
    """One row per batch: its window, rows, status and a short sha256."""
    if batches.empty:
        return pd.DataFrame()
    return batches[["id", "window_start", "window_end", "rows", "rows_with_target",
                    "status", "reason", "sha256"]].assign(sha256=lambda f: f["sha256"].str[:12])
