"""serve.py's REST API, spoken over HTTP to a real server process: TF Serving's shapes for model
status, metadata and :predict (rows, columns, b64 images), and a status with a one-line JSON
error for every kind of bad request, after which the server still serves."""

from __future__ import annotations

import base64
import json
import socket
import struct
import time
import zlib

import numpy as np
import pytest
import tensorflow as tf

from resnet_tf import deploy
from resnet_tf.data import decode_image
from tests.helpers.server import Server, predict_head, random_images, sample

MAX_BATCH = 8
MAX_BODY_MB = 1
REQUEST_TIMEOUT_S = 2


@pytest.fixture(scope="module")
def saved_model(exported):
    return exported[("basic", "saved_model")].path


@pytest.fixture(scope="module")
def server(saved_model):
    """A SavedModel (two outputs: 'logits', 'probabilities') with small limits, so they are
    cheap to hit. test_serve_load.py serves a LiteRT file, whose one output answers as lists."""
    server = Server(
        *["--model", saved_model, "--workers", "1", "--max-batch-size", MAX_BATCH],
        *["--max-body-mb", MAX_BODY_MB, "--request-timeout", REQUEST_TIMEOUT_S],
    )
    yield server
    assert server.stop() == 0, server.output()


@pytest.fixture(scope="module")
def runtime(saved_model):
    return deploy.load_classifier(saved_model)


def png_b64(image: np.ndarray) -> str:
    return base64.b64encode(tf.io.encode_png(image).numpy()).decode()


def signature_of(server: Server, path: str = "/v1/models/cifar10/metadata") -> dict:
    code, metadata = server.json("GET", path)
    assert code == 200
    assert metadata["model_spec"] == {"name": "cifar10", "signature_name": "", "version": "1"}
    return metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]


