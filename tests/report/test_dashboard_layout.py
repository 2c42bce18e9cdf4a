"""Every dashboard panel laid out readably, checked in a real headless browser.

Three dashboards: the flights slice (13 features) and synthetic tables with 20 and 40
features whose names are long. Each is opened at 1,400 and at 900 px wide; in every figure, no
tick label, axis title, legend entry or figure title overlaps another or leaves the
figure, and no text a person reads says None, NaN or uses the micro sign (a share
drawn as 800µ instead of a percent). Each panel is screenshotted at both widths into
the test artifacts (``$CONVEYOR_TEST_ARTIFACTS`` or ``build/test-artifacts``) for a
person to look at.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (installed by ``.ci/run``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conveyor import pipeline
from conveyor.config import load_config
from tests.browser import chromium, needs_chromium
from tests.e2e_helpers import copy_replay, inference_sample
from tests.report.test_dashboard_browser import artifacts_dir, wait_until_plots_rendered

pytestmark = needs_chromium

WIDTHS = (1400, 900)

# every text box of a figure a person reads, with what it is and which group it is in
TEXTS = """
const div = arguments[0];
const picks = [
  ['xtick', 'g.xaxislayer-above text'], ['ytick', 'g.yaxislayer-above text'],
  ['axis title', 'g[class*="-xtitle"] text, g[class*="-ytitle"] text'],
  ['legend', 'g.legend g.traces text'], ['title', 'g.g-gtitle text'],
  ['colorbar', 'g.colorbar text'], ['annotation', 'g.annotation text'],
];
const out = [];
for (const [kind, selector] of picks) {
  for (const element of div.querySelectorAll(selector)) {
    const style = window.getComputedStyle(element);
    const box = element.getBoundingClientRect();
    if (!element.textContent.trim() || box.width < 1 || box.height < 1) continue;
    if (element.closest('[style*="opacity: 0"]')) continue;
    if (style.display === 'none' || style.visibility === 'hidden' ||
        parseFloat(style.opacity) === 0) continue;
    const group = element.closest('g.xaxislayer-above, g.yaxislayer-above, g.legend, ' +
                                  'g.colorbar, g.annotation');
    // the text's own box, turned as it is drawn (tick labels are often rotated)
    const local = element.getBBox();
    const matrix = element.getScreenCTM();
    const corners = [[local.x, local.y], [local.x + local.width, local.y],
                     [local.x + local.width, local.y + local.height],
                     [local.x, local.y + local.height]].map(([x, y]) => {
      const point = element.ownerSVGElement.createSVGPoint();
      point.x = x; point.y = y;
      const on = point.matrixTransform(matrix);
      return [on.x, on.y];
    });
    out.push({kind, text: element.textContent, corners,
              group: group ? Array.from(group.parentNode.children).indexOf(group) + ':' +
                             group.getAttribute('class') : kind});
  }
}
const frame = div.getBoundingClientRect();
return {texts: out, frame: {left: frame.left, right: frame.right, top: frame.top,
                            bottom: frame.bottom}};
