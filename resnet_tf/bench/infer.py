"""--mode infer: each format of one trained model, in one sitting: file size, batch-1 latency
(p50/p99 over --calls calls, after a warm-up) and batch throughput (images/s at --batch-size).

The driver (`run_infer`) exports the checkpoint to every format asked for, or reuses the files
already in --export-dir under their default names, then runs each format's timing in a fresh
child process (`measure_infer`), round after round, with the formats' order rotated each round
and the PyTorch peer's eval after each round; the table shows medians over the rounds. Each child
loads the model as a user would (`deploy.load_classifier`: the file's own runtime) and times it
on real test images, one call at a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from resnet_tf.bench.measure import median_rate
from resnet_tf.bench.memory import peak_rss_mb
from resnet_tf.bench.peer import run_peer, timing_args

KERAS = "keras"  # the checkpoint itself, loaded as predict.py loads it: the reference row
LATENCY_WARMUP_CALLS = 20
DEFAULT_BATCH = 256


def parse_formats(text: str) -> list[str]:
    """The --formats list, checked: "keras" and the export formats."""
    from resnet_tf.deploy import EXPORT_FORMATS

    known = [KERAS, *EXPORT_FORMATS]
    formats = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in formats if name not in known]
    if unknown or not formats:
        raise argparse.ArgumentTypeError(
            f"--formats: expected a comma list of {', '.join(known)}, found {text!r}"
        )
    return list(dict.fromkeys(formats))


def run_infer(args: argparse.Namespace, run_child, emit) -> None:
    """Export (or reuse) each format, then time them all, interleaved over --rounds."""
    from resnet_tf import deploy
    from resnet_tf.evaluation import sources

    formats = parse_formats(args.formats)
    found = sources.resolve_checkpoint(args.checkpoint)
    normalization = sources.resolve_normalization(found, args.normalization)
    data_dir = args.data_dir or (found.config.data.path if found.config is not None else None)
    data = ["--data-dir", os.path.abspath(Path(data_dir).expanduser())] if data_dir else []

    own_folder = args.export_dir is None
    folder = Path(tempfile.mkdtemp(prefix="bench_infer_") if own_folder else args.export_dir)
    try:
        paths = {KERAS: found.path.resolve()}
        for name in formats:
            if name == KERAS:
                continue
            path = deploy.EXPORT_FORMATS[name].default_path(folder, found.path.stem).resolve()
            if path.exists():
                print(f"{name}: reusing {path}", file=sys.stderr)
            else:
                result = deploy.export_checkpoint(
                    args.checkpoint,
                    name,
                    path,
                    data_dir=data_dir,
                    normalization=args.normalization,
                )
                print(f"{name}: exported {result.summary()}", file=sys.stderr)
            paths[name] = path

        for round_index in range(args.rounds):
            shift = round_index % len(formats)
            for name in formats[shift:] + formats[:shift]:
                argv = [
                    "--mode",
                    "infer",
                    "--format",
                    name,
                    "--model-path",
                    str(paths[name]),
                    "--calls",
                    str(args.calls),
                    "--batch-size",
                    str(args.batch_size),
                    *timing_args(args),
                    *data,
                    *(["--normalization", normalization] if name == KERAS else []),
                ]
                record = run_child(argv)
                emit({"mode": "infer", "format": name, **record, "round": round_index})
            if args.peer_python:
                peer = run_peer(args.peer_python, "eval", args.batch_size, False, args)
                name = f"peer {peer.get('model', 'pytorch')} eval"
                emit({**peer, "mode": "infer", "format": name, "round": round_index})
    finally:
        if own_folder:
            shutil.rmtree(folder, ignore_errors=True)


def measure_infer(args: argparse.Namespace) -> dict:
    """In the child: load one model with its own runtime and time it on real test images."""
    import numpy as np

    from resnet_tf.deploy import load_classifier
    from resnet_tf.deploy.export import size_of
    from resnet_tf.evaluation import sources

    framework_rss = round(peak_rss_mb(), 1)
    path = Path(args.model_path)
    images = sources.load_images(args.data_dir, "test", None).images
    classifier = load_classifier(path, normalization=args.normalization)

    # Batch 1: a different real image each call, each call timed on its own.
    for i in range(LATENCY_WARMUP_CALLS):
        classifier.probabilities(images[i % len(images)][None])
    seconds = []
    for i in range(args.calls):
        image = images[(LATENCY_WARMUP_CALLS + i) % len(images)][None]
        start = time.perf_counter()
        classifier.probabilities(image)
        seconds.append(time.perf_counter() - start)
    p50, p99 = np.percentile(np.array(seconds) * 1000.0, [50, 99])

    # Batch throughput: --steps calls on one batch of real images per repeat, after a warm-up.
    batch = np.ascontiguousarray(np.take(images, np.arange(args.batch_size) % len(images), axis=0))

    def block():
        for _ in range(args.steps):
            classifier.probabilities(batch)

    rates = median_rate(block, args.steps * args.batch_size, args.repeats, args.warmup)
    threads, setting = _threads(classifier, args.format)
    return {
        "mode": "infer",
        "format": args.format,
        "path": str(path),
        "size_bytes": size_of(path),
        "size_mib": round(size_of(path) / 2**20, 3),
        "calls": args.calls,
        "p50_ms": round(float(p50), 3),
        "p99_ms": round(float(p99), 3),
        "mean_ms": round(1000.0 * statistics.fmean(seconds), 3),
        "batch_size": args.batch_size,
        "images_per_s": round(statistics.median(rates), 2),
        "images_per_s_all": [round(r, 2) for r in rates],
        "threads": threads,
        "threads_setting": setting,
        "runtime": _runtime(args.format),
        "framework_rss_mb": framework_rss,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def _threads(classifier, name: str) -> tuple[int, str]:
    """The threads the runtime computes with, and where that number comes from."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if name.startswith("litert"):
        return cpus, "LiteRT Interpreter(num_threads=CPUs available)"
    if name.startswith("onnx"):
        set_to = classifier.session.get_session_options().intra_op_num_threads
        return set_to or cpus, f"onnxruntime intra_op_num_threads={set_to} (0: one per core)"
    import tensorflow as tf

    set_to = tf.config.threading.get_intra_op_parallelism_threads()
    return set_to or cpus, f"TensorFlow intra_op_parallelism_threads={set_to} (0: all CPUs)"


