"""Tests for resnet_tf.models: architectures, parameter/MAC counts, options, saving."""

from __future__ import annotations

import functools
import subprocess
import sys

import keras
import numpy as np
import pytest

from resnet_tf.models import MODEL_NAMES, BasicBlock, Bottleneck, ResNet, build_model
from resnet_tf.models.__main__ import main as cli_main
from resnet_tf.models.fastnet import FastNet
from resnet_tf.models.summary import count_macs, count_trainable_params, describe_model
from tests.helpers.tiny_runs import child_env

# Trainable parameters with a 10-way classifier (BN moving statistics excluded).
TRAINABLE_PARAMS = {
    "resnet18": 11_173_962,
    "resnet34": 21_282_122,
    "resnet50": 23_520_842,
    "resnet101": 42_512_970,
    "resnet152": 58_156_618,
    # Option-A shortcuts have no weights. With 1x1-conv + BN projections at the
    # two stage changes ("option B") resnet20 would have 272,474 (+2,752).
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    # The seed tutorial net: biased convs and biased 1x1 downsamples without BN,
    # stem 3x3 valid conv (1,792 params) + 2x2/1 max-pool; 3,008 more than resnet18.
    "seed_resnet18": 11_176_970,
    # The fast recipe's compact net (tests/test_fastnet.py counts it layer by layer).
    "fastnet": 1_971_352,
    "fastnet_relu": 1_971_352,
}


@functools.cache
def shared_model(name: str) -> keras.Model:
    """One default model per name for read-only tests (building resnet152 takes seconds)."""
    return build_model(name)


def images(batch: int = 2, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, size, size, 3)).astype("float32")


def last_branch_bns(model: ResNet) -> list[keras.layers.BatchNormalization]:
    return [block.bn3 if isinstance(block, Bottleneck) else block.bn2 for block in model.blocks]


def test_model_names_are_the_documented_ones():
    assert set(MODEL_NAMES) == set(TRAINABLE_PARAMS)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_is_built_and_outputs_float32_logits(name):
    model = shared_model(name)
    assert isinstance(model, (ResNet, FastNet)) and model.built
    assert count_trainable_params(model) == TRAINABLE_PARAMS[name]
    logits = model(images(), training=False)
    assert tuple(logits.shape) == (2, 10)
    assert logits.dtype == "float32"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(logits)))


def test_parameter_counts_match_the_papers():
    assert count_trainable_params(shared_model("resnet18")) == 11_173_962
    assert count_trainable_params(shared_model("resnet50")) == 23_520_842
    assert abs(count_trainable_params(shared_model("resnet20")) - 270_000) <= 2_700
    assert abs(count_trainable_params(shared_model("resnet56")) - 850_000) <= 8_500
    assert abs(count_trainable_params(shared_model("resnet110")) - 1_700_000) <= 34_000
    # count_params() also counts BN moving mean/variance: 2 per BN channel.
    assert shared_model("resnet18").count_params() == 11_173_962 + 2 * 4_800


def test_num_classes_sets_the_classifier_width():
    model = build_model("resnet20", num_classes=100)
    assert tuple(model(images()).shape) == (2, 100)
    assert count_trainable_params(model) == TRAINABLE_PARAMS["resnet20"] + 90 * 65


def test_imagenet_stem_downsamples_by_four():
    model = build_model("resnet18", stem="imagenet")
    assert tuple(model(images()).shape) == (2, 10)
    shapes = dict(model.stage_output_shapes())
    assert shapes["stem"] == (8, 8, 64) and shapes["stage4"] == (1, 1, 512)
    # Only the stem conv grows: 7*7*3*64 instead of 3*3*3*64.
    assert count_trainable_params(model) == TRAINABLE_PARAMS["resnet18"] + (49 - 9) * 3 * 64


