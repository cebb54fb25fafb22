"""One measurement, in this process: training, input pipeline, end-to-end fit, inference, or the
matmul peak. Each runs a timed block of steps after a warm-up and reports every repeat's rate and
their median."""

from __future__ import annotations

import argparse
import os
import statistics
import time

from resnet_tf.bench.memory import peak_rss_mb


def median_rate(run_block, items_per_block: int, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        run_block()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_block()
        rates.append(items_per_block / (time.perf_counter() - start))
    return rates


def prepare(args: argparse.Namespace) -> tuple:
    """The config, the training task and the record's common fields, after the runtime set-up
    (threads, seeds, precision) that every training measurement shares."""
    import keras
    import tensorflow as tf

    from resnet_tf import training
    from resnet_tf.config import load_config
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
        "mixed_precision": keras.mixed_precision.global_policy().name,  # `auto` as resolved
        "overrides": list(args.overrides),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "framework_rss_mb": framework_rss,
    }
    return config, task, record


def train_steps(task, model, images, labels):
    """A function that runs n steps of `fit()`'s own compiled train function on one batch already
    in memory, and waits for the last."""
    import tensorflow as tf

    task.compile_model(model, updates_per_epoch=1000)
    steps_per_execution = task.config.train.steps_per_execution
    iterator = iter(tf.data.Dataset.from_tensors((images, labels)).repeat())
    model.make_train_function()
    train_function = model.train_function

    def run(steps: int) -> None:
        for _ in range(max(steps // steps_per_execution, 1)):
            logs = train_function(iterator)
        float(logs["loss"])  # wait for the last step

    return run


def measure(args: argparse.Namespace) -> dict:
    """Run one mode in this process and return its result record."""
    if args.mode == "matmul":
        return _measure_matmul(args)

    import keras
    import numpy as np
    import tensorflow as tf

    from resnet_tf import data as data_lib
    from resnet_tf.models.summary import count_macs

    config, task, record = prepare(args)

    if args.mode == "pipeline":
        (x, y), _ = data_lib.load_cifar10(args.data_dir or config.data.path)
        splits = task.make_splits(x, y)
        iterator = iter(task.train_dataset(splits, start_epoch=0))

        def block():
            for _ in range(args.steps):
                next(iterator)

        rates = median_rate(block, args.steps * args.batch_size, args.repeats, args.warmup)
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
        run_steps = train_steps(task, model, images, labels)

        def block():
            run_steps(args.steps)

        flop_per_image = 3 * 2 * macs
    else:  # e2e: real fit() on the real pipeline; per-epoch overheads measured separately
        (x, y), _ = data_lib.load_cifar10(args.data_dir or config.data.path)
        splits = task.make_splits(x, y)
        task.compile_model(model, updates_per_epoch=task.updates_per_epoch(splits))
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

    rates = median_rate(block, args.steps * args.batch_size, args.repeats, args.warmup)
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


def _gflops(run_once, flop: int, repeats: int) -> float:
    """GFLOP/s of `run_once` (`flop` FLOPs a call): the median of `repeats` after one warm-up."""
    return statistics.median(median_rate(run_once, 1, repeats, 1)) * flop / 1e9


def _measure_matmul(args: argparse.Namespace) -> dict:
    """The machine's practical peak in float32 and in bfloat16: the fastest of a large matmul
    (numpy's BLAS, TensorFlow's) and a large 3x3 convolution (TensorFlow's).

    The convolution is there because a matmul is not always the fastest way through the matrix
    units: with AMX, TensorFlow's bfloat16 3x3 convolutions (oneDNN's brgemm kernels) run well
    above its bfloat16 matmul, so the matmul alone would understate the peak that a training
    step's share is taken of (docs/performance.md)."""
    import numpy as np

    n = args.matmul_size
    a = np.random.default_rng(0).standard_normal((n, n), np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), np.float32)
    repeats = max(args.repeats, 3)
    matmul_flop = 2 * n**3
    numpy_gflops = _gflops(lambda: a @ b, matmul_flop, repeats)

    import tensorflow as tf

    ta, tb = tf.constant(a), tf.constant(b)
    ha, hb = tf.cast(ta, tf.bfloat16), tf.cast(tb, tf.bfloat16)
    # A 512-channel 3x3 convolution on 16 x 16 maps, its batch scaled with the matmul's size.
    batch, side, channels = max(1, n // 32), 16, 512
    images = tf.random.stateless_normal((batch, side, side, channels), (0, 0))
    kernel = tf.random.stateless_normal((3, 3, channels, channels), (0, 1))
    conv_flop = 2 * batch * side * side * 9 * channels * channels

    def conv(x: tf.Tensor, k: tf.Tensor):
        return lambda: tf.nn.conv2d(x, k, 1, "SAME").numpy()

    tf_gflops = _gflops(lambda: tf.linalg.matmul(ta, tb).numpy(), matmul_flop, repeats)
    conv_gflops = _gflops(conv(images, kernel), conv_flop, repeats)
    bf16_gflops = _gflops(lambda: tf.linalg.matmul(ha, hb).numpy(), matmul_flop, repeats)
    bf16_conv_gflops = _gflops(
        conv(tf.cast(images, tf.bfloat16), tf.cast(kernel, tf.bfloat16)), conv_flop, repeats
    )
    # bfloat16's peak sits above float32's with AMX or a full-rate bfloat16 dot product, below
    # it where bfloat16 is emulated or, as on an Intel CPU with AVX-512 BF16 and no AMX, no
    # faster per cycle than float32.
    return {
        "mode": "matmul",
        "n": n,
        "gflop_per_s": round(max(numpy_gflops, tf_gflops, conv_gflops), 1),
        "numpy_gflop_per_s": round(numpy_gflops, 1),
        "tf_gflop_per_s": round(tf_gflops, 1),
        "tf_conv_gflop_per_s": round(conv_gflops, 1),
        "bfloat16_gflop_per_s": round(max(bf16_gflops, bf16_conv_gflops), 1),
        "bfloat16_matmul_gflop_per_s": round(bf16_gflops, 1),
        "bfloat16_conv_gflop_per_s": round(bf16_conv_gflops, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
