"""A real `python serve.py` process on a free local port, and plain HTTP to it with timeouts.

The server is started with --port 0 and its announced address is read from its first line, so
no two tests race for a port. Every wait has a deadline, so a hung server fails a test rather
than stalling the suite.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from tests.helpers import REPO_ROOT
from tests.helpers.tiny_runs import child_env

ANNOUNCED = re.compile(r"on http://([\d.]+):(\d+) ")
START_TIMEOUT_S = 180  # TensorFlow's import and the model's load, on a busy 2-core machine
HTTP_TIMEOUT_S = 30


class Server:
    """serve.py with `args`, started and ready (GET /v1/health/ready answers 200)."""

    def __init__(self, *args: str | Path):
        self.args = [str(a) for a in args]
        self.process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "serve.py"), "--port", "0", *self.args],
            cwd=REPO_ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        threading.Thread(
            target=self._read, args=(self.process.stdout, self.lines), daemon=True
        ).start()
        threading.Thread(
            target=self._read, args=(self.process.stderr, self.errors), daemon=True
        ).start()
        self.host, self.port = self._wait_for_address()
        self.wait_ready()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def _wait_for_address(self) -> tuple[str, int]:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for line in self.lines:
                if match := ANNOUNCED.search(line):
                    return match[1], int(match[2])
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        self.stop(signal.SIGKILL)
        raise AssertionError(f"serve.py did not start: {self.output()}")

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/v1/health/ready", timeout=5)[0] == 200:
                    return
            except OSError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        self.stop(signal.SIGKILL)
        raise AssertionError(f"serve.py never became ready: {self.output()}")

    def output(self) -> str:
        return "\n".join(self.lines[-20:] + self.errors[-40:])

    def connection(self, timeout: float = HTTP_TIMEOUT_S) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(
        self, method: str, path: str, body=None, headers: dict | None = None, timeout=HTTP_TIMEOUT_S
    ) -> tuple[int, dict, bytes]:
        """(status, headers with lower-case names, body) of one request on a new connection."""
        connection = self.connection(timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            connection.close()

    def json(self, method: str, path: str, body=None, **kwargs) -> tuple[int, dict]:
        status, _, data = self.request(method, path, body, **kwargs)
        return status, json.loads(data)

    def metrics(self) -> dict[str, float]:
        """The Prometheus samples, `name{labels}` -> value."""
        status, _, data = self.request("GET", "/monitoring/prometheus/metrics")
        assert status == 200
        samples = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30) -> int:
        """Send `sig` and wait for the exit code (a server still running then is killed)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(
                f"serve.py did not stop within {timeout_s} s: {self.output()}"
            ) from None

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.stop()


def sample(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 if none)."""
    total = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base == name and all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += value
    return total


def random_images(count: int, seed: int = 0) -> np.ndarray:
    """uint8 [count, 32, 32, 3] images to send."""
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


def predict_head(length: int) -> bytes:
    """The request line and headers of a :predict request with a body of `length` bytes, for
    tests that send the body themselves (slowly, partly, or not at all)."""
    return (
        f"POST /v1/models/cifar10:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
        f"\r\nContent-Length: {length}\r\n\r\n"
    ).encode()