def test_status_and_metadata_are_tf_servings(server):
    status = {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert server.json("GET", "/v1/models/cifar10") == (200, status)
    assert server.json("GET", "/v1/models/cifar10/versions/1") == (200, status)
    signature = signature_of(server)
    assert signature == signature_of(server, "/v1/models/cifar10/versions/1/metadata")
    assert signature["method_name"] == "tensorflow/serving/predict"
    (name, tensor), *others = signature["inputs"].items()
    assert (name, tensor["dtype"], others) == ("images", "DT_UINT8", [])
    assert [d["size"] for d in tensor["tensor_shape"]["dim"]] == ["-1", "32", "32", "3"]
    assert sorted(signature["outputs"]) == ["logits", "probabilities"]
    for output in signature["outputs"].values():
        assert output["dtype"] == "DT_FLOAT"
        assert [d["size"] for d in output["tensor_shape"]["dim"]] == ["-1", "10"]


def test_rows_answer_an_object_per_image_and_columns_an_object_of_tensors(server, runtime):
    images = random_images(3)
    expected = runtime.outputs(images)
    rows = {"instances": images.tolist()}
    named_rows = {"instances": [{"images": image.tolist()} for image in images]}
    for body in (rows, named_rows):
        code, answer = server.json("POST", "/v1/models/cifar10:predict", body)
        assert code == 200 and list(answer) == ["predictions"] and len(answer["predictions"]) == 3
        for index, prediction in enumerate(answer["predictions"]):
            assert sorted(prediction) == ["logits", "probabilities"]
            for name, values in prediction.items():
                np.testing.assert_allclose(values, expected[name][index], atol=1e-5)
    columns = {"inputs": images.tolist()}
    named_columns = {"signature_name": "serving_default", "inputs": {"images": images.tolist()}}
    for body in (columns, named_columns):
        code, answer = server.json("POST", "/v1/models/cifar10/versions/1:predict", body)
        assert code == 200 and list(answer) == ["outputs"]
        assert sorted(answer["outputs"]) == ["logits", "probabilities"]
        for name, values in answer["outputs"].items():
            np.testing.assert_allclose(values, expected[name], atol=1e-5)


def test_b64_images_are_decoded_as_predict_py_decodes_files(server, runtime):
    exact = random_images(1, seed=1)[0]
    photo = tf.cast(tf.image.resize(random_images(1, seed=2)[0], (120, 90)), tf.uint8).numpy()
    jpeg = base64.b64encode(tf.io.encode_jpeg(photo, quality=90).numpy()).decode()
    body = {"instances": [{"b64": png_b64(exact)}, {"images": {"b64": jpeg}}, exact.tolist()]}
    code, answer = server.json("POST", "/v1/models/cifar10:predict", body)
    assert code == 200, answer
    decoded = np.stack([exact, decode_image(base64.b64decode(jpeg), "photo"), exact])
    got = [prediction["probabilities"] for prediction in answer["predictions"]]
    np.testing.assert_allclose(got, runtime.probabilities(decoded), atol=1e-5)
    code, answer = server.json(
        "POST", "/v1/models/cifar10:predict", {"inputs": [{"b64": png_b64(exact)}]}
    )
    assert code == 200 and len(answer["outputs"]["probabilities"]) == 1


def bomb_png(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height pixels (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 1000)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


ONE = random_images(1)[0].tolist()
BAD_REQUESTS = {
    "malformed JSON": (
        "POST",
        "/v1/models/cifar10:predict",
        b'{"instances": [',
        400,
        "not valid JSON",
    ),
    "not an object": ("POST", "/v1/models/cifar10:predict", b"[1, 2]", 400, "JSON object"),
    "both formats": (
        "POST",
        "/v1/models/cifar10:predict",
        {"instances": [ONE], "inputs": [ONE]},
        400,
        "exactly one",
    ),
    "neither format": ("POST", "/v1/models/cifar10:predict", {"images": [ONE]}, 400, "'images'"),
    "wrong shape": (
        "POST",
        "/v1/models/cifar10:predict",
        {"instances": [[[0, 0, 0]] * 32]},
        400,
        "32x32x3",
    ),
    "fractions": (
        "POST",
        "/v1/models/cifar10:predict",
        {"instances": [[[[0.5] * 3] * 32] * 32]},
        400,
        "whole numbers",
    ),
    "strings": (
        "POST",
        "/v1/models/cifar10:predict",
        {"instances": [[[["a"] * 3] * 32] * 32]},
        400,
        "strings",
    ),
    "over 255": (
        "POST",
        "/v1/models/cifar10:predict",
        {"instances": [[[[256] * 3] * 32] * 32]},
        400,
        "0-255",
    ),
    "negative": (
        "POST",
        "/v1/models/cifar10:predict",
        {"inputs": [[[[-1] * 3] * 32] * 32]},
        400,
        "0-255",
    ),
    "ragged": ("POST", "/v1/models/cifar10:predict", {"instances": [ONE, ONE[:5]]}, 400, "ragged"),
    "empty batch": ("POST", "/v1/models/cifar10:predict", {"instances": []}, 400, "empty"),
    "over max batch": (
        "POST",
        "/v1/models/cifar10:predict",
        {"inputs": [ONE] * (MAX_BATCH + 1)},
        400,
        "--max-batch-size",
    ),
    "bad base64": (
        "POST",
        "/v1/models/cifar10:predict",
        {"instances": [{"b64": "***"}]},
        400,
        "base64",
    ),
    "not an image": (
        "POST",
        "/v1/models/cifar10:predict",
        {"instances": [ONE, {"b64": base64.b64encode(b"GIF89a, or so it says").decode()}]},
        400,
        "instances[1]",
    ),
    "decompression bomb": (
        "POST",
        "/v1/models/cifar10:predict",
        {"instances": [{"b64": base64.b64encode(bomb_png(60_000, 60_000)).decode()}]},
        400,
        "instances[0]",
    ),
    "unknown signature": (
        "POST",
        "/v1/models/cifar10:predict",
        {"signature_name": "x", "instances": [ONE]},
        400,
        "serving_default",
    ),
    "unknown model": ("POST", "/v1/models/dogs:predict", {"instances": [ONE]}, 404, "'dogs'"),
    "unknown version": ("GET", "/v1/models/cifar10/versions/7", None, 404, "version '7'"),
    "unknown label": ("GET", "/v1/models/cifar10/labels/stable/metadata", None, 404, "'stable'"),
    "unknown model status": ("GET", "/v1/models/dogs", None, 404, "'dogs'"),
    "classify": ("POST", "/v1/models/cifar10:classify", {"examples": []}, 400, "predict"),
    "GET on predict": ("GET", "/v1/models/cifar10:predict", None, 400, "malformed request"),
    "unknown path": ("GET", "/v2/models/cifar10", None, 404, "Not Found"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_each_bad_request_gets_its_status_and_a_one_line_json_error(server, case):
    method, path, body, expected_status, words = BAD_REQUESTS[case]
    status, headers, data = server.request(method, path, body)
    assert status == expected_status, data
    assert headers["content-type"] == "application/json"
    error = json.loads(data)["error"]
    assert list(json.loads(data)) == ["error"] and "\n" not in error and words in error, error


def test_the_server_serves_on_after_bad_requests_and_counts_them(server):
    for case in ("malformed JSON", "ragged", "decompression bomb"):
        method, path, body, _, _ = BAD_REQUESTS[case]
        server.request(method, path, body)
    code, answer = server.json("POST", "/v1/models/cifar10:predict", {"instances": [ONE]})
    assert code == 200 and len(answer["predictions"]) == 1
    samples = server.metrics()
    assert sample(samples, "resnet_tf_serve_requests_total", api="predict", code="400") >= 3
    assert sample(samples, "resnet_tf_serve_requests_total", api="predict", code="200") >= 1


def raw_exchange(server: Server, head: bytes, body_parts=(), pause_s: float = 0.0) -> bytes:
    """Send `head`, then each body part after `pause_s`; everything the server sends back until
    it closes the connection (or 15 s pass)."""
    with socket.create_connection((server.host, server.port), timeout=15) as sock:
        sock.sendall(head)
        for part in body_parts:
            time.sleep(pause_s)
            try:
                sock.sendall(part)
            except OSError:  # the server may close as soon as it has answered
                break
        received = b""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
        return received


def test_a_body_over_the_limit_is_refused_before_it_is_read(server):
    limit = MAX_BODY_MB * 2**20
    # Announced too large: 413 at once, without sending a byte of the body.
    answer = raw_exchange(server, predict_head(limit + 1))
    assert answer.startswith(b"HTTP/1.1 413") and b"--max-body-mb" in answer
    # Chunked, so no length is announced: refused once the body grows past the limit.
    connection = server.connection()
    chunk = b" " * 65536
    chunks = iter([b'{"instances": ['] + [chunk] * (limit // len(chunk) + 2))
    try:
        connection.request("POST", "/v1/models/cifar10:predict", body=chunks, encode_chunked=True)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed while the body was still being sent
    response = connection.getresponse()
    assert response.status == 413 and "--max-body-mb" in json.loads(response.read())["error"]
    connection.close()


def test_slow_clients_are_cut_off_and_do_not_hold_the_server(server):
    started = time.monotonic()
    # Headers never finished: the connection is closed after --request-timeout.
    assert raw_exchange(server, b"POST /v1/models/cifar10:predict HTTP/1.1\r\nHost: x\r\n") == b""
    assert REQUEST_TIMEOUT_S - 0.5 < time.monotonic() - started < REQUEST_TIMEOUT_S + 10
    # A body that stops half-way: 408 and the connection closed.
    body = json.dumps({"instances": [ONE]}).encode()
    answer = raw_exchange(server, predict_head(len(body)), [body[:100]])
    assert answer.startswith(b"HTTP/1.1 408") and b"--request-timeout" in answer
    assert b"connection: close" in answer.lower()
    # Meanwhile, and after, others are served.
    assert server.json("POST", "/v1/models/cifar10:predict", {"instances": [ONE]})[0] == 200


def test_headers_growing_past_16_kib_are_refused(server):
    # h11's bound on a header block still arriving (uvicorn's h11_max_incomplete_event_size).
    answer = raw_exchange(server, b"GET /v1/models/cifar10 HTTP/1.1\r\nX-Big: " + b"x" * 20_000)
    assert answer.startswith(b"HTTP/1.1 400")
    assert server.json("GET", "/v1/models/cifar10")[0] == 200
