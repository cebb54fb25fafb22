"""The load generator of --mode serve: a bounded async HTTP client (aiohttp).

Closed loop (`closed_loop`): N clients, each sending its next request once the last is answered,
the way N users of a service behave. Open loop (`open_loop`): requests started at a fixed rate
whatever the answers, the way an overload arrives. Both stop after their time, and every request
has a timeout, so a stuck server ends a run rather than hanging it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiohttp

REQUEST_TIMEOUT_S = 30.0
# Below the server's 5 s keep-alive: a pooled connection is never reused after the server closed it.
KEEP_ALIVE_S = 2.0
# Connections of the open loop: past the queues of a 2-worker server at its defaults (2 x 1024
# images), so that its full queues, not this client, set what is refused.
OPEN_LOOP_LIMIT = 3000


async def wait_ready(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{url}/v1/health/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} was not ready within {timeout_s} s")


class Tally:
    """Latencies of the answered requests, and every outcome by status (or client error)."""

    def __init__(self):
        self.latencies: list[float] = []
        self.outcomes: Counter = Counter()

    async def send(self, session, url: str, body: bytes) -> None:
        started = time.perf_counter()
        try:
            async with session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            self.outcomes[type(error).__name__] += 1
            return
        self.outcomes[str(status)] += 1
        if status == 200:
            self.latencies.append(time.perf_counter() - started)

    def summary(self, seconds: float) -> dict:
        ms = sorted(1000 * s for s in self.latencies)

        def percentile(q: float) -> float | None:
            return round(ms[min(len(ms) - 1, int(q * len(ms)))], 3) if ms else None

        return {
            "seconds": round(seconds, 2),
            "requests_per_s": round(len(ms) / seconds, 1),
            "p50_ms": percentile(0.50),
            "p99_ms": percentile(0.99),
            "outcomes": dict(sorted(self.outcomes.items())),
            "errors": sum(n for key, n in self.outcomes.items() if key != "200"),
        }


async def closed_loop(url: str, bodies: list[bytes], concurrency: int, seconds: float) -> Tally:
    """`concurrency` clients, each sending its next request when the last is answered."""
    tally, end = Tally(), time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=KEEP_ALIVE_S)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client(index: int) -> None:
            while time.monotonic() < end:
                await tally.send(session, url, bodies[index % len(bodies)])
                index += concurrency

        await asyncio.gather(*(client(i) for i in range(concurrency)))
    return tally


async def open_loop(
    url: str, bodies: list[bytes], rate: float, seconds: float, each_second=lambda: None
) -> Tally:
    """Requests started at `rate` per second whatever the answers, at most OPEN_LOOP_LIMIT of
    them outstanding (past that a request counts as not sent); `each_second()` is called once
    a second meanwhile (the driver samples the server's memory)."""
    tally, started, outstanding = Tally(), time.monotonic(), set()
    connector = aiohttp.TCPConnector(limit=OPEN_LOOP_LIMIT, keepalive_timeout=KEEP_ALIVE_S)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        sent, next_call = 0, started
        while (now := time.monotonic()) < started + seconds:
            if now >= next_call:
                each_second()
                next_call = now + 1.0
            for _ in range(int((now - started) * rate) - sent):
                if len(outstanding) >= OPEN_LOOP_LIMIT:
                    tally.outcomes["not sent (client limit)"] += 1
                else:
                    task = asyncio.create_task(tally.send(session, url, bodies[sent % len(bodies)]))
                    outstanding.add(task)
                    task.add_done_callback(outstanding.discard)
                sent += 1
            await asyncio.sleep(0.001)
        await asyncio.gather(*outstanding)
    return tally
