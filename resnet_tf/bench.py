"""Performance measurement: training, input pipeline, end-to-end fit, inference, matmul peak.

    python -m resnet_tf.bench --model resnet18 --batch-size 128 --mode train
    python -m resnet_tf.bench --mode all --data-dir ../shared/datasets --json
    python -m resnet_tf.bench --mode compare --peer-python /tmp/torchenv/bin/python --rounds 3

Every measurement runs in a fresh process (so the TensorFlow settings that only apply at import,
such as oneDNN, can differ, and each peak RSS is its own), repeats a timed block of steps after a
warm-up, and reports the median. The machine is shared and noisy: compare variants interleaved,
in one sitting (`--mode compare` does that), and quote medians and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODES = ("train", "pipeline", "e2e", "eval", "matmul")
ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT.parent / "shared" / "peers" / "pytorch_resnet18.py"


def peak_rss_mb() -> float:
    """Peak resident memory of this process. Linux's VmHWM, because ru_maxrss also counts the
    memory of the parent process at the exec that started this one (here ~570 MB: the bench
    driver has imported TensorFlow), which would hide a smaller child's own peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _median_rate(run_block, items_per_block: int, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        run_block()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_block()
        rates.append(items_per_block / (time.perf_counter() - start))
    return rates


# ---------------------------------------------------------------- one measurement (in-process)


