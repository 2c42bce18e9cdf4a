"""Dashboard panels about running the system: update seconds per stage, and the
throughput and memory of inference calls."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from conveyor.report.summary.data import plural


def inference_section(inference: pd.DataFrame) -> tuple[go.Figure, str]:
    """Throughput and peak memory of each inference call."""
    figure = go.Figure()
    if inference.empty:
        return figure, "No inference calls yet."
    inference = inference.sort_values("at")
    # memory as faint bars behind, throughput as the line in front: both stay visible
    figure.add_bar(x=inference["at"], y=inference["peak_mb"], name="peak memory (MiB)",
                   yaxis="y2", opacity=0.3, marker_color="#9e9e9e")
    figure.add_scatter(x=inference["at"], y=inference["rows_per_second"], name="rows/s",
                       mode="lines+markers", customdata=inference["version"],
                       line={"width": 3, "color": "#1f77b4"},
                       hovertemplate="%{x}<br>%{y:.0f} rows/s<br>v%{customdata}")
    figure.update_layout(title="Inference calls: throughput and peak memory",
                         yaxis={"title": "rows/s"},
                         yaxis2={"title": "MiB", "overlaying": "y", "side": "right"})
    last = inference.iloc[-1]
    reading = (f"{plural(len(inference), 'call', 'calls')}; the last predicted "
               f"{int(last['rows']):,} rows in "
               f"{last['seconds']:.2f} s ({last['rows_per_second']:,.0f} rows/s) with v"
               f"{int(last['version'])}, peak {last['peak_mb']:.0f} MiB.")
    return figure, reading


def timings_section(timings: pd.DataFrame, times: dict[int, str]) -> tuple[go.Figure, str]:
    """Seconds per stage of each update, stacked."""
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
