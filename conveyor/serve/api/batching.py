"""Adaptive micro-batching: concurrent requests predicted in one call.

Most of a single-row prediction is fixed cost per call (building frames, the
column transformer, the router), so model servers gather the requests in flight
and predict them together. :class:`MicroBatcher` lives in the event loop: a
request's records join a queue and the request waits on a future; one
dispatcher task takes the queue as a batch and predicts it in one worker thread,
while the loop keeps reading new requests. Under load the batches form by
themselves (whatever arrived during one prediction is the next batch); the
wait before a batch adapts to traffic: when recent batches held several
requests, the dispatcher waits up to ``max_wait_ms`` for as many to arrive, and
a lone client never waits.

A batch is predicted by ``run`` (the route's function); a request's own
problem (one record the model cannot take) must not fail its neighbours, so
``run`` is called again on each request alone when the batch as a whole fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

SMOOTHING = 0.2  # weight of the newest batch in the running mean of requests per batch


@dataclass
class Job:
    """One request's records for one model, and where its answer goes."""

    model: Any  # conveyor.serve.bundle.LoadedModel
    variant: str
    records: list[dict[str, Any]]
    future: asyncio.Future[Any]
    context: Any = None  # what ``run`` needs beside the model (the enricher)
    arrived: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Gathers jobs for at most ``max_wait_ms`` (adapted to traffic) or ``max_rows`` rows,
    then hands each model's jobs to ``run(jobs) -> answers`` in one worker thread."""

    def __init__(self, run: Callable[[list[Job]], list[Any]], max_rows: int,
                 max_wait_ms: float) -> None:
        self.run, self.max_rows, self.max_wait = run, max_rows, max_wait_ms / 1000
        self.queue: list[Job] = []
        self.rows = 0
        self.usual = 1.0  # running mean of requests per batch: how many to wait for
        self.batches = 0
        self._wake = asyncio.Event()
        self._enough = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conveyor-predict")

    async def submit(self, model: Any, variant: str, records: list[dict[str, Any]],
                     context: Any = None) -> Any:
        """Queue one request's records; return ``run``'s answer for them (or raise its
        exception)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._dispatch())
        job = Job(model, variant, records, asyncio.get_running_loop().create_future(), context)
        self.queue.append(job)
        self.rows += len(records)
        self._wake.set()
        if len(self.queue) >= self.usual - 0.5 or self.rows >= self.max_rows:
            self._enough.set()
        return await job.future

    async def _dispatch(self) -> None:
        while True:
            await self._wake.wait()
            if self.usual >= 1.5 and self.rows < self.max_rows and self.max_wait > 0:
                # several requests usually come together: wait (briefly) for the others
                self._enough.clear()
                if len(self.queue) < self.usual - 0.5:
                    waited = self.max_wait - (time.perf_counter() - self.queue[0].arrived)
                    if waited > 0:
                        try:
                            await asyncio.wait_for(self._enough.wait(), waited)
                        except TimeoutError:
                            pass
            batch = self._take()
            self.batches += 1
            self.usual += SMOOTHING * (len(batch) - self.usual)
            loop = asyncio.get_running_loop()
            try:
                answers = await loop.run_in_executor(self._thread, self._answer, batch)
            except BaseException as exc:  # the worker itself failed (shut down, cancelled):
                for job in batch:  # no request of this batch may wait forever
                    if not job.future.done():
                        job.future.set_exception(RuntimeError(f"prediction stopped: {exc!r}"))
                raise
            for job, answer in zip(batch, answers, strict=True):
                if job.future.done():  # the client went away
                    continue
                if isinstance(answer, BaseException):
                    job.future.set_exception(answer)
                else:
                    job.future.set_result(answer)

    def _take(self) -> list[Job]:
        """The oldest jobs up to ``max_rows`` rows (at least one job, however large)."""
        taken, rows = 0, 0
        for job in self.queue:
            if taken and rows + len(job.records) > self.max_rows:
                break
            taken, rows = taken + 1, rows + len(job.records)
        batch, self.queue = self.queue[:taken], self.queue[taken:]
        self.rows -= rows
        if not self.queue:
            self._wake.clear()
        return batch

    def _answer(self, batch: list[Job]) -> list[Any]:
        """Answers (or exceptions) in the batch's order: each model's jobs in one call;
        when that call fails, each of its jobs alone, so a bad record fails only its own
        request."""
        answers: dict[int, Any] = {}
        by_model: dict[int, list[int]] = {}
        for i, job in enumerate(batch):
            by_model.setdefault(id(job.model), []).append(i)
        for members in by_model.values():
            jobs = [batch[i] for i in members]
            try:
                answers.update(zip(members, self.run(jobs), strict=True))
            except Exception as exc:  # noqa: BLE001 - found out below, job by job
                if len(members) == 1:
                    answers[members[0]] = exc
                    continue
                for i in members:
                    try:
                        answers[i] = self.run([batch[i]])[0]
                    except Exception as exc:  # noqa: BLE001 - the request's own answer
                        answers[i] = exc
        return [answers[i] for i in range(len(batch))]

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._thread.shutdown(wait=False, cancel_futures=True)
