"""The web layer of one worker: TF Serving's routes on Starlette, answering from one batcher.

Routes (docs/serving.md): TF Serving's model status, metadata and :predict under /v1/models/,
its Prometheus path, and two of our own for probes, /v1/health/live and /v1/health/ready.
Every error is TF Serving's one-line JSON `{"error": "..."}` with its status; a body over
--max-body-mb is refused from its Content-Length, or as soon as it grows past it (Starlette's
own body limit would answer in plain text), and one not received within --request-timeout gets
408; both close the connection rather than read the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from resnet_tf.deploy.runtimes import Classifier
from resnet_tf.deploy.serve import tf_serving
from resnet_tf.deploy.serve.batching import DynamicBatcher
from resnet_tf.deploy.serve.metrics import Metrics, exposition
from resnet_tf.deploy.serve.settings import MODEL_VERSION, ServeSettings
from resnet_tf.errors import RequestError

logger = logging.getLogger("resnet_tf.serve")
CLOSE = {"connection": "close"}  # after an answer that leaves a body unread


@dataclass
class Worker:
    """What one worker process serves, and whether it is draining (after SIGTERM)."""

    settings: ServeSettings
    classifier: Classifier
    outputs: dict[str, tuple[str, tuple]] = field(default_factory=dict)  # name -> dtype, shape
    draining: bool = False
    metrics: Metrics | None = None
    batcher: DynamicBatcher | None = None

    def __post_init__(self) -> None:
        probe = self.classifier.outputs(np.zeros((1, *tf_serving.IMAGE_SHAPE), np.uint8))
        self.outputs = {
            name: (tf_serving.tf_dtype(np.asarray(value)), np.shape(value)[1:])
            for name, value in probe.items()
        }

    def start_draining(self) -> None:
        self.draining = True
        if self.metrics is not None:
            self.metrics.set_ready(False)


def json_response(document: dict, status: int = 200, headers: dict | None = None) -> Response:
    # NaN and Infinity as TF Serving writes them (its "JSON conformance"), not an error.
    body = json.dumps(document, separators=(",", ":")).encode()
    return Response(body, status, headers, media_type="application/json")


def error_response(status: int, message: str, headers: dict | None = None) -> Response:
    return json_response({"error": message}, status, headers)


def create_app(worker: Worker) -> Measured:
    settings = worker.settings

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        worker.metrics = Metrics(settings.name)
        worker.batcher = DynamicBatcher(
            worker.classifier.outputs,
            settings.max_batch_size,
            settings.batch_timeout_ms / 1000.0,
            settings.worker_queue,
            observe=worker.metrics.ran_batch,
            queue_changed=worker.metrics.queue_changed,
        )
        worker.batcher.start()
        worker.metrics.set_ready(not worker.draining)
        try:
            yield
        finally:
            worker.metrics.set_ready(False)
            await worker.batcher.stop()

    async def read_body(request: Request) -> bytes:
        """The body, refused (413) from its Content-Length or as soon as it grows past the
        limit, and (408) when it is not all there within --request-timeout."""
        limit = settings.max_body_bytes
        too_large = RequestError(
            413, f"the request body is over --max-body-mb {settings.max_body_mb:g} MiB"
        )
        announced = request.headers.get("content-length", "")
        if announced.isdigit() and int(announced) > limit:
            raise too_large

        async def collect() -> bytes:
            chunks, size = [], 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
            return b"".join(chunks)

        try:
            return await asyncio.wait_for(collect(), settings.request_timeout_s)
        except asyncio.TimeoutError:  # TimeoutError from Python 3.11 on
            raise RequestError(
                408,
                "the request body did not arrive within --request-timeout "
                f"{settings.request_timeout_s:g} s",
            ) from None
        except ClientDisconnect:
            raise RequestError(
                499, "the client closed the connection before sending its body"
            ) from None

    async def predict(request: Request, match) -> Response:
        tf_serving.check_model(match, settings.name, MODEL_VERSION)
        if match["verb"].lower() != "predict":
            raise RequestError(
                400, f"':{match['verb']}': this model has only the predict API (serving_default)"
            )
        batcher = worker.batcher
        batcher.check_room()  # a full queue refuses before reading anything
        with batcher.arriving():
            parsed = tf_serving.parse_predict(await read_body(request), settings.max_batch_size)
            if parsed.has_encoded_images:  # TensorFlow decodes them, off the event loop
                images = await asyncio.to_thread(tf_serving.decode_instances, parsed)
            else:
                images = tf_serving.decode_instances(parsed)
        try:
            outputs = await batcher.submit(images)
        except RequestError:
            raise
        except Exception as error:  # the runtime, or the model's own checks, failed on the batch
            logger.error("the model failed on a batch: %s", tf_serving.first_words(error, 300))
            raise RequestError(500, f"the model failed on this request: {error}") from None
        return json_response(tf_serving.predict_response(outputs, parsed.columnar))

    async def v1(request: Request) -> Response:
        path, method = request.scope["path"], request.method
        if method == "POST" and (match := tf_serving.PREDICT_PATH.fullmatch(path)):
            return await predict(request, match)
        if method == "GET" and (match := tf_serving.METADATA_PATH.fullmatch(path)):
            tf_serving.check_model(match, settings.name, MODEL_VERSION)
            return json_response(
                tf_serving.metadata_response(settings.name, MODEL_VERSION, worker.outputs)
            )
        if method == "GET" and (match := tf_serving.STATUS_PATH.fullmatch(path)):
            tf_serving.check_model(match, settings.name, MODEL_VERSION)
            state = "UNLOADING" if worker.draining else "AVAILABLE"
            return json_response(tf_serving.status_response(MODEL_VERSION, state))
        raise RequestError(400, f"malformed request: {method} {path}")

    async def live(request: Request) -> Response:
        return json_response({"live": True})

    async def ready(request: Request) -> Response:
        if worker.draining:
            return error_response(503, "draining: the server is shutting down")
        return json_response({"ready": True})

    async def prometheus(request: Request) -> Response:
        text, content_type = await asyncio.to_thread(exposition)
        return Response(text, media_type=content_type)

    async def request_error(request: Request, error: RequestError) -> Response:
        headers = {}
        if error.retry_after is not None:
            headers["retry-after"] = str(error.retry_after)
        if error.status in (408, 413):
            headers.update(CLOSE)
        return error_response(error.status, str(error), headers)

    async def http_error(request: Request, error: HTTPException) -> Response:
        return error_response(
            error.status_code, f"{error.detail}: {request.method} {request.url.path}"
        )

    async def server_error(request: Request, error: Exception) -> Response:
        # uvicorn logs the traceback: this is a bug of ours, not a bad request.
        return error_response(500, f"internal error: {type(error).__name__}")

    routes = [
        Route("/v1/health/live", live, methods=["GET"]),
        Route("/v1/health/ready", ready, methods=["GET"]),
        Route("/monitoring/prometheus/metrics", prometheus, methods=["GET"]),
        Route("/v1/{rest:path}", v1, methods=["GET", "POST"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            RequestError: request_error,
            HTTPException: http_error,
            Exception: server_error,
        },
    )
    return Measured(app, worker)


class Measured:
    """The app, with each answer counted by API and status and timed (its metrics)."""

    def __init__(self, app: Starlette, worker: Worker):
        self.app, self.worker = app, worker

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def send_and_note(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            if self.worker.metrics is not None:
                seconds = time.perf_counter() - started
                self.worker.metrics.answered(api_of(scope["path"]), status, seconds)


def api_of(path: str) -> str:
    """The metrics' `api` label of a request path."""
    if path.startswith("/v1/models/"):
        if ":" in path:
            return "predict"
        return "metadata" if path.lower().endswith("/metadata") else "status"
    if path.startswith("/v1/health/"):
        return "health"
    return "metrics" if path == "/monitoring/prometheus/metrics" else "other"
