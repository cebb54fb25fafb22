"""--mode profile: where one training step's time goes, by kind of op, against the peak.

The step is `--mode train`'s (fit()'s own compiled train function on a batch in memory). It is
first timed without the profiler, then `--steps` steps run under TensorFlow's profiler, whose
trace (the XSpace protobuf it writes, read with TensorFlow's own message class) gives each op's
start and end on the executor threads. Ops run on several inter-op threads at once, so each
moment of the profiled steps is split evenly among the ops running then: the categories, plus
the time no op ran (executor, Python, waiting), add up to the profiled wall time exactly.
Convolution FLOPs come from the model's own shapes, so each convolution kind gets an achieved
GFLOP/s and its share of the peak (`--mode matmul`: the faster of a large matmul and a large 3x3
convolution), the most a convolution could reach.

With oneDNN on, each op reorders its weights (and any input not already in the layout its kernel
wants) inside the op, out of the profiler's sight; so the child runs with ONEDNN_VERBOSE=1 and the
profiled steps' lines of oneDNN's own log give each primitive kind's time, reorders included.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import tempfile
import time

# (key, label) in the table's order. "between_ops" is the profiled time when no op ran.
CATEGORIES = (
    ("conv_forward", "conv forward"),
    ("conv_backward_data", "conv backward-data (input grad)"),
    ("conv_backward_filter", "conv backward-filter"),
    ("batch_norm_forward", "batch norm forward (+fused ReLU)"),
    ("batch_norm_backward", "batch norm backward"),
    ("activations", "activations (ReLU and grad)"),
    ("xla", "XLA-compiled: fused GELU and grad"),
    ("layout", "layout: transpose, pad, slice, copy"),
    ("optimizer", "optimizer update"),
    ("loss", "loss, softmax, L2 penalty, metrics"),
    ("other", "other model ops (adds, pool, dense)"),
    ("between_ops", "between ops (executor, Python)"),
)
CONV_KINDS = ("conv_forward", "conv_backward_data", "conv_backward_filter")

CONV_FORWARD = {"Conv2D", "FusedConv2D", "Conv2DWithBias", "DepthwiseConv2dNative"}
ACTIVATIONS = {"Relu", "Relu6", "Elu", "Selu", "LeakyRelu", "Gelu", "Sigmoid", "Tanh", "Softplus"}
LAYOUT = {
    *("Transpose", "ConjugateTranspose", "ToTf", "InputConversion", "Identity", "Copy"),
    *("Pad", "PadV2", "MirrorPad", "Slice", "StridedSlice", "StridedSliceGrad", "Tile"),
    *("Concat", "ConcatV2", "Pack", "Unpack", "Split", "SplitV", "Reshape", "Squeeze"),
}


# An XLA-compiled function runs as one asynchronous launch, which the profiler records under
# this event name instead of "node:OpType"; read_op_events gives it this op type.
XLA_LAUNCH_EVENT = "CpuExecutable::ExecuteAsyncOnStream"
XLA_CLUSTER = "XlaCluster"


def base_type(op_type: str) -> str:
    """The op's plain TensorFlow type: oneDNN's rewrites (_MklNativeConv2D, _MklMatMul,
    _FusedConv2D...) name the op they replace."""
    name = op_type.lstrip("_")
    for prefix in ("Mkl", "Native"):
        name = name.removeprefix(prefix)
    return name


def op_category(op_type: str, node: str, optimizer: str, bn_scopes: set[str]) -> str:
    """The category of one op, from its type and its node name (the name scope tells the
    optimizer's and a batch-norm layer's bookkeeping ops from the model's)."""
    from resnet_tf.models.conv import TAP_GRADIENT_SCOPE  # TensorFlow: in the child only

    kind = base_type(op_type)
    if kind == XLA_CLUSTER:
        return "xla"
    # The kernel gradient as one matmul per tap (its scope is numbered from the second conv on).
    if any(scope.startswith(TAP_GRADIENT_SCOPE) for scope in node.split("/")):
        return "conv_backward_filter"
    if kind.startswith(("Conv2DBackpropFilter", "DepthwiseConv2dNativeBackpropFilter")):
        return "conv_backward_filter"
    if kind.startswith(("Conv2DBackpropInput", "DepthwiseConv2dNativeBackpropInput")):
        return "conv_backward_data"
    if kind in CONV_FORWARD:
        return "conv_forward"
    if kind.startswith("FusedBatchNorm"):
        return "batch_norm_backward" if "Grad" in kind else "batch_norm_forward"
    if kind.removesuffix("Grad") in ACTIVATIONS:
        return "activations"
    if kind in LAYOUT:
        return "layout"
    scopes = node.split("/")[1:]  # below the train function's call
    if optimizer in scopes:
        return "optimizer"
    if any(node.startswith(scope + "/") for scope in bn_scopes):
        return "batch_norm_forward"  # the moving mean and variance updates
    if "SoftmaxCrossEntropy" in kind or "compile_loss" in scopes:
        return "loss"
    if scopes[:1] == ["gradient_tape"]:
        scopes = scopes[1:]
    # Ops of the model sit in its name scope; the rest of the step is the loss, the L2 penalty on
    # each weight and its gradient, and the metrics.
    return "other" if len(scopes) > 1 else "loss"


def op_of_event(name: str, display_name: str) -> tuple[str, str] | None:
    """(op type, node name) of a profiler event, or None for the executor's and tf.data's own
    events: an op's event is named "node:OpType"."""
    if name == XLA_LAUNCH_EVENT:
        return XLA_CLUSTER, "xla"
    if not display_name or "::" in name or not name.endswith(":" + display_name):
        return None
    return display_name, name[: -len(display_name) - 1]


def read_op_events(logdir: str) -> list[tuple[int, int, int, str, str]]:
    """(start_ps, end_ps, thread, op type, node name) of every op the profiler recorded."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    events = []
    for path in glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True):
        space = xplane_pb2.XSpace()
        with open(path, "rb") as file:
            space.ParseFromString(file.read())
        for plane in space.planes:
            for line in plane.lines:
                for event in line.events:
                    meta = plane.event_metadata[event.metadata_id]
                    op = op_of_event(meta.name, meta.display_name)
                    if op is not None:
                        start = line.timestamp_ns * 1000 + event.offset_ps
                        events.append((start, start + event.duration_ps, line.id, *op))
    return events


def attribute(intervals: list[tuple[int, int, int, str]]) -> dict[str, float]:
    """Seconds per category from (start_ps, end_ps, thread, category) intervals. At each moment
    the innermost op of each thread that runs one gets an equal part of it, so the result adds
    up to the time at least one op ran."""
    intervals = [interval for interval in intervals if interval[1] > interval[0]]
    points = sorted(
        [(start, 1, i) for i, (start, *_) in enumerate(intervals)]
        + [(end, 0, i) for i, (_, end, *_) in enumerate(intervals)]
    )
    running: dict[int, list[int]] = {}  # thread -> the stack of its running ops
    seconds: dict[str, float] = {}
    last = points[0][0] if points else 0
    for time_ps, is_start, index in points:
        busy = [stack[-1] for stack in running.values() if stack]
        for top in busy:
            category = intervals[top][3]
            seconds[category] = seconds.get(category, 0.0) + (time_ps - last) / len(busy) / 1e12
        last = time_ps
        stack = running.setdefault(intervals[index][2], [])
        if is_start:
            stack.append(index)
        else:
            stack.remove(index)
    return seconds


def conv_flops(model) -> dict[str, int]:
    """FLOP per image of each convolution kind, from the model's own layer shapes: forward 2 x
    MACs of every conv; backward-filter the same for each trainable kernel; backward-data the
    same for every conv but the first, whose input is the image (no gradient is needed there)."""
    import keras

    from resnet_tf.models.patch_whitening import PatchWhitening
    from resnet_tf.models.summary import layer_macs

    convs = [
        (layer, macs)
        for layer, macs in layer_macs(model)
        if isinstance(layer, (keras.layers.Conv2D, PatchWhitening))
    ]
    return {
        "conv_forward": 2 * sum(macs for _, macs in convs),
        "conv_backward_data": 2 * sum(macs for _, macs in convs[1:]),
        "conv_backward_filter": 2
        * sum(macs for layer, macs in convs if layer.trainable and layer.kernel.trainable),
    }


def measure_profile(args: argparse.Namespace) -> dict:
    """Time the train step, profile `args.steps` steps, return the per-category record."""
    import numpy as np
    import tensorflow as tf

    from resnet_tf.bench.measure import median_rate, prepare, train_steps
    from resnet_tf.bench.memory import peak_rss_mb
    from resnet_tf.bench.onednn_log import c_stdout_to, onednn_seconds

    _, task, record = prepare(args)
    model = task.build_model()
    flops = conv_flops(model)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.standard_normal((args.batch_size, 32, 32, 3), np.float32))
    labels = tf.constant(rng.integers(0, 10, args.batch_size).astype(np.int32))
    run_steps = train_steps(task, model, images, labels)
    rates = median_rate(lambda: run_steps(args.steps), args.steps, args.repeats, args.warmup)
    step_s = 1 / statistics.median(rates)

    with tempfile.TemporaryDirectory() as logdir:
        onednn_log = os.path.join(logdir, "onednn.log")
        tf.profiler.experimental.start(logdir)
        with c_stdout_to(onednn_log):
            start = time.perf_counter()
            run_steps(args.steps)
            profiled_s = (time.perf_counter() - start) / args.steps
        tf.profiler.experimental.stop()
        events = read_op_events(logdir)
        with open(onednn_log) as log:
            onednn = onednn_seconds(log)

    bn_scopes = {
        node.rsplit("/", 1)[0]
        for _, _, _, op_type, node in events
        if op_type.endswith(("FusedBatchNormV3", "FusedBatchNormEx"))
    }
    optimizer = model.optimizer.name
    intervals, counts, op_types = [], {}, {}
    for start_ps, end_ps, thread, op_type, node in events:
        category = op_category(op_type, node, optimizer, bn_scopes)
        intervals.append((start_ps, end_ps, thread, category))
        counts[category] = counts.get(category, 0) + 1
        op_types.setdefault(category, set()).add(op_type)
    seconds = {key: s / args.steps for key, s in attribute(intervals).items()}
    seconds["between_ops"] = max(profiled_s - sum(seconds.values()), 0.0)
    categories = {}
    for key, _ in CATEGORIES:
        entry = {
            "ms": round(seconds.get(key, 0.0) * 1e3, 2),
            "share": round(seconds.get(key, 0.0) / profiled_s, 4),
            "ops_per_step": counts.get(key, 0) / args.steps,
            "op_types": sorted(op_types.get(key, ())),
        }
        if key in flops:
            entry["gflop"] = round(flops[key] * args.batch_size / 1e9, 3)
            if seconds.get(key):
                entry["gflop_per_s"] = round(entry["gflop"] / seconds[key], 1)
        categories[key] = entry
    return {
        **record,
        "step_ms": round(step_s * 1e3, 1),
        "profiled_step_ms": round(profiled_s * 1e3, 1),
        "profiled_steps": args.steps,
        "images_per_s": round(args.batch_size / step_s, 2),
        "conv_flop_per_image": flops,
        "categories": categories,
        "onednn": {
            kind: {
                "per_step": entry["count"] / args.steps,
                "ms": round(entry["seconds"] / args.steps * 1e3, 2),
                "kernels": {
                    name: round(seconds / args.steps * 1e3, 2)
                    for name, seconds in sorted(entry["kernels"].items(), key=lambda k: -k[1])
                },
            }
            for kind, entry in sorted(onednn.items())
        },
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def add_peak_shares(record: dict, peak: float | None) -> dict:
    """Each convolution kind's GFLOP/s as a share of the same sitting's peak, and the ms it
    would take at that peak."""
    record = {**record, "peak_gflop_per_s": peak}
    for key in CONV_KINDS:
        entry = record["categories"][key]
        if peak and "gflop" in entry:
            entry["ms_at_peak"] = round(entry["gflop"] / peak * 1e3, 2)
            if "gflop_per_s" in entry:
                entry["peak_share"] = round(entry["gflop_per_s"] / peak, 4)
    return record


def print_profile_table(record: dict) -> None:
    print(
        f"{record['model']}, batch {record['batch_size']}: train step {record['step_ms']:.0f} ms "
        f"({record['images_per_s']} images/s), profiled {record['profiled_step_ms']:.0f} ms per "
        f"step over {record['profiled_steps']}; peak {record['peak_gflop_per_s']} GFLOP/s"
    )
    header = (
        f"{'category':37} {'ms/step':>8} {'share':>6} {'GFLOP':>7} {'GFLOP/s':>8} "
        f"{'% peak':>7} {'ms at peak':>10}"
    )
    print(header)
    print("-" * len(header))
    for key, label in CATEGORIES:
        entry = record["categories"][key]
        figures = [
            f"{entry[name]:{width}.{digits}f}" if name in entry else " " * width
            for name, width, digits in (("gflop", 7, 2), ("gflop_per_s", 8, 1))
        ]
        share = f"{entry['peak_share']:7.0%}" if "peak_share" in entry else " " * 7
        at_peak = f"{entry['ms_at_peak']:10.0f}" if "ms_at_peak" in entry else ""
        row = f"{label:37} {entry['ms']:8.1f} {entry['share']:6.1%} {' '.join(figures)} "
        print(f"{row}{share} {at_peak}".rstrip())
    print(f"{'total (profiled step)':37} {record['profiled_step_ms']:8.1f} {1:6.1%}")
    if record["onednn"]:
        print("oneDNN primitives inside those ops (their own log; ms per step, all threads):")
        for kind, entry in record["onednn"].items():
            share = entry["ms"] / record["profiled_step_ms"]
            kernels = ", ".join(
                f"{name} {ms / entry['ms']:.0%}" if entry["ms"] else name
                for name, ms in entry.get("kernels", {}).items()
            )
            print(f"  {kind:35} {entry['ms']:8.1f} {share:6.1%}  x{entry['per_step']:g}  {kernels}")