def test_seed_resnet18_is_the_tutorial_network():
    model = shared_model("seed_resnet18")
    assert model.stem_conv.use_bias and model.stem_conv.padding == "valid"
    assert model.stem_pool.pool_size == (2, 2) and model.stem_pool.strides == (1, 1)
    assert all(block.conv1.use_bias and block.conv2.use_bias for block in model.blocks)
    downsampling = [block for block in model.blocks if block.strides == 2]
    assert len(downsampling) == 3
    for block in downsampling:
        assert block.shortcut_conv.use_bias and block.shortcut_bn is None
    shapes = dict(model.stage_output_shapes())
    assert shapes["stem"] == (29, 29, 64)
    assert shapes["stage2"] == (15, 15, 128) and shapes["stage4"] == (4, 4, 512)
    # stem="cifar" (what configs always pass) keeps the tutorial stem.
    assert build_model("seed_resnet18", stem="cifar").stem == "seed"


def test_resnet_structure_choices():
    resnet50 = shared_model("resnet50")
    first_of_stage2 = resnet50.blocks[3]
    # ResNet v1.5: the stride is in the 3x3 conv; the projection strides too.
    assert first_of_stage2.conv1.strides == (1, 1) and first_of_stage2.conv2.strides == (2, 2)
    assert (
        first_of_stage2.shortcut_conv.strides == (2, 2)
        and not first_of_stage2.shortcut_conv.use_bias
    )
    # Stage 1 widens 64 -> 256 without striding, so it still needs a projection.
    assert resnet50.blocks[0].shortcut_conv is not None and resnet50.blocks[1].shortcut_conv is None
    resnet20 = shared_model("resnet20")
    assert all(block.shortcut_conv is None for block in resnet20.blocks)  # option A everywhere
    init = resnet20.stem_conv.kernel_initializer.get_config()
    assert (init["scale"], init["mode"], init["distribution"]) == (
        2.0,
        "fan_out",
        "untruncated_normal",
    )
    assert resnet20.classifier.dtype_policy.name == "float32"


def test_option_a_shortcut_subsamples_and_zero_pads_channels():
    """With the residual branch zeroed, the block's output is relu(shortcut(x))."""
    block = BasicBlock(8, strides=2, shortcut="zero_pad", zero_init_residual=True)
    x = images(batch=1, size=6)[..., :3]
    x = np.concatenate([x, x[..., :1]], axis=-1)  # 4 channels in, 8 out
    y = keras.ops.convert_to_numpy(block(x, training=False))
    assert y.shape == (1, 3, 3, 8)
    expected = np.zeros((1, 3, 3, 8), "float32")
    expected[..., 2:6] = np.maximum(x[:, ::2, ::2, :], 0)
    np.testing.assert_allclose(y, expected, atol=1e-6)
    assert block.shortcut_conv is None and len(block.trainable_weights) == 6  # no shortcut weights


def test_zero_init_residual_zeroes_the_last_bn_of_every_branch():
    for model in (
        build_model("resnet20", zero_init_residual=True),
        ResNet("bottleneck", stage_blocks=(1, 2), stage_widths=(8, 16), zero_init_residual=True),
    ):
        model.build((None, 32, 32, 3))
        for bn in last_branch_bns(model):
            assert np.all(keras.ops.convert_to_numpy(bn.gamma) == 0)
        assert np.all(keras.ops.convert_to_numpy(model.blocks[0].bn1.gamma) == 1)
        assert np.all(keras.ops.convert_to_numpy(model.stem_bn.gamma) == 1)
    default = shared_model("resnet20")
    assert all(np.all(keras.ops.convert_to_numpy(bn.gamma) == 1) for bn in last_branch_bns(default))


