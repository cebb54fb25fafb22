"""DynamicBatcher on its own, with a runtime that records its calls: merging, limits, errors.

The server tests (test_serve_*.py) check the same through HTTP; here each rule is checked
exactly, in one event loop, without timing luck.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from resnet_tf.deploy.serve.batching import DynamicBatcher
from resnet_tf.errors import RequestError


class Runtime:
    """Outputs that say which image each row came from; every call's batch size is kept, and
    a call can be held until the test releases it."""

    def __init__(self):
        self.sizes: list[int] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        self.release.wait(10)
        self.sizes.append(len(images))
        first_pixel = images[:, 0, 0, 0].astype(np.float32)
        return {"probabilities": np.stack([first_pixel, -first_pixel], axis=1), "id": first_pixel}


def images(*ids: int) -> np.ndarray:
    batch = np.zeros((len(ids), 32, 32, 3), np.uint8)
    batch[:, 0, 0, 0] = ids
    return batch


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 20))


def test_concurrent_requests_are_merged_and_each_gets_its_own_rows():
    runtime = Runtime()

    async def scenario():
        batcher = DynamicBatcher(runtime, max_batch_size=8, timeout_s=5.0, max_queue=64)
        batcher.start()
        # Five requests on their way (being read): the batcher waits for them, not the timeout.
        arrivals = [batcher.arriving() for _ in range(5)]
        for arrival in arrivals:
            arrival.__enter__()
        tasks = []
        for index, arrival in enumerate(arrivals):
            arrival.__exit__(None, None, None)
            tasks.append(asyncio.create_task(batcher.submit(images(10 * index, 10 * index + 1))))
            await asyncio.sleep(0)
        results = await asyncio.gather(*tasks)
        await batcher.stop()
        return results

    results = run(scenario())
    assert runtime.sizes == [8, 2]  # 10 images in two calls: four requests fit the first
    for index, outputs in enumerate(results):
        assert outputs["id"].tolist() == [10 * index, 10 * index + 1]
        assert outputs["probabilities"].shape == (2, 2)
        assert outputs["probabilities"][:, 1].tolist() == [-10 * index, -10 * index - 1]


def test_a_lone_request_runs_at_once_without_waiting_for_the_timeout():
    runtime = Runtime()

    async def scenario():
        batcher = DynamicBatcher(runtime, max_batch_size=64, timeout_s=30.0, max_queue=64)
        batcher.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        outputs = await batcher.submit(images(7))
        waited = loop.time() - started
        await batcher.stop()
        return outputs, waited

    outputs, waited = run(scenario())
    assert outputs["id"].tolist() == [7] and runtime.sizes == [1]
    assert waited < 5.0  # not the 30 s timeout


def test_a_full_queue_refuses_at_once_with_retry_after_and_recovers():
    runtime = Runtime()

    async def scenario():
        batcher = DynamicBatcher(runtime, max_batch_size=2, timeout_s=0.0, max_queue=3)
        batcher.start()
        runtime.release.clear()  # the first call holds the runtime: the rest must queue
        first = asyncio.create_task(batcher.submit(images(1, 2)))
        while not runtime.sizes and batcher.queued:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        queued = [
            asyncio.create_task(batcher.submit(images(3, 4))),
            asyncio.create_task(batcher.submit(images(5))),
        ]
        await asyncio.sleep(0.05)
        assert batcher.queued == 3
        with pytest.raises(RequestError) as refused:
            await batcher.submit(images(6))
        runtime.release.set()
        results = await asyncio.gather(first, *queued)
        after = await batcher.submit(images(8))  # room again
        await batcher.stop()
        return refused.value, results, after

    refused, results, after = run(scenario())
    assert refused.status == 503 and refused.retry_after == 1 and "queue is full" in str(refused)
    assert [r["id"].tolist() for r in results] == [[1, 2], [3, 4], [5]]
    assert after["id"].tolist() == [8]
    assert runtime.sizes == [2, 2, 1, 1]  # never over max_batch_size; requests never split


def test_a_runtime_error_fails_that_batch_only():
    calls = []

    def flaky(batch: np.ndarray) -> dict[str, np.ndarray]:
        calls.append(len(batch))
        if len(calls) == 1:
            raise ValueError("bad batch")
        return {"probabilities": np.ones((len(batch), 10), np.float32)}

    async def scenario():
        batcher = DynamicBatcher(flaky, max_batch_size=4, timeout_s=0.0, max_queue=8)
        batcher.start()
        with pytest.raises(ValueError, match="bad batch"):
            await batcher.submit(images(1))
        outputs = await batcher.submit(images(2, 3))
        await batcher.stop()
        return outputs

    assert run(scenario())["probabilities"].shape == (2, 10)
    assert calls == [1, 2]


def test_metrics_hooks_see_each_call_and_the_queue_depth():
    observed, depth = [], [0]
    runtime = Runtime()

    def queue_changed(delta: int) -> None:
        depth[0] += delta
        assert depth[0] >= 0

    async def scenario():
        batcher = DynamicBatcher(
            runtime,
            max_batch_size=4,
            timeout_s=0.0,
            max_queue=8,
            observe=lambda size, seconds: observed.append((size, seconds)),
            queue_changed=queue_changed,
        )
        batcher.start()
        await asyncio.gather(batcher.submit(images(1, 2, 3)), batcher.submit(images(4)))
        await batcher.stop()

    run(scenario())
    assert sum(size for size, _ in observed) == 4 and all(s >= 0 for _, s in observed)
    assert depth == [0]
