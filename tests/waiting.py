"""Waiting for a condition with a deadline, instead of sleeping a fixed time and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Call ``predicate`` until it returns something other than None or False, or until
    ``timeout`` seconds pass; return its last value, so the caller's own assertion reports
    a timeout. (A table or an array counts as found: its truth value is ambiguous.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if (value is not None and value is not False) or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