def _runtime(name: str) -> str:
    from importlib.metadata import version

    runtime = name.split("_")[0]  # litert_int8 -> litert, onnx_int8 -> onnx
    package = {"litert": "ai-edge-litert", "onnx": "onnxruntime"}.get(runtime, "tensorflow")
    return f"{package} {version(package)}"


def print_infer_table(records: list[dict]) -> None:
    """One row per format: medians over the rounds."""
    by_format: dict[str, list[dict]] = {}
    for r in records:
        if "error" in r:
            print(f"error: {r.get('format', '?')}: {r['error']}")
        else:
            by_format.setdefault(r["format"], []).append(r)

    def median(rows: list[dict], key: str) -> str:
        values = [r[key] for r in rows if key in r]
        return f"{statistics.median(values):.2f}" if values else "-"

    header = (
        f"{'format':32} {'size MiB':>9} {'p50 ms':>8} {'p99 ms':>8} {'img/s':>9} {'batch':>5} "
        f"{'threads':>7} {'rounds':>6}"
    )
    print(header)
    print("-" * len(header))
    for name, rows in by_format.items():
        print(
            f"{name:32} {median(rows, 'size_mib'):>9} {median(rows, 'p50_ms'):>8} "
            f"{median(rows, 'p99_ms'):>8} {median(rows, 'images_per_s'):>9} "
            f"{rows[0].get('batch_size', ''):>5} {rows[0].get('threads', ''):>7} {len(rows):>6}"
        )
    calls = next((r["calls"] for r in records if "calls" in r), None)
    if calls is not None:
        print(f"batch-1 latency over {calls} calls per round; medians over the rounds")