"""


def overlapping(a: list[list[float]], b: list[list[float]], slack: float = 1.0) -> bool:
    """Whether two convex quadrilaterals (drawn text boxes) overlap by more than ``slack``
    pixels: no edge direction of either separates them (the separating axis test)."""
    for quad in (a, b):
        for i in range(4):
            (x1, y1), (x2, y2) = quad[i], quad[(i + 1) % 4]
            normal = np.array([y1 - y2, x2 - x1], dtype=float)
            length = np.hypot(*normal)
            if length == 0:
                continue
            normal /= length
            pa, pb = np.asarray(a) @ normal, np.asarray(b) @ normal
            if pa.max() <= pb.min() + slack or pb.max() <= pa.min() + slack:
                return False
    return True


def problems(found: dict) -> list[str]:
    """Overlapping or escaping text boxes of one figure, described for a person."""
    texts, frame = found["texts"], found["frame"]
    out = []
    for box in texts:
        xs, ys = [p[0] for p in box["corners"]], [p[1] for p in box["corners"]]
        if (min(xs) < frame["left"] - 2 or max(xs) > frame["right"] + 2
                or min(ys) < frame["top"] - 2 or max(ys) > frame["bottom"] + 2):
            out.append(f"{box['kind']} {box['text']!r} leaves the figure")
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            if a["kind"] == b["kind"] == "legend" and a["group"] == b["group"]:
                continue  # a legend entry's own parts
            if overlapping(a["corners"], b["corners"]):
                out.append(f"{a['kind']} {a['text']!r} overlaps {b['kind']} {b['text']!r}")
    return out


def wide_table(folder: Path, features: int = 40, days: int = 12) -> Path:
    """A regression stream with many features and long names: numbers and categories."""
    rng = np.random.default_rng(0)
    n = days * 96
    frame = pd.DataFrame({"recorded_at": pd.date_range("2024-03-01", periods=n, freq="15min",
                                                       tz="UTC")})
    for k in range(features):
        name = f"sensor_reading_{k:02d}_{'pressure' if k % 2 else 'temperature'}"
        if k % 4 == 3:
            frame[name] = rng.choice([f"level_{j}_of_{name[:12]}" for j in range(6)], n)
        else:
            frame[name] = rng.normal(k, 1 + k / 10, n)
        if k % 5 == 0:
            frame.loc[rng.random(n) < 0.02 * (k % 7), name] = np.nan
    numeric = [c for c in frame.columns[1:] if frame[c].dtype == float]
    frame["output_power_kw"] = frame[numeric].fillna(0).to_numpy() @ rng.normal(0, 1, len(
        numeric)) + rng.normal(0, 1, n)
    frame.to_csv(folder / "wide.csv", index=False)
    config = {
        "workspace": "ws",
        "source": {"kind": "csv", "path": "wide.csv", "time_column": "recorded_at"},
        "target": {"column": "output_power_kw", "task": "regression"},
        "stream": {"window": "2D", "initial_batches": 2},
        "quality": {"min_rows": 50},
        "train": {"families": {"linear": {"grid": {"alpha": [1.0, 10.0]}},
                               "tree": {"grid": {"max_depth": [4]}}}},
    }
    path = folder / "conveyor.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def dashboards(replayed_folder, tmp_path_factory) -> dict[str, Path]:
    """The flights dashboard (13 features) and the 20- and 40-feature ones."""
    flights = tmp_path_factory.mktemp("layout") / "flights"
    config = copy_replay(replayed_folder, flights)
    pipeline.inference(config, inference_sample(flights))
    out = {"flights": pipeline.summary(config)}
    for name, features in (("twenty", 20), ("wide", 40)):
        wide_config = load_config(wide_table(tmp_path_factory.mktemp(f"layout-{name}"),
                                             features))
        for _ in range(4):
            assert pipeline.update(wide_config).ok
        out[name] = pipeline.summary(wide_config)
    return out


@pytest.fixture(scope="module")
def driver():
    browser = chromium("--allow-file-access-from-files")
    yield browser
    browser.quit()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["flights", "twenty", "wide"])
def test_no_panel_has_overlapping_or_escaping_labels(driver, dashboards, name, width):
    driver.set_window_size(width, 1700)  # the tallest panel fits: its screenshot is whole
    driver.get(dashboards[name].as_uri())
    wait_until_plots_rendered(driver)
    time.sleep(0.5)  # plotly lays the figures out again once the page has its width
    folder = artifacts_dir() / "panels"
    folder.mkdir(exist_ok=True)
    found = {}
    for div in driver.find_elements("css selector", "div.plotly-graph-div"):
        section = div.find_element("xpath", "./ancestor::section").get_attribute("id")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", div)
        div.screenshot(str(folder / f"{name}-{width}-{section}.png"))
        found[section] = problems(driver.execute_script(TEXTS, div))
    assert found, "no figure rendered"
    bad = [f"{section}: {line}" for section, lines in found.items() for line in lines]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("name", ["flights", "twenty", "wide"])
def test_no_text_says_none_nan_or_micro(driver, dashboards, name):
    driver.set_window_size(1400, 1000)
    driver.get(dashboards[name].as_uri())
    wait_until_plots_rendered(driver)
    text = driver.execute_script(
        "return document.body.innerText + ' ' + Array.from(document.querySelectorAll("
        "'svg text')).map(t => t.textContent).join(' ');")
    words = text.replace(",", " ").replace(";", " ").split()
    shown = [" ".join(words[max(0, i - 6):i + 3]) for i, w in enumerate(words)
             if w in {"None", "NaN", "nan"}]
    assert not shown, shown
    assert "µ" not in text and "\u03bc" not in text
