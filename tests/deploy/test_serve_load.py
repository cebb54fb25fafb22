"""serve.py under concurrent load, over HTTP to real server processes: requests merged into one
runtime call (the batch-size metric), 503 with Retry-After at a full queue and recovery, several
worker processes behind one port with one set of metrics, and SIGTERM draining a request in
flight before a clean exit."""

from __future__ import annotations

import json
import socket
import threading
import time

import numpy as np
import pytest

from resnet_tf import deploy
from tests.helpers.server import Server, predict_head, random_images, sample

# The batcher waits up to this long for requests already being received: long enough that the
# merging below cannot depend on timing, and never reached (each batch goes once nothing more
# is on its way).
PATIENT_BATCH_MS = 20_000


def body(images: np.ndarray) -> bytes:
    return json.dumps({"instances": images.tolist()}).encode()


class SlowRequest:
    """A predict request whose body is held half-way until `finish()`: a request in flight."""

    def __init__(self, server: Server, images: np.ndarray):
        self.body = body(images)
        self.sock = socket.create_connection((server.host, server.port), timeout=60)
        self.sock.sendall(predict_head(len(self.body)) + self.body[: len(self.body) // 2])

    def finish(self) -> tuple[int, dict]:
        self.sock.sendall(self.body[len(self.body) // 2 :])
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            received += chunk
        self.sock.close()
        status = int(received.split(b" ", 2)[1])
        return status, json.loads(received.split(b"\r\n\r\n", 1)[1])


def in_thread(function, *args) -> dict:
    """Run function(*args) in a thread; the dict gets its "result" (or "error") when done."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = function(*args)
        except Exception as error:  # reported by the test that reads it
            outcome["error"] = error

    outcome["thread"] = threading.Thread(target=run, daemon=True)
    outcome["thread"].start()
    return outcome


def wait_until(condition, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def patient_server(int8_model):
    server = Server(
        *["--model", int8_model, "--workers", "1", "--max-batch-size", "64", "--max-queue", "64"],
        *["--batch-timeout-ms", PATIENT_BATCH_MS, "--request-timeout", "60"],
    )
    yield server
    assert server.stop() == 0, server.output()


def test_a_model_with_one_output_answers_lists(patient_server, int8_model):
    """TF Serving leaves the name out when a signature has one output: a list per image."""
    images = random_images(2, seed=4)
    expected = deploy.load_classifier(int8_model).probabilities(images)
    code, rows = patient_server.json("POST", "/v1/models/cifar10:predict", body(images))
    assert code == 200 and list(rows) == ["predictions"]
    np.testing.assert_allclose(rows["predictions"], expected, atol=1e-6)
    code, columns = patient_server.json(
        "POST", "/v1/models/cifar10:predict", {"inputs": images.tolist()}
    )
    assert code == 200 and list(columns) == ["outputs"]
    np.testing.assert_allclose(columns["outputs"], expected, atol=1e-6)
    code, metadata = patient_server.json("GET", "/v1/models/cifar10/metadata")
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert list(signature["outputs"]) == ["probabilities"]


def test_concurrent_requests_are_merged_into_few_runtime_calls(patient_server, int8_model):
    before = patient_server.metrics()
    count = 16
    images = random_images(count, seed=5)
    start = threading.Barrier(count)

    def one(index: int):
        start.wait(30)
        return patient_server.json(
            "POST", "/v1/models/cifar10:predict", {"instances": [images[index].tolist()]}
        )

    outcomes = [in_thread(one, i) for i in range(count)]
    for outcome in outcomes:
        outcome["thread"].join(60)
    answers = [outcome["result"] for outcome in outcomes]
    assert [code for code, _ in answers] == [200] * count
    expected = deploy.load_classifier(int8_model).probabilities(images)
    got = np.array([answer["predictions"][0] for _, answer in answers])
    np.testing.assert_allclose(got, expected, atol=1e-6)  # each request got its own rows
    after = patient_server.metrics()
    calls = sample(after, "resnet_tf_serve_batch_size_count") - sample(
        before, "resnet_tf_serve_batch_size_count"
    )
    merged = sample(after, "resnet_tf_serve_batch_size_sum") - sample(
        before, "resnet_tf_serve_batch_size_sum"
    )
    assert merged == count and calls < count / 2, (calls, merged)


def test_a_full_queue_answers_503_with_retry_after_at_once_and_recovers(patient_server):
    # A request in flight holds the batcher (it waits for requests on their way), so what comes
    # next stays queued: 40 images queued, 30 more would pass --max-queue 64.
    slow = SlowRequest(patient_server, random_images(1, seed=6))
    first = in_thread(
        patient_server.json,
        "POST",
        "/v1/models/cifar10:predict",
        {"instances": random_images(40).tolist()},
    )
    wait_until(lambda: sample(patient_server.metrics(), "resnet_tf_serve_queue_instances") == 40)
    started = time.monotonic()
    status, headers, data = patient_server.request(
        "POST", "/v1/models/cifar10:predict", body(random_images(30))
    )
    assert time.monotonic() - started < 5  # at once, not after the queue drains
    assert status == 503 and headers["retry-after"] == "1"
    assert "queue is full (40 images waiting, 64 at most)" in json.loads(data)["error"]
    # The request in flight arrives: the batch runs and both queued requests are answered.
    assert slow.finish()[0] == 200
    first["thread"].join(60)
    code, answer = first["result"]
    assert code == 200 and len(answer["predictions"]) == 40
    assert (
        patient_server.json("POST", "/v1/models/cifar10:predict", body(random_images(30)))[0] == 200
    )


def test_workers_share_the_port_and_metrics_and_sigterm_drains_a_request_in_flight(int8_model):
    server = Server("--model", int8_model, "--workers", "2", "--shutdown-delay", "1")
    try:
        for seed in range(6):
            assert (
                server.json("POST", "/v1/models/cifar10:predict", body(random_images(1, seed)))[0]
                == 200
            )
        # Any worker answers for all: both workers' ready samples, every request counted.
        wait_until(
            lambda: (
                len([k for k in server.metrics() if k.startswith("resnet_tf_serve_worker_ready{")])
                == 2
            )
        )
        samples = server.metrics()
        assert sample(samples, "resnet_tf_serve_worker_ready") == 2
        assert sample(samples, "resnet_tf_serve_requests_total", api="predict", code="200") == 6

        slow = SlowRequest(server, random_images(1, seed=7))
        stopped = in_thread(server.stop)
        # Unready at once, while still serving for --shutdown-delay.
        wait_until(lambda: server.request("GET", "/v1/health/ready")[0] == 503, timeout_s=5)
        code, status = server.json("GET", "/v1/models/cifar10")
        assert code == 200 and status["model_version_status"][0]["state"] == "UNLOADING"
        time.sleep(1.5)  # past the delay: no longer accepting
        with pytest.raises(OSError):
            server.request("GET", "/v1/health/live", timeout=5)
        code, answer = slow.finish()  # the request in flight is still answered
        assert code == 200 and len(answer["predictions"]) == 1
        stopped["thread"].join(30)
        assert stopped["result"] == 0, server.output()
    finally:
        if server.process.poll() is None:
            server.process.kill()
