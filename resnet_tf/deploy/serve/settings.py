"""The server's settings: one frozen record, checked once, which every worker process receives.

serve.py's options map one to one onto these fields; `check` turns a value that cannot work into
one DeployError line naming the option, before any socket is bound or worker started.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from resnet_tf.errors import DeployError

DEFAULT_NAME = "cifar10"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501  # TF Serving's REST port
DEFAULT_MAX_BATCH_SIZE = 64
DEFAULT_BATCH_TIMEOUT_MS = 2.0
DEFAULT_MAX_QUEUE = 1024  # images waiting for the model, all workers together
DEFAULT_MAX_BODY_MB = 8.0
DEFAULT_REQUEST_TIMEOUT_S = 10.0  # to receive a request's headers and body
DEFAULT_MAX_CONNECTIONS = 2048  # per worker; above --max-queue, so a full queue answers first
DEFAULT_SHUTDOWN_DELAY_S = 0.0
DEFAULT_SHUTDOWN_TIMEOUT_S = 10
KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this long
MAX_HEADER_BYTES = 16 * 1024  # request line and headers
MODEL_VERSION = "1"  # one model, one version: what TF Serving reports for <name>/1/


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@dataclass(frozen=True)
class ServeSettings:
    model: str
    name: str = DEFAULT_NAME
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int | None = None  # None: one per core
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    batch_timeout_ms: float = DEFAULT_BATCH_TIMEOUT_MS
    max_queue: int = DEFAULT_MAX_QUEUE
    max_body_mb: float = DEFAULT_MAX_BODY_MB
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    shutdown_delay_s: float = DEFAULT_SHUTDOWN_DELAY_S
    shutdown_timeout_s: int = DEFAULT_SHUTDOWN_TIMEOUT_S
    normalization: str | None = None  # only for a .keras checkpoint outside a run folder
    trust_saved_model: bool = False  # run a SavedModel outside the op allow-list
    access_log: bool = False

    @property
    def worker_count(self) -> int:
        return available_cores() if self.workers is None else self.workers

    @property
    def runtime_threads(self) -> int:
        """Threads each worker's runtime computes with: the cores shared out, at least one."""
        return max(1, available_cores() // self.worker_count)

    @property
    def worker_queue(self) -> int:
        """Each worker's share of --max-queue (room for one full batch at least)."""
        return max(self.max_batch_size, self.max_queue // self.worker_count)

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 2**20)

    def check(self) -> ServeSettings:
        """These settings, or a DeployError naming the first option that cannot work."""
        whole = {
            "--port": (self.port, 0, 65535),
            "--workers": (self.worker_count, 1, 64),
            "--max-batch-size": (self.max_batch_size, 1, 4096),
            "--max-queue": (self.max_queue, 1, None),
            "--max-connections": (self.max_connections, 1, None),
            "--shutdown-timeout": (self.shutdown_timeout_s, 0, None),
        }
        for option, (value, low, high) in whole.items():
            if value < low or (high is not None and value > high):
                upper = f" to {high}" if high is not None else " or more"
                raise DeployError(f"{option}: expected {low}{upper}, found {value}")
        positive = {
            "--batch-timeout-ms": (self.batch_timeout_ms, True),
            "--max-body-mb": (self.max_body_mb, False),
            "--request-timeout": (self.request_timeout_s, False),
            "--shutdown-delay": (self.shutdown_delay_s, True),
        }
        for option, (value, zero_ok) in positive.items():
            if value < 0 or (value == 0 and not zero_ok):
                expected = "0 or more" if zero_ok else "a positive number"
                raise DeployError(f"{option}: expected {expected}, found {value}")
        if self.max_queue < self.max_batch_size:
            raise DeployError(
                f"--max-queue: expected at least --max-batch-size ({self.max_batch_size}) "
                f"instances, so that a full batch fits; found {self.max_queue}"
            )
        if not self.name or any(c in self.name for c in "/: ?#%"):
            raise DeployError(
                f"--name: expected a model name without / : ? # % or spaces, found {self.name!r}"
            )
        return self
