"""Headless Chromium for the browser tests (Debian's ``chromium`` and ``chromium-driver``,
installed by ``.ci/run``): one way to start it, and the skip when it is not installed."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless browser test needs Debian's `chromium` and `chromium-driver` "
           f"(apt-get install chromium chromium-driver); found chromium={CHROMIUM}, "
           f"chromedriver={CHROMEDRIVER}",
)


def chromium(*flags: str) -> Any:
    """A headless Chromium logging its console and every request the page sends
    (DevTools), with ``flags`` added; the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", *flags):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # an explicit driver path: Selenium Manager is never asked to download anything
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver
