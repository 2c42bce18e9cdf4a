"""The micro-batcher on its own: what it gathers, when it waits, and whose error is whose."""

from __future__ import annotations

import asyncio
import time

import pytest

from conveyor.serve.api.batching import MicroBatcher


class Recorder:
    """A ``run`` that answers each record with its double and remembers its calls."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.calls: list[list[int]] = []
        self.seconds = seconds

    def __call__(self, jobs):
        values = [r["x"] for job in jobs for r in job.records]
        self.calls.append(values)
        time.sleep(self.seconds)
        if any(v < 0 for v in values):
            raise ValueError(f"negative among {values}")
        return [[2 * r["x"] for r in job.records] for job in jobs]


def run(coroutine):
    return asyncio.run(coroutine)


def test_requests_in_flight_share_a_call_and_get_their_own_answers():
    recorder = Recorder(seconds=0.02)
    batcher = MicroBatcher(recorder, max_rows=100, max_wait_ms=5)

    async def go():
        return await asyncio.gather(*(batcher.submit("m", "production", [{"x": i}, {"x": -0.5 + i}])
                                      for i in range(1, 9)))

    answers = run(go())
    batcher.close()
    assert answers == [[2 * i, 2 * i - 1] for i in range(1, 9)]
    assert len(recorder.calls) < 8  # gathered: fewer calls than requests


def test_a_failing_request_fails_alone():
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_rows=100, max_wait_ms=5)

    async def go():
        bodies = [[{"x": 1}], [{"x": -1}], [{"x": 3}]]
        return await asyncio.gather(*(batcher.submit("m", "production", b) for b in bodies),
                                    return_exceptions=True)

    ok, bad, ok2 = run(go())
    batcher.close()
    assert (ok, ok2) == ([2], [6])
    assert isinstance(bad, ValueError) and str(bad) == "negative among [-1]"


def test_each_model_is_predicted_in_its_own_call():
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_rows=100, max_wait_ms=5)

    async def go():
        return await asyncio.gather(*(batcher.submit(model, "v", [{"x": i}])
                                      for i, model in enumerate(["a", "b", "a", "b"])))

    assert run(go()) == [[0], [2], [4], [6]]
    batcher.close()
    assert sorted(map(sorted, recorder.calls)) == [[0, 2], [1, 3]]


def test_max_rows_bounds_a_call_but_never_splits_a_request():
    recorder = Recorder(seconds=0.01)
    batcher = MicroBatcher(recorder, max_rows=3, max_wait_ms=5)

    async def go():
        bodies = [[{"x": 1}, {"x": 2}], [{"x": 3}, {"x": 4}], [{"x": 5}] * 5]
        return await asyncio.gather(*(batcher.submit("m", "v", b) for b in bodies))

    answers = run(go())
    batcher.close()
    assert answers[2] == [10] * 5
    assert all(len(call) <= 3 or set(call) == {5} for call in recorder.calls)


def test_a_lone_client_never_waits_for_company():
    """One request at a time: each is predicted at once, not after the batch window."""
    recorder = Recorder()
    batcher = MicroBatcher(recorder, max_rows=100, max_wait_ms=200)

    async def go():
        began = time.perf_counter()
        for i in range(10):
            assert await batcher.submit("m", "v", [{"x": i}]) == [2 * i]
        return time.perf_counter() - began

    elapsed = run(go())
    batcher.close()
    assert elapsed < 0.5  # ten waits of the 200 ms window would take 2 s
    assert batcher.usual == pytest.approx(1.0)
