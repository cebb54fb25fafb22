"""Dynamic batching: the requests that meet in a worker are merged into one runtime call.

Each request's images wait in one bounded queue, counted in instances. One task takes the
requests waiting there, whole and in order, up to `max_batch_size` instances, and runs the model
on them in one call in a thread of its own (the event loop goes on reading requests meanwhile),
then hands each request its rows. After the first request it waits up to `timeout_s` for more,
but only while other requests are already being received or decoded (`arriving`): an idle
server answers a lone request at once, and under load the queue fills while the model runs, so
batches form without waiting. A full queue refuses at once (RequestError 503 with Retry-After)
instead of growing without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from resnet_tf.errors import RequestError

RETRY_AFTER_S = 1
Outputs = dict[str, np.ndarray]


@dataclass
class Job:
    """One request's images and the future its rows of the outputs are delivered to."""

    images: np.ndarray
    future: asyncio.Future = field(repr=False)


class DynamicBatcher:
    """Merge concurrent requests into runtime calls of at most `max_batch_size` instances.

    `run` maps uint8 images [N, 32, 32, 3] to {output name: [N, ...]}; `observe(size, seconds)`
    and `queue_changed(delta)` report each call and the queue's depth (the metrics)."""

    def __init__(
        self,
        run: Callable[[np.ndarray], Outputs],
        max_batch_size: int,
        timeout_s: float,
        max_queue: int,
        observe: Callable[[int, float], None] = lambda size, seconds: None,
        queue_changed: Callable[[int], None] = lambda delta: None,
    ):
        self.run, self.max_batch_size, self.timeout_s = run, max_batch_size, timeout_s
        self.max_queue, self.observe, self.queue_changed = max_queue, observe, queue_changed
        self.jobs: deque[Job] = deque()
        self.queued = 0  # instances waiting
        self.arrivals = 0  # requests being received or decoded, not yet queued
        self.changed = asyncio.Event()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="runtime")
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.serve_forever())

    async def stop(self) -> None:
        """Stop taking batches (a call already running finishes) and fail whatever still waits."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.fail(list(self.jobs), RequestError(503, "the server is shutting down", RETRY_AFTER_S))
        self.jobs.clear()
        self.executor.shutdown(wait=True)

    @staticmethod
    def fail(jobs: list[Job], error: Exception) -> None:
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(error)

    def check_room(self, instances: int = 1) -> None:
        """A RequestError 503 if `instances` more would not fit in the queue now."""
        if self.queued + instances > self.max_queue:
            raise RequestError(
                503,
                f"the queue is full ({self.queued} images waiting, {self.max_queue} at most): "
                f"retry after {RETRY_AFTER_S} s",
                RETRY_AFTER_S,
            )

    @contextlib.contextmanager
    def arriving(self) -> Iterator[None]:
        """Count a request as on its way to the queue while its body is read and decoded."""
        self.arrivals += 1
        try:
            yield
        finally:
            self.arrivals -= 1
            self.changed.set()

    async def submit(self, images: np.ndarray) -> Outputs:
        """The outputs for `images` (their rows only), once a batch holding them has run."""
        self.check_room(len(images))
        job = Job(images, asyncio.get_running_loop().create_future())
        self.jobs.append(job)
        self.queued += len(images)
        self.queue_changed(len(images))
        self.changed.set()
        return await job.future

    async def serve_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.wait_for_batch(loop)
            batch = self.take_batch()
            images = (
                batch[0].images if len(batch) == 1 else np.concatenate([j.images for j in batch])
            )
            started = time.perf_counter()
            try:
                outputs = await loop.run_in_executor(self.executor, self.run, images)
            except asyncio.CancelledError:
                self.fail(batch, RequestError(503, "the server is shutting down", RETRY_AFTER_S))
                raise
            except Exception as error:  # the runtime's own errors reach each request as a 500
                self.fail(batch, error)
                continue
            self.observe(len(images), time.perf_counter() - started)
            start = 0
            for job in batch:
                end = start + len(job.images)
                if not job.future.done():  # a request cancelled meanwhile takes nothing
                    job.future.set_result({k: v[start:end] for k, v in outputs.items()})
                start = end

    async def wait_for_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Until a request waits, then until the batch is full, nothing more is on its way, or
        `timeout_s` has passed since the first one was seen."""
        while not self.jobs:
            self.changed.clear()
            await self.changed.wait()
        deadline = loop.time() + self.timeout_s
        while self.queued < self.max_batch_size and self.arrivals > 0:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self.changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)

    def take_batch(self) -> list[Job]:
        """The waiting requests, whole and in order, up to max_batch_size instances (at least
        one request: none is larger than max_batch_size)."""
        batch = [self.jobs.popleft()]
        size = len(batch[0].images)
        while self.jobs and size + len(self.jobs[0].images) <= self.max_batch_size:
            job = self.jobs.popleft()
            batch.append(job)
            size += len(job.images)
        self.queued -= size
        self.queue_changed(-size)
        return batch