def test_bn_options_reach_every_batchnorm():
    model = build_model("resnet20", bn_momentum=0.99, bn_epsilon=1e-3)
    bns = [
        layer
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(bns) == 1 + 2 * 9
    assert all(bn.momentum == 0.99 and bn.epsilon == 1e-3 for bn in bns)
    defaults = shared_model("resnet20").stem_bn
    assert (defaults.momentum, defaults.epsilon) == (0.9, 1e-5)


def test_training_forward_updates_bn_statistics_and_inference_does_not():
    model = build_model("resnet20")
    bn = model.blocks[4].bn1
    before = keras.ops.convert_to_numpy(bn.moving_mean).copy()
    model(images(4), training=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(bn.moving_mean), before)
    model(images(4), training=True)
    assert not np.allclose(keras.ops.convert_to_numpy(bn.moving_mean), before)
    assert not np.allclose(keras.ops.convert_to_numpy(model.stem_bn.moving_variance), 1.0)


def test_width_multiplier_scales_stage_widths():
    model = build_model("resnet20", width_multiplier=2)
    assert model.stage_widths == [32, 64, 128]
    assert tuple(model(images()).shape) == (2, 10)


def test_logits_stay_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model("resnet20")
        logits = model(images(), training=False)
        assert model.stem_conv.compute_dtype == "bfloat16"
        assert model.stem_conv.kernel.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert logits.dtype == "float32"


def test_configs_round_trip():
    model = shared_model("seed_resnet18")
    clone = ResNet.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    for block in (
        BasicBlock(16, strides=2, shortcut="conv", conv_bias=True, name="b"),
        Bottleneck(8, zero_init_residual=True, bn_momentum=0.99, name="c"),
    ):
        config = block.get_config()
        assert type(block).from_config(config).get_config() == config


def test_saved_models_reload_in_a_fresh_process_and_predict_the_same(tmp_path):
    """resnet20 (option A), seed_resnet18 (biased convs) and fastnet (a data-set whitening
    kernel), checked in one child process. seed_resnet18 at a quarter width: the same layers with
    0.7 M instead of 11 M weights to write, load and run."""
    names = ["resnet20", "seed_resnet18", "fastnet"]
    options = {"seed_resnet18": {"width_multiplier": 0.25}}
    x = images(3, seed=2)
    for name in names:
        model = build_model(name, **options.get(name, {}))
        if name == "fastnet":
            model.adapt(images(50, seed=3))
        model(images(8, seed=1), training=True)  # move the BN statistics off their initial values
        model.save(tmp_path / f"{name}.keras")
        np.save(tmp_path / f"{name}.npy", keras.ops.convert_to_numpy(model(x, training=False)))
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys, pathlib, numpy as np, keras\n"
        "import resnet_tf.models\n"
        "folder = pathlib.Path(sys.argv[1])\n"
        "x = np.load(folder / 'x.npy')\n"
        "for name in sys.argv[2:]:\n"
        "    model = keras.models.load_model(folder / f'{name}.keras')\n"
        "    assert type(model).__name__ in ('ResNet', 'FastNet') and model.name == name\n"
        "    got = keras.ops.convert_to_numpy(model(x, training=False))\n"
        "    expected = np.load(folder / f'{name}.npy')\n"
        "    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)\n"
        "    print('ok', name)\n"
    )
    env = child_env()
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), *names],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["ok", "resnet20", "ok", "seed_resnet18", "ok", "fastnet"]


def test_count_macs_matches_hand_counts():
    # resnet18, CIFAR stem: stem 1.77M + stage1 151.0M + 3 x 134.2M + fc 5,120 (~0.556 GMAC).
    macs = count_macs(shared_model("resnet18"))
    assert macs == 555_422_720
    assert abs(macs - 0.556e9) / 0.556e9 < 0.01
    assert count_macs(shared_model("resnet20")) == 40_551_040  # the paper's "41M FLOPs"
    # A 64x64 input quadruples the conv work; the classifier stays at 512 * 10.
    assert count_macs(shared_model("resnet18"), (64, 64, 3)) == 4 * (macs - 5_120) + 5_120
    # The temporary call wrappers are gone again.
    assert "call" not in vars(shared_model("resnet18").stem_conv)


def test_describe_model_mentions_name_params_macs_and_stage_shapes():
    text = describe_model(shared_model("resnet20"))
    assert "resnet20" in text and "269,722 trainable" in text
    assert "40.6 M" in text
    assert "stage3   (8, 8, 64)" in text


