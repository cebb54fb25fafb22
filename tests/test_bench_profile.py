"""`--mode profile` (resnet_tf/bench/profile.py): one training step's time by kind of op."""

import json

import pytest

from resnet_tf.bench.profile import CATEGORIES, attribute, op_category

CONV_PROPS = ("forward_training", "backward_data", "backward_weights")

# resnet20's convolutions by hand (CIFAR stem, option-A shortcuts, so no 1x1 convs): output
# positions x 3 x 3 x C_in x C_out. The stem's input is the image: it has no input gradient.
STEM = 32 * 32 * 3 * 9 * 16
RESNET20_CONV_MACS = (
    STEM
    + 6 * 32 * 32 * 16 * 9 * 16
    + (16 * 16 * 16 * 9 * 32 + 5 * 16 * 16 * 32 * 9 * 32)
    + (8 * 8 * 32 * 9 * 64 + 5 * 8 * 8 * 64 * 9 * 64)
)

# fastnet at width 1/8 (groups of 8, 32, 32 channels) by hand: a fixed 2x2 whitening conv to 24
# channels (31 x 31, no padding), then per group a 3x3 conv, a 2x2 max-pool and a 3x3 conv.
WHITEN = 31 * 31 * 2 * 2 * 3 * 24
FASTNET_CONV_MACS = (
    WHITEN
    + (31 * 31 * 9 * 24 * 8 + 15 * 15 * 9 * 8 * 8)
    + (15 * 15 * 9 * 8 * 32 + 7 * 7 * 9 * 32 * 32)
    + (7 * 7 * 9 * 32 * 32 + 3 * 3 * 9 * 32 * 32)
)


def test_overlapping_ops_share_the_time_and_nested_ops_count_once():
    ps = 10**12  # one second in picoseconds
    intervals = [
        (0, 4 * ps, 1, "conv_forward"),  # thread 1: 0-4 s
        (2 * ps, 6 * ps, 2, "batch_norm_forward"),  # thread 2: 2-6 s, overlaps 2-4 s
        (3 * ps, 4 * ps, 1, "layout"),  # nested in thread 1's conv: only it counts then
        (8 * ps, 9 * ps, 2, "optimizer"),  # after 2 s with no op running
        (9 * ps, 9 * ps, 1, "loss"),  # no time at all
    ]
    seconds = attribute(intervals)
    # 0-2 s conv alone; 2-3 s conv and BN halve it; 3-4 s layout and BN; 4-6 s BN alone.
    assert seconds == pytest.approx(
        {"conv_forward": 2.5, "batch_norm_forward": 3.0, "layout": 0.5, "optimizer": 1.0}
    )
    assert sum(seconds.values()) == pytest.approx(7.0)  # the 6-8 s gap belongs to no op
    assert attribute([]) == {}


