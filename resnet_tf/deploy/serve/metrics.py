"""Prometheus metrics of every worker process, served from any of them.

The prometheus_client library keeps each process's values in files of one folder (its
multiprocess mode), which `use_folder` names before the library is first imported; any worker
answering GET /monitoring/prometheus/metrics reads them all, so a scrape sees the whole server.
"""

from __future__ import annotations

import os
from pathlib import Path

FOLDER_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


def use_folder(folder: Path | None) -> Path | None:
    """Keep the metrics of this process and the workers it starts in `folder` (empty, ours;
    None: no folder); the folder used before. Must run before prometheus_client is imported:
    it reads the variable at import."""
    previous = os.environ.pop(FOLDER_VARIABLE, None)
    if folder is not None:
        os.environ[FOLDER_VARIABLE] = str(folder)
    return Path(previous) if previous is not None else None


def forget_process(pid: int) -> None:
    """Drop a stopped worker's live gauges (its counts and histograms stay in the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


class Metrics:
    """The server's metrics, labelled by model name; created once per worker process."""

    def __init__(self, model: str):
        from prometheus_client import Counter, Gauge, Histogram, values

        if values.ValueClass is values.MutexValue:  # imported before use_folder: one process only
            raise RuntimeError(f"prometheus_client was imported before {FOLDER_VARIABLE} was set")
        self.model = model
        labels = {"registry": None}  # multiprocess mode: the files are the registry
        self.requests = Counter(
            "resnet_tf_serve_requests",
            "HTTP requests answered, by API and status code",
            ["model", "api", "code"],
            **labels,
        )
        self.latency = Histogram(
            "resnet_tf_serve_request_seconds",
            "Time from a request's headers to its answer, by API",
            ["model", "api"],
            buckets=LATENCY_BUCKETS,
            **labels,
        )
        self.batch_size = Histogram(
            "resnet_tf_serve_batch_size",
            "Instances (images) per runtime call, after dynamic batching",
            ["model"],
            buckets=BATCH_BUCKETS,
            **labels,
        )
        self.runtime = Histogram(
            "resnet_tf_serve_runtime_seconds",
            "Time of one runtime call on a merged batch",
            ["model"],
            buckets=LATENCY_BUCKETS,
            **labels,
        )
        self.queue = Gauge(
            "resnet_tf_serve_queue_instances",
            "Instances waiting for the model, all workers together",
            ["model"],
            multiprocess_mode="livesum",
            **labels,
        )
        self.ready = Gauge(
            "resnet_tf_serve_worker_ready",
            "1 while a worker serves and is not draining (one sample per worker pid)",
            ["model"],
            multiprocess_mode="liveall",
            **labels,
        )

    def answered(self, api: str, code: int, seconds: float) -> None:
        self.requests.labels(self.model, api, str(code)).inc()
        self.latency.labels(self.model, api).observe(seconds)

    def ran_batch(self, size: int, seconds: float) -> None:
        self.batch_size.labels(self.model).observe(size)
        self.runtime.labels(self.model).observe(seconds)

    def queue_changed(self, delta: int) -> None:
        self.queue.labels(self.model).inc(delta)

    def set_ready(self, ready: bool) -> None:
        self.ready.labels(self.model).set(1 if ready else 0)


def exposition() -> tuple[bytes, str]:
    """(the text a Prometheus scrape reads, its content type), from every worker's files."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST
