"""The model server behind serve.py: TensorFlow Serving's REST API for one classifier.

settings.py    ServeSettings: serve.py's options, checked once
tf_serving.py  TF Serving's paths, request bodies and answers (row, columnar, b64)
batching.py    DynamicBatcher: concurrent requests merged into one runtime call, bounded queue
app.py         the Starlette app of one worker: routes, errors, limits, the batcher's life
metrics.py     Prometheus metrics shared by all worker processes
protocol.py    uvicorn's HTTP/1.1 protocol with a deadline for request headers
workers.py     run: the socket, N worker processes, SIGTERM drain
"""

from resnet_tf.deploy.serve.settings import (
    DEFAULT_BATCH_TIMEOUT_MS,
    DEFAULT_HOST,
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_BODY_MB,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_QUEUE,
    DEFAULT_NAME,
    DEFAULT_PORT,
    DEFAULT_REQUEST_TIMEOUT_S,
    DEFAULT_SHUTDOWN_DELAY_S,
    DEFAULT_SHUTDOWN_TIMEOUT_S,
    ServeSettings,
    available_cores,
)
from resnet_tf.deploy.serve.workers import run

__all__ = [
    "DEFAULT_BATCH_TIMEOUT_MS",
    "DEFAULT_HOST",
    "DEFAULT_MAX_BATCH_SIZE",
    "DEFAULT_MAX_BODY_MB",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_QUEUE",
    "DEFAULT_NAME",
    "DEFAULT_PORT",
    "DEFAULT_REQUEST_TIMEOUT_S",
    "DEFAULT_SHUTDOWN_DELAY_S",
    "DEFAULT_SHUTDOWN_TIMEOUT_S",
    "ServeSettings",
    "available_cores",
    "run",
]