def measure(args: argparse.Namespace) -> dict:
    """Run one mode in this process and return its result record."""
    if args.mode == "matmul":
        return _measure_matmul(args)

    import keras
    import numpy as np
    import tensorflow as tf

    from resnet_tf import data as data_lib
    from resnet_tf import training
    from resnet_tf.config import load_config
    from resnet_tf.models.summary import count_macs
    from resnet_tf.training import ImageClassificationTask

    # What the framework itself holds (its libraries, mostly) before any model or data: the rest
    # of the peak is the measurement's working set.
    framework_rss = round(peak_rss_mb(), 1)
    overrides = [f"model.name={args.model}", f"train.batch_size={args.batch_size}", *args.overrides]
    config = load_config(args.config, overrides)
    training.set_up(config, distributed=False)
    task = ImageClassificationTask(config)
    record = {
        "mode": args.mode,
        "model": args.model,
        "batch_size": args.batch_size,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
        "jit_compile": config.runtime.jit_compile,
        "steps_per_execution": config.train.steps_per_execution,
        "mixed_precision": config.runtime.mixed_precision,
        "overrides": list(args.overrides),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "framework_rss_mb": framework_rss,
    }

    if args.mode == "pipeline":
        (x, y), _ = data_lib.load_cifar10(args.data_dir or config.data.path)
        splits = task.make_splits(x, y)
        iterator = iter(task.train_dataset(splits, start_epoch=0))

        def block():
            for _ in range(args.steps):
                next(iterator)

        rates = _median_rate(block, args.steps * args.batch_size, args.repeats, args.warmup)
        return {**record, **_rates(rates), "peak_rss_mb": round(peak_rss_mb(), 1)}

    model = task.build_model()
    macs = count_macs(model)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.standard_normal((args.batch_size, 32, 32, 3), np.float32))
    labels = tf.constant(rng.integers(0, 10, args.batch_size).astype(np.int32))

    if args.mode == "eval":
        predict = tf.function(
            lambda x: model(x, training=False), jit_compile=config.runtime.jit_compile
        )

        def block():
            for _ in range(args.steps):
                predict(images).numpy()

        flop_per_image = 2 * macs
    elif args.mode == "train":
        task.compile_model(model, steps_per_epoch=1000)
        steps_per_execution = config.train.steps_per_execution
        batches = tf.data.Dataset.from_tensors((images, labels)).repeat()
        iterator = iter(batches)
        model.make_train_function()
        train_function = model.train_function

        def block():
            for _ in range(args.steps // steps_per_execution):
                logs = train_function(iterator)
            float(logs["loss"])  # wait for the last step

        flop_per_image = 3 * 2 * macs
    else:  # e2e: real fit() on the real pipeline; per-epoch overheads measured separately
        (x, y), _ = data_lib.load_cifar10(args.data_dir or config.data.path)
        splits = task.make_splits(x, y)
        task.compile_model(model, steps_per_epoch=task.steps_per_epoch(splits))
        epoch_times: list[float] = []

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                epoch_times.append(time.perf_counter() - self.start)

        model.fit(
            task.train_dataset(splits, start_epoch=0),
            steps_per_epoch=args.steps,
            epochs=args.warmup + args.repeats,
            callbacks=[Timer()],
            verbose=0,
            shuffle=False,
        )
        rates = [args.steps * args.batch_size / t for t in epoch_times[args.warmup :]]
        return {
            **record,
            **_rates(rates),
            "macs_per_image": macs,
            **_flops(statistics.median(rates), 6 * macs),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }

    rates = _median_rate(block, args.steps * args.batch_size, args.repeats, args.warmup)
    return {
        **record,
        **_rates(rates),
        "macs_per_image": macs,
        **_flops(statistics.median(rates), flop_per_image),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def _rates(rates: list[float]) -> dict:
    return {
        "images_per_s": round(statistics.median(rates), 2),
        "images_per_s_all": [round(r, 2) for r in rates],
    }


def _flops(images_per_s: float, flop_per_image: float) -> dict:
    return {"gflop_per_s": round(images_per_s * flop_per_image / 1e9, 1)}


def _measure_matmul(args: argparse.Namespace) -> dict:
    """The machine's practical float32 peak: the faster of a large numpy (BLAS) and TF matmul."""
    import numpy as np

    n = args.matmul_size
    a = np.random.default_rng(0).standard_normal((n, n), np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), np.float32)
    repeats = max(args.repeats, 3)
    numpy_rates = _median_rate(lambda: a @ b, 1, repeats, 1)

    import tensorflow as tf

    ta, tb = tf.constant(a), tf.constant(b)
    tf_rates = _median_rate(lambda: tf.linalg.matmul(ta, tb).numpy(), 1, repeats, 1)
    numpy_gflops = statistics.median(numpy_rates) * 2 * n**3 / 1e9
    tf_gflops = statistics.median(tf_rates) * 2 * n**3 / 1e9
    return {
        "mode": "matmul",
        "n": n,
        "gflop_per_s": round(max(numpy_gflops, tf_gflops), 1),
        "numpy_gflop_per_s": round(numpy_gflops, 1),
        "tf_gflop_per_s": round(tf_gflops, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


# ---------------------------------------------------------------- several measurements


def run_child(argv: list[str], env: dict | None = None) -> dict:
    """One measurement in a fresh process; its last stdout line is the JSON record."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    if "matmul" in argv:
        # Set on some machines here for old OpenBLAS builds; they slow a current numpy's BLAS,
        # which would understate the peak. Only this measurement runs without them.
        environment.pop("OPENBLAS_CORETYPE", None)
        environment.pop("OPENBLAS_L2_SIZE", None)
    out = subprocess.run(
        [sys.executable, "-m", "resnet_tf.bench", "--child", *argv],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": tail, "argv": argv}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _timing_args(args: argparse.Namespace) -> list[str]:
    """The warm-up/steps/repeats flags, which ours and the peer's command lines share."""
    return [
        "--steps",
        str(args.steps),
        "--repeats",
        str(args.repeats),
        "--warmup",
        str(args.warmup),
    ]


def run_peer(python: str, mode: str, batch_size: int, channels_last: bool, args) -> dict:
    command = [
        python,
        str(PEER),
        "--mode",
        mode,
        "--batch-size",
        str(batch_size),
        *_timing_args(args),
    ]
    if channels_last:
        command.append("--channels-last")
    # torch is imported first so that its own footprint is known (framework_rss_mb, as ours);
    # the peak is read as peak_rss_mb reads ours.
    script = (
        "import runpy, sys, torch\n"
        "def rss():\n"
        "    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM:'))"
        ".split()[1]) / 1024\n"
        "sys.argv = sys.argv[1:]\n"
        "base = rss()\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "print('RSS', rss(), base)\n"
    )
    out = subprocess.run([command[0], "-c", script, *command[1:]], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1], "peer": True}
    lines = out.stdout.strip().splitlines()
    record = json.loads(next(line for line in lines if line.startswith("{")))
    peak, framework = (float(value) for value in lines[-1].split()[1:3])
    record["peak_rss_mb"] = round(peak, 1)
    record["framework_rss_mb"] = round(framework, 1)
    record["model"] = record.pop("peer")
    return record


def print_table(records: list[dict], matmul_peak: float | None) -> None:
    header = (
        f"{'mode':9} {'model / variant':34} {'batch':>5} {'img/s':>8} {'GFLOP/s':>8} "
        f"{'% peak':>7} {'RSS MB':>7} {'of it framework':>15}"
    )
    print(header)
    print("-" * len(header))
    for r in records:
        if "error" in r:
            print(f"error: {r['error']}")
            continue
        gflops = r.get("gflop_per_s")
        share = f"{gflops / matmul_peak:7.0%}" if gflops and matmul_peak else f"{'':7}"
        variant = r.get("variant", r.get("model", ""))
        print(
            f"{r['mode']:9} {variant:34} {r.get('batch_size', ''):>5} "
            f"{r.get('images_per_s', ''):>8} {gflops if gflops else '':>8} {share} "
            f"{r.get('peak_rss_mb', ''):>7} {r.get('framework_rss_mb', ''):>15}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", default="train", choices=[*MODES, "all", "compare"])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--config", help="YAML config for the training settings (default: the built-in defaults)"
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--data-dir", help="CIFAR-10 archive or folder (pipeline, e2e)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--matmul-size", type=int, default=4096, help="n of the n x n matmul")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--output", help="also write the records to this JSON file")
    parser.add_argument("--peer-python", help="python of a venv with torch, for --mode compare")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (compare)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        from resnet_tf.errors import ResnetTfError

        try:
            print(json.dumps(measure(args)))
        except ResnetTfError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0

    common = [
        "--model",
        args.model,
        "--batch-size",
        str(args.batch_size),
        *_timing_args(args),
        *(["--config", args.config] if args.config else []),
        *(["--data-dir", args.data_dir] if args.data_dir else []),
        *[a for s in args.overrides for a in ("--set", s)],
    ]
    records: list[dict] = []

    def emit(record: dict) -> None:
        records.append(record)
        if args.json:
            print(json.dumps(record), flush=True)

    if args.mode == "compare":
        if not args.peer_python:
            parser.error("--mode compare needs --peer-python (a venv with torch)")
        emit(run_child(["--mode", "matmul", "--matmul-size", str(args.matmul_size)]))
        for round_index in range(args.rounds):
            for mode in ("train", "eval"):
                batch = args.batch_size if mode == "train" else 512
                ours = run_child(["--mode", mode, *common, "--batch-size", str(batch)])
                emit({**ours, "variant": f"resnet_tf {args.model}", "round": round_index})
                for channels_last in (False, True):
                    peer = run_peer(args.peer_python, mode, batch, channels_last, args)
                    emit({**peer, "variant": peer.get("model", "peer"), "round": round_index})
    else:
        modes = [m for m in MODES if m != "matmul"] if args.mode == "all" else [args.mode]
        for mode in (["matmul"] if args.mode == "all" else []) + modes:
            emit(run_child(["--mode", mode, *common, "--matmul-size", str(args.matmul_size)]))

    if not args.json:
        peak = next((r["gflop_per_s"] for r in records if r.get("mode") == "matmul"), None)
        print_table(records, peak)
    if args.output:
        Path(args.output).write_text(json.dumps(records, indent=2) + "\n")
    return 0 if all("error" not in r for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
