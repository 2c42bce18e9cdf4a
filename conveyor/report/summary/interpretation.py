"""The production model explained: its stored explain.json as HTML, and its decision
tree (if any) drawn as an icicle."""

from __future__ import annotations

import html
import json
from typing import Any

import plotly.graph_objects as go

from conveyor.errors import ConveyorError
from conveyor.storage import locate
from conveyor.store import Store
from conveyor.workspace import Workspace


def production_explanation(store: Store, workspace: Workspace | None
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


def readable(name: str, columns: list[str]) -> str:
    """A model input as a person names it: ``categorical__tailnum_N809JB`` is
    ``tailnum = N809JB``, ``numeric__dep_delay`` is ``dep_delay``.

    >>> readable("categorical__tailnum_N809JB", ["tailnum", "dep_delay"])
    'tailnum = N809JB'
    >>> readable("numeric__dep_delay", ["tailnum", "dep_delay"])
    'dep_delay'
    """
    bare = name.split("__", 1)[1] if "__" in name else name
    if bare in columns:
        return bare
    for column in sorted(columns, key=len, reverse=True):
        if bare.startswith(f"{column}_"):
            return f"{column} = {bare[len(column) + 1:]}"
    return bare


def interpretation_html(production: dict[str, Any] | None,
                         data: dict[str, Any] | None) -> str:
    """The production model's coefficients, tree rules and SHAP, from its explain.json."""
    if production is None:
        return "<p>No production model yet.</p>"
    if data is None:
        return "<p>No interpretation stored for this version.</p>"
    parts = [f"<p>v{production['version']}: {html.escape(data['family'])}</p>"]
    columns = list(data.get("importance") or {})
    if "coefficients" in data:
        top = sorted(data["coefficients"].items(), key=lambda kv: -abs(kv[1]))[:15]
        rows = "".join(f"<tr><td>{html.escape(readable(k, columns))}</td><td>{v:+.4g}</td></tr>"
                       for k, v in top)
        parts.append("<h3>Largest coefficients (scaled features)</h3><table class='table'>"
                     f"<tr><th>feature</th><th>coefficient</th></tr>{rows}</table>")
    if "tree" in data:
        tree = data["tree"]
        parts.append(f"<h3>Tree: depth {tree['depth']}, {tree['leaves']} leaves (top levels; "
                     f"drawn in the tree section)</h3><pre>{html.escape(tree['text'])}</pre>")
    if "shap" in data:
        top = sorted(data["shap"].items(), key=lambda kv: -kv[1])[:15]
        rows = "".join(f"<tr><td>{html.escape(readable(k, columns))}</td><td>{v:.4g}</td></tr>"
                       for k, v in top)
        parts.append("<h3>Mean |SHAP| on held-out rows (target units)</h3><table class='table'>"
                     f"<tr><th>feature</th><th>mean |SHAP|</th></tr>{rows}</table>")
    return "".join(parts)


def tree_section(version: int, tree: dict[str, Any]) -> tuple[go.Figure, str]:
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
    figure.update_layout(title=f"v{version}: depth {tree['depth']}, {tree['leaves']} "
                         "leaves" + ("" if complete else f", first {len(nodes)} nodes"),
                         height=480)
    root = tree["nodes"][0]
    reading = (f"The first split is on {root['feature']} at {root['threshold']:.4g}"
               if root["feature"] else "The tree is a single leaf")
    return figure, reading + ("." if complete else "; deeper levels are in the text rules "
                              "under Interpretation.")
