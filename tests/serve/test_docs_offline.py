"""The API's /docs page in a real headless browser with every host but 127.0.0.1
unreachable: the Swagger UI's JavaScript and CSS come from the app itself, the page
lists the operations, and the console stays clean.

Needs Debian's ``chromium`` and ``chromium-driver`` (installed by ``.ci/run``).
"""

from __future__ import annotations

import json

import httpx
import pytest
import yaml

from tests.browser import chromium, needs_chromium
from tests.e2e_helpers import copy_replay
from tests.reliability.apikit import Server
from tests.serve.test_api import free_port

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def server(replayed_folder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("docs") / "project"
    copy_replay(replayed_folder, folder)
    path, port = folder / "conveyor.yaml", free_port()
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.setdefault("serve", {})["port"] = port
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    running = Server(path, port, folder / "logs")
    yield running
    running.stop()


def test_docs_render_with_no_network(server):
    from selenium.webdriver.support.ui import WebDriverWait

    # no name resolves but the loopback address: a CDN cannot be reached
    driver = chromium("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
    try:
        driver.get(f"{server.url}/docs")
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script("return document.querySelectorAll('.opblock').length"))
        operations = driver.execute_script(
            "return Array.from(document.querySelectorAll('.opblock-summary-path'))"
            ".map(e => e.getAttribute('data-path'));")
        console = driver.get_log("browser")
        requests = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
    finally:
        driver.quit()
    assert {"/predict", "/health", "/models"} <= set(operations)
    assert [e for e in console if e["level"] == "SEVERE"] == []
    urls = [m["params"]["request"]["url"] for m in requests
            if m["method"] == "Network.requestWillBeSent"]
    assert f"{server.url}/docs/swagger-ui-bundle.js" in urls
    assert [u for u in urls if not u.startswith((server.url, "data:"))] == []


def test_docs_files_are_served_by_exact_name_only(server):
    assert httpx.get(f"{server.url}/docs/swagger-ui.css", timeout=10).status_code == 200
    for name in ("index.html", "swagger-ui.js.map", "..%2F..%2F__init__.py", "%2Fetc%2Fpasswd"):
        assert httpx.get(f"{server.url}/docs/{name}", timeout=10).status_code == 404
    assert httpx.get(f"{server.url}/redoc", timeout=10).status_code == 404