@pytest.mark.parametrize(
    "op_type, node, category",
    [
        ("_MklNativeConv2D", "SPC/resnet18_1/stem_conv_1/convolution", "conv_forward"),
        ("Conv2D", "SPC/resnet18_1/stem_conv_1/convolution", "conv_forward"),
        ("_FusedConv2D", "SPC/net/conv/convolution", "conv_forward"),
        (
            "_MklNativeConv2DBackpropInput",
            "SPC/gradient_tape/net/b1/conv1_1/convolution/Conv2DBackpropInput",
            "conv_backward_data",
        ),
        (
            "Conv2DBackpropFilter",
            "SPC/gradient_tape/net/b1/conv1_1/convolution/Conv2DBackpropFilter",
            "conv_backward_filter",
        ),
        (  # the kernel gradient by taps (bfloat16 on a CPU) is the backward-filter's
            "_MklMatMul",
            "SPC/gradient_tape/net/b7/conv_1/kernel_gradient_by_taps_3/MatMul_4",
            "conv_backward_filter",
        ),
        ("Pad", "SPC/gradient_tape/kernel_gradient_by_taps/Pad", "conv_backward_filter"),
        ("_MklNativeFusedBatchNormEx", "SPC/net/b1/bn1_1/FusedBatchNormV3", "batch_norm_forward"),
        ("AssignVariableOp", "SPC/net/b1/bn1_1/AssignVariableOp", "batch_norm_forward"),
        (
            "_MklNativeFusedBatchNormGradV3",
            "SPC/gradient_tape/net/b1/bn1_1/FusedBatchNormGradV3",
            "batch_norm_backward",
        ),
        ("Relu", "SPC/net/b1/Relu", "activations"),
        ("ReluGrad", "SPC/gradient_tape/net/b1/ReluGrad", "activations"),
        ("_MklNativeTranspose", "SPC/net/transpose", "layout"),
        ("Pad", "SPC/net/b2/Pad", "layout"),
        ("Mul", "SPC/sgd/Mul", "optimizer"),
        ("AssignAddVariableOp", "SPC/sgd/AssignAddVariableOp", "optimizer"),
        (
            "SparseSoftmaxCrossEntropyWithLogits",
            "SPC/SparseSoftmaxCrossEntropyWithLogits/x",
            "loss",
        ),
        ("Square", "SPC/Square", "loss"),  # the L2 penalty on a weight
        ("Mul", "SPC/gradient_tape/Mul_7", "loss"),  # and its gradient
        ("AddV2", "SPC/net/b1/add", "other"),  # a residual addition
        ("_MklMatMul", "SPC/gradient_tape/net/logits_1/MatMul/MatMul", "other"),
        ("XlaCluster", "xla", "xla"),
    ],
)
def test_op_categories_map_tensorflow_and_onednn_names(op_type, node, category):
    assert op_category(op_type, node, "sgd", {"SPC/net/b1/bn1_1"}) == category


def test_an_xla_launch_is_an_op_and_the_executors_own_events_are_not():
    from resnet_tf.bench.profile import XLA_CLUSTER, XLA_LAUNCH_EVENT, op_of_event

    assert op_of_event(XLA_LAUNCH_EVENT, "") == (XLA_CLUSTER, "xla")
    assert op_of_event("SPC/net/b1/Relu:Relu", "Relu") == ("Relu", "SPC/net/b1/Relu")
    assert op_of_event("ExecutorState::Process", "") is None
    assert op_of_event("Iterator::Prefetch", "Prefetch") is None


def test_onednn_log_times_each_primitive_kind():
    from resnet_tf.bench.onednn_log import onednn_seconds

    log = [
        "onednn_verbose,v1,info,oneDNN v3.7.3 (commit N/A)",
        "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32::blocked:cdba::f0 "
        "dst:f32::blocked:Acdb16a::f0,,,16x3x3x3,0.25",
        "onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx2,forward_training,"
        "src:f32::blocked:acdb::f0,attr-scratchpad:user,alg:convolution_direct,mb8_ic3oc16,1.5",
        "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src dst,,,16x16x3x3,0.75",
        "onednn_verbose,v1,primitive,create:cache_miss,cpu,reorder,jit:uni,undef,src,,,16,0.1",
        "onednn_verbose,exec,cpu,convolution,jit:avx2,backward_weights,src,,alg,mb8,2.0",  # v2.x
        "some other line, exec",
    ]
    assert onednn_seconds(log) == {
        "reorder": {"count": 2, "seconds": pytest.approx(0.001), "kernels": {"jit:uni": 0.001}},
        "convolution forward_training": {
            "count": 1,
            "seconds": pytest.approx(0.0015),
            "kernels": {"brg_conv_fwd:avx2": 0.0015},  # the kernel, with its instruction set
        },
        "convolution backward_weights": {
            "count": 1,
            "seconds": pytest.approx(0.002),
            "kernels": {"jit:avx2": 0.002},
        },
    }


