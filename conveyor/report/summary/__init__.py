"""The summary: a self-contained HTML dashboard plus Markdown and JSON, from stored figures.

Everything is read from the metadata store (never from raw data), so building
the report stays fast however long the stream grows. The HTML embeds
plotly.js once and loads nothing from the network.

- ``data``: stream, data quality, EDA; the batches and columns tables
- ``models``: prequential quality, candidates, importance; the registry table
- ``interpretation``: the production model's explain.json and decision tree
- ``performance``: update seconds per stage, inference calls
- drift, strategy, routing, champion vs challenger, meta-learning: :mod:`conveyor.report.monitoring`
- ``page``: HTML, Markdown and JSON rendering
- ``assemble``: the report built from the store, and the files written
"""

from conveyor.report.summary.assemble import build, write_summary
from conveyor.report.summary.page import render_html, render_json, render_markdown

__all__ = ["build", "render_html", "render_json", "render_markdown", "write_summary"]
