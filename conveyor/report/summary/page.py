"""The page: the report rendered as self-contained HTML (plotly.js embedded once,
nothing loaded from the network), as Markdown and as JSON."""

from __future__ import annotations

import html
import json
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

# plotly's toolbar buttons a reader of these panels does without
SPARE_BUTTONS = ("pan2d", "select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d")


def figure_html(figure: go.Figure) -> str:
    """A figure as an HTML fragment (plotly.js is embedded once by the page)."""
    figure.update_layout(template="plotly_white", height=figure.layout.height or 380,
                         margin={"l": 60, "r": 45, "t": 40, "b": 90},
                         legend={"orientation": "h", "y": -0.32})
    # labels never run off the figure or into each other (the browser test checks this at
    # 1,400 and 900 px): margins grow to fit them, x labels keep clear of the y labels at
    # the corner, and a colour bar's title stands beside it, not above its top value
    figure.update_xaxes(automargin=True, ticklabelstandoff=8)
    figure.update_yaxes(automargin=True)
    figure.update_traces(colorbar_title_side="right", selector={"type": "heatmap"})
    if not figure.data:  # an empty grid reads as a broken plot: say why it is empty
        figure.update_layout(height=160, xaxis={"visible": False}, yaxis={"visible": False},
                             annotations=[{"text": "nothing to plot yet (see the line above)",
                                           "showarrow": False, "font": {"color": "#6b7280"}}])
    # three tool buttons (save, zoom, reset): the hover toolbar covers less of a long title
    return figure.to_html(full_html=False, include_plotlyjs=False,
                          config={"displaylogo": False, "responsive": True,
                                  "modeBarButtonsToRemove": list(SPARE_BUTTONS)})


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    """The cells as a person reads them: a missing value is an empty cell, not None/NaN."""
    return frame.astype(object).where(frame.notna(), "")


def html_table(frame: pd.DataFrame) -> str:
    """A table as escaped HTML."""
    if frame.empty:
        return "<p>Nothing yet.</p>"
    return _shown(frame).to_html(index=False, classes="table", border=0, escape=True)


def markdown_table(frame: pd.DataFrame) -> str:
    """A table as Markdown ('|' in cells replaced)."""
    if frame.empty:
        return "Nothing yet.\n"
    frame = _shown(frame)
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


def render_html(report: dict[str, Any]) -> str:
    """The whole page: cards, one section per panel, interpretation, tables."""
    nav = "".join(f'<a href="#{s["key"]}">{html.escape(s["title"])}</a>'
                  for s in report["sections"])
    nav += '<a href="#hyperparameters">Hyperparameters</a><a href="#registry">Registry</a>'
    nav += '<a href="#batches">Batches</a><a href="#columns">Columns</a>'
    cards = "".join(f'<div class="card">{html.escape(k)}<b>{html.escape(str(v))}</b></div>'
                    for k, v in report["cards"].items())
    body = "".join(
        f'<section id="{s["key"]}" class="plot-section"><h2>{html.escape(s["title"])}</h2>'
        f'<p class="reading">{html.escape(s["reading"])}</p>{figure_html(s["figure"])}</section>'
        for s in report["sections"])
    body += (f'<section id="interpretation"><h2>Interpretation of the production model</h2>'
             f'{report["interpretation"]}</section>')
    for key, title in (("hyperparameters", "Chosen model and hyperparameters per update"),
                       ("registry", "Model registry"), ("batches", "Batches"),
                       ("columns", "Meta-parameters of the newest batch")):
        body += (f'<section id="{key}"><h2>{title}</h2>'
                 f'{html_table(report["tables"][key])}</section>')
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
    """The cards, readings and tables as Markdown."""
    lines = ["# conveyor summary", "", f"Generated {report['generated_at']}.", ""]
    lines += [f"- **{k}**: {v}" for k, v in report["cards"].items()] + [""]
    for section in report["sections"]:
        lines += [f"## {section['title']}", "", section["reading"], ""]
    for key, title in (("hyperparameters", "Chosen model and hyperparameters per update"),
                       ("registry", "Model registry"), ("batches", "Batches"),
                       ("columns", "Meta-parameters of the newest batch")):
        lines += [f"## {title}", "", markdown_table(report["tables"][key])]
    return "\n".join(lines)


def render_json(report: dict[str, Any]) -> str:
    """The cards, readings, figures and tables as JSON."""
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