def test_cli_prints_a_summary_and_rejects_bad_names(capsys):
    assert cli_main(["resnet20", "--num-classes", "100"]) == 0
    out = capsys.readouterr().out
    assert "resnet20" in out and "logits   (100,)" in out
    assert cli_main(["resnet20", "resnt56"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "did you mean 'resnet56'" in captured.err


def test_fused_batch_norm_matches_keras_batch_norm():
    """Same outputs and gradients as Keras' own layer; running variance is the unbiased one."""
    import tensorflow as tf

    from resnet_tf.models.batch_norm import FusedBatchNormalization

    x = tf.constant(np.random.default_rng(0).standard_normal((8, 6, 6, 5)).astype("float32") * 3)
    plain = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    fused = FusedBatchNormalization(momentum=0.9, epsilon=1e-5)
    for layer in (plain, fused):
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 2.0, 5))
        layer.beta.assign(np.linspace(-1.0, 1.0, 5))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y_plain, y_fused = plain(x, training=True), fused(x, training=True)
        loss_plain, loss_fused = tf.reduce_sum(y_plain**3), tf.reduce_sum(y_fused**3)
    np.testing.assert_allclose(y_fused, y_plain, atol=1e-5)
    for a, b in zip(
        tape.gradient(loss_fused, [x, fused.gamma, fused.beta]),
        tape.gradient(loss_plain, [x, plain.gamma, plain.beta]),
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(fused.moving_mean, plain.moving_mean, atol=1e-6)
    n = 8 * 6 * 6
    batch_var = np.var(x.numpy().reshape(-1, 5), axis=0)
    np.testing.assert_allclose(
        fused.moving_variance, 0.9 + 0.1 * batch_var * n / (n - 1), rtol=1e-5
    )
    # Inference uses the moving statistics, like Keras.
    fused.moving_variance.assign(plain.moving_variance)
    np.testing.assert_allclose(fused(x, training=False), plain(x, training=False), atol=1e-5)


def test_fused_batch_norm_takes_bfloat16_as_it_is_and_matches_the_float32_computation():
    """Under mixed_bfloat16 the kernel reads the bfloat16 activations without casts around it
    and gives what normalizing in float32 and rounding once gives."""
    import tensorflow as tf

    from resnet_tf.models.batch_norm import FusedBatchNormalization

    x32 = np.random.default_rng(1).standard_normal((8, 6, 6, 5)).astype("float32") * 3 + 1
    x = tf.cast(x32, tf.bfloat16)
    mixed = FusedBatchNormalization(momentum=0.9, epsilon=1e-5, dtype="mixed_bfloat16")
    full = FusedBatchNormalization(momentum=0.9, epsilon=1e-5)
    for layer in (mixed, full):
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 2.0, 5))
        layer.beta.assign(np.linspace(-1.0, 1.0, 5))
    weights = np.random.default_rng(2).standard_normal(x.shape).astype("float32")
    graph = tf.function(lambda t: mixed(t, training=True)).get_concrete_function(x).graph
    cast_types = {op.get_attr("DstT") for op in graph.get_operations() if op.type == "Cast"}
    assert tf.float32 not in cast_types  # the activations are not widened first
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = mixed(x, training=True)
        y_full = full(tf.cast(x, "float32"), training=True)
        loss, loss_full = (tf.reduce_sum(tf.cast(t, "float32") * weights) for t in (y, y_full))
    assert y.dtype == tf.bfloat16
    np.testing.assert_array_equal(
        tf.cast(y, "float32"), tf.cast(tf.cast(y_full, tf.bfloat16), "float32")
    )
    np.testing.assert_allclose(mixed.moving_mean, full.moving_mean, rtol=1e-6)
    np.testing.assert_allclose(mixed.moving_variance, full.moving_variance, rtol=1e-6)
    dx, dx_full = tape.gradient(loss, x), tape.gradient(loss_full, x)
    assert dx.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(dx, "float32"), dx_full, rtol=1e-2, atol=1e-2)
