#!/usr/bin/env python3
"""Serve a model over HTTP with TensorFlow Serving's REST API (docs/serving.md).

python serve.py                                   # the pretrained model, on 127.0.0.1:8501
python serve.py --model outputs/my-run/export/best_int8.tflite --workers 2
python serve.py --model outputs/my-run --host 0.0.0.0 --port 8080 --shutdown-delay 5

curl -d '{"instances": [...32x32x3 pixels...]}' localhost:8501/v1/models/cifar10:predict

The model is anything predict.py takes (run folder, .keras, SavedModel folder, .tflite, .onnx).
Concurrent requests are merged into one model call (dynamic batching); a full queue answers 503
with Retry-After. SIGTERM or Ctrl-C drains: unready at once, in-flight requests finished, exit 0.
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str]) -> argparse.Namespace:
    # The one list of each choice; importing it loads TensorFlow (resnet_tf/__init__.py).
    # Values are only parsed here: ServeSettings.check says which cannot work.
    from resnet_tf.config.choices import NORMALIZATIONS
    from resnet_tf.deploy import DEFAULT_MODEL, serve

    parser = argparse.ArgumentParser(
        description="Serve a model with TensorFlow Serving's REST API (docs/serving.md)."
    )
    add = parser.add_argument
    cores = serve.available_cores()
    add(
        "--model",
        default=str(DEFAULT_MODEL),
        help="a run folder, .keras checkpoint, SavedModel folder, .tflite or .onnx file "
        "(default: the pretrained INT8 model in pretrained/)",
    )
    add(
        "--name",
        default=serve.DEFAULT_NAME,
        help=f"model name in the URLs (default {serve.DEFAULT_NAME})",
    )
    add(
        "--host",
        default=serve.DEFAULT_HOST,
        help=f"address to listen on (default {serve.DEFAULT_HOST}: this machine only)",
    )
    # The numbers: (option, type, default, what it sets); the settings say which values work.
    numbers = [
        ("--port", int, serve.DEFAULT_PORT, "port; 0: any free one"),
        ("--workers", int, None, f"worker processes (default: one per core, {cores} here)"),
        ("--max-batch-size", int, serve.DEFAULT_MAX_BATCH_SIZE, "most images per model call"),
        ("--batch-timeout-ms", float, serve.DEFAULT_BATCH_TIMEOUT_MS, "longest wait to merge"),
        ("--max-queue", int, serve.DEFAULT_MAX_QUEUE, "images waiting (all workers) before 503"),
        ("--max-body-mb", float, serve.DEFAULT_MAX_BODY_MB, "largest request body, MiB"),
        ("--request-timeout", float, serve.DEFAULT_REQUEST_TIMEOUT_S, "seconds for headers, body"),
        ("--max-connections", int, serve.DEFAULT_MAX_CONNECTIONS, "connections per worker"),
        ("--shutdown-delay", float, serve.DEFAULT_SHUTDOWN_DELAY_S, "seconds unready on SIGTERM"),
        ("--shutdown-timeout", int, serve.DEFAULT_SHUTDOWN_TIMEOUT_S, "seconds for in-flight"),
    ]
    for option, kind, default, what in numbers:
        shown = "" if default is None else f" (default {default})"
        add(option, type=kind, default=default, help=what + shown)
    add(
        "--normalization",
        choices=NORMALIZATIONS,
        help="only for a .keras checkpoint outside a run folder",
    )
    add(
        "--trust-saved-model",
        action="store_true",
        help="serve a SavedModel whose graph holds ops outside the image-classifier allow-list "
        "(as predict.py's option: only for one whose author you trust)",
    )
    add("--access-log", action="store_true", help="log one line per request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    from resnet_tf.deploy import serve
    from resnet_tf.errors import ResnetTfError

    settings = serve.ServeSettings(
        model=args.model,
        name=args.name,
        host=args.host,
        port=args.port,
        workers=args.workers,
        max_batch_size=args.max_batch_size,
        batch_timeout_ms=args.batch_timeout_ms,
        max_queue=args.max_queue,
        max_body_mb=args.max_body_mb,
        request_timeout_s=args.request_timeout,
        max_connections=args.max_connections,
        shutdown_delay_s=args.shutdown_delay,
        shutdown_timeout_s=args.shutdown_timeout,
        normalization=args.normalization,
        trust_saved_model=args.trust_saved_model,
        access_log=args.access_log,
    )
    try:
        return serve.run(settings)
    except ResnetTfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    code = main()
    # Exit without tearing TensorFlow down (seconds of garbage collection that free nothing the
    # system would not), so a drained server is gone at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