def test_conv_flops_follow_the_model_shapes():
    from resnet_tf.bench.profile import conv_flops
    from resnet_tf.models import build_model

    flops = conv_flops(build_model("resnet20"))
    assert flops == {
        "conv_forward": 2 * RESNET20_CONV_MACS,
        "conv_backward_data": 2 * (RESNET20_CONV_MACS - STEM),
        "conv_backward_filter": 2 * RESNET20_CONV_MACS,
    }


def test_profile_mode_splits_a_real_train_step(capsys):
    """fastnet at width 1/8 and batch 8, two profiled steps, through the command line and its
    child."""
    from resnet_tf.bench.cli import main

    args = ["--model", "fastnet", "--set", "model.width_multiplier=0.125", "--batch-size", "8"]
    timing = ["--steps", "2", "--repeats", "1", "--warmup", "1", "--matmul-size", "256"]
    assert main(["--mode", "profile", "--json", *args, *timing]) == 0
    matmul, record = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert matmul["mode"] == "matmul" and record["peak_gflop_per_s"] == matmul["gflop_per_s"]
    categories = record["categories"]
    assert list(categories) == [key for key, _ in CATEGORIES]

    # The categories and the time no op ran add up to the profiled step, which is the same step
    # as the one timed without the profiler, give or take the profiler's own cost.
    total = sum(entry["ms"] for entry in categories.values())
    assert total == pytest.approx(record["profiled_step_ms"], abs=0.1)
    assert sum(entry["share"] for entry in categories.values()) == pytest.approx(1, abs=0.002)
    assert 1 / 3 < record["profiled_step_ms"] / record["step_ms"] < 3  # a busy machine varies
    assert record["images_per_s"] == pytest.approx(8000 / record["step_ms"], rel=0.01)

    # One op per conv and kind each step (the whitening stem's input is the image, and its
    # kernel is fixed), all of them oneDNN's, with the FLOPs of the hand count at batch 8.
    conv_ops = [categories[key]["ops_per_step"] for key, _ in CATEGORIES[:3]]
    assert conv_ops == [7, 6, 6]
    assert set(categories["conv_forward"]["op_types"]) <= {
        "_MklNativeConv2D",
        "_MklNativeFusedConv2D",
    }
    expected = {
        "conv_forward": 2 * FASTNET_CONV_MACS,
        "conv_backward_data": 2 * (FASTNET_CONV_MACS - WHITEN),
        "conv_backward_filter": 2 * (FASTNET_CONV_MACS - WHITEN),
    }
    for key, _ in CATEGORIES[:3]:
        entry = categories[key]
        assert entry["gflop"] == round(expected[key] * 8 / 1e9, 3)
        assert entry["ms"] > 0
        assert entry["gflop_per_s"] == pytest.approx(entry["gflop"] / entry["ms"] * 1e3, rel=0.02)
        assert entry["peak_share"] == pytest.approx(
            entry["gflop_per_s"] / matmul["gflop_per_s"], abs=0.001
        )
        assert entry["ms_at_peak"] == pytest.approx(
            entry["gflop"] / matmul["gflop_per_s"] * 1e3, abs=0.01
        )
    assert categories["batch_norm_backward"]["ops_per_step"] == 6
    # The fused GELU runs as XLA launches, one each way for each of the 7 activations, and no
    # elementwise tanh is left.
    assert categories["xla"]["ops_per_step"] == 14 and categories["xla"]["ms"] > 0
    assert categories["activations"]["ops_per_step"] == 0
    # oneDNN's own log of the same steps: the same convolutions, and the weight reorders that the
    # TensorFlow profiler cannot see inside the conv ops.
    onednn = record["onednn"]
    assert [onednn[f"convolution {kind}"]["per_step"] for kind in CONV_PROPS] == [7, 6, 6]
    assert onednn["reorder"]["ms"] > 0
    # ... each with the kernels oneDNN chose for it, which name their instruction set.
    forward_kernels = onednn["convolution forward_training"]["kernels"]
    assert forward_kernels and all(":" in name for name in forward_kernels)
    assert categories["optimizer"]["ms"] > 0 and "gflop" not in categories["optimizer"]
