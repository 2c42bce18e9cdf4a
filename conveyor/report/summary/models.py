"""Dashboard panels about the models: prequential quality, candidates and their
hyperparameters, feature importance over time, and the registry."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from conveyor.store import Store
from conveyor.validate.metrics import LOWER_IS_BETTER


def prequential_section(prequential: pd.DataFrame, events: pd.DataFrame,
                         times: dict[int, str], metric: str) -> tuple[go.Figure, str]:
    """Each role's score on every new batch before training on it; promotions marked."""
    figure = go.Figure()
    if prequential.empty:
        return figure, "No prequential scores yet: they start once a production model exists."
    prequential = prequential.assign(time=prequential["batch_id"].map(times))
    labels = {"production": "production as served (updated)",
              "champion": "its champion alone (every row)",
              "baseline": "baseline (never updated)", "fallback": "its fallback alone (robust)",
              "staging": "challenger (staging)"}
    for role, dash in (("production", "solid"), ("champion", "dot"), ("baseline", "longdash"),
                       ("fallback", "dashdot"), ("staging", "dash")):
        part = prequential[prequential["role"] == role].sort_values("time")
        if part.empty:
            continue
        label = labels[role]
        # served is drawn wide: the champion alone runs on top of it when nothing is routed
        figure.add_scatter(x=part["time"], y=part["score"], mode="lines+markers", name=label,
                           line={"dash": dash, "width": 4 if role == "production" else 2},
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
    reading = f"Mean prequential {metric}: production as served {mean_p:.4g}"
    champion = prequential[prequential["role"] == "champion"].set_index("batch_id")["score"]
    if not champion.empty:  # batches without a fallback: served is the champion alone
        alone = production.set_index("batch_id")["score"].copy()
        alone.update(champion)
        reading += f" (its champion alone on every row {alone.mean():.4g})"
    if not baseline.empty:
        mean_b = baseline["score"].mean()
        better = mean_p < mean_b if metric in LOWER_IS_BETTER else mean_p > mean_b
        reading += (f" vs never-updated baseline {mean_b:.4g} "
                    f"({'updating helps' if better else 'updating does not help yet'})")
    return figure, reading + f"; {len(promotions)} promotions."


def suspicious_reading(events: pd.DataFrame) -> str:
    """Say it when a version's hold-out score was implausibly perfect (a likely leak)."""
    if events.empty:
        return ""
    found = events[events["kind"] == "suspicious_score"]
    if found.empty:
        return ""
    newest = str(found.iloc[-1]["message"])
    more = f" ({len(found)} versions so far)" if len(found) > 1 else ""
    return f" WARNING{more}: {newest}."


def candidates_section(evaluations: pd.DataFrame, times: dict[int, str],
                    metric: str) -> tuple[go.Figure, str]:
    """Each family's best validation score per update; the chosen one starred."""
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
        if part["score"].notna().sum() == 0:
            continue  # nothing to draw: no legend entry either
        name = ("naive baseline (training mean or majority class)" if family == "baseline"
                else f"{family} (best of its grid)")
        figure.add_scatter(x=part["time"], y=part["score"], mode="lines+markers", name=name,
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


def params_table(evaluations: pd.DataFrame, times: dict[int, str]) -> pd.DataFrame:
    """The chosen family and hyperparameters of each update."""
    chosen = evaluations[evaluations["chosen"] == 1]
    return pd.DataFrame({
        "window start": chosen["batch_id"].map(times).str[:10],
        "family": chosen["family"] + chosen.get("variant", pd.Series("", index=chosen.index))
        .fillna("").map(lambda v: f"/{v}" if v else ""),
        "hyperparameters": chosen["params"].map(lambda p: json.dumps(p, sort_keys=True)),
        "validation score": chosen["score"].round(4),
    }).sort_values("window start")


def importance_section(store: Store, models: pd.DataFrame,
                       history: tuple[str, ...] = ()) -> tuple[go.Figure, str]:
    """Permutation importance of each input column, per model version over time; the
    history features (``history``) always among them, with their share said."""
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
    top = top.append(pd.Index([c for c in history if c in share.index and c not in top]))
    table, share = table.loc[top], share.loc[top]
    # the colour scale ends a little above the second largest column's share (of any
    # version), so the dominant column saturates and the others keep their contrast
    second = share.apply(lambda c: c.nlargest(2).iloc[-1] if c.notna().sum() > 1 else np.nan)
    cap = float(1.25 * second.max()) if second.notna().any() and second.max() > 0 else None
    figure.add_heatmap(z=share.values, x=[f"v{v} ({when.get(v, '')})" for v in table.columns],
                       y=list(table.index), colorscale="Viridis", zmin=0,
                       zmax=cap,
                       customdata=table.values, colorbar={"title": "share", "tickformat": ".0%"},
                       hovertemplate="%{y}, %{x}<br>%{z:.1%} of the version's importance"
                                     "<br>score drop %{customdata:.4g}<extra></extra>")
    figure.update_layout(title="Permutation importance: each column's share of the total",
                         height=max(360, 22 * len(top) + 120))
    latest = table.columns[-1]
    leaders = table[latest].sort_values(ascending=False).index[:3].tolist()
    shares = share[latest]
    read = [c for c in history if c in shares.index and bool(shares.notna()[c])]
    said = (f" The history features ({', '.join(read)}) hold "
            f"{shares[read].sum():.0%} of v{latest}'s importance." if read else "")
    return figure, (f"For v{latest} the most important columns are {', '.join(leaders)}."
                    f"{said} Importance is measured on held-out rows; the colours stop at "
                    "the second column's share, so the leading column does not wash out "
                    "the rest.")


def registry_table(models: pd.DataFrame) -> pd.DataFrame:
    """Every stored model version, newest first."""
    if models.empty:
        return models
    return pd.DataFrame({
        "version": models["version"].map(lambda v: f"v{v}"),
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
