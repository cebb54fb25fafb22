"""The fast recipe's pieces: FastNet and its patch whitening, shift-only BN, the linear schedule,
flip TTA for the final test score, and configs/fast.yaml itself."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from resnet_tf import experiment
from resnet_tf.config import load_config
from resnet_tf.errors import ConfigError
from resnet_tf.evaluation.metrics import accuracy_and_loss
from resnet_tf.evaluation.tta import predict, shift_images
from resnet_tf.models import build_model, fastnet
from resnet_tf.models.batch_norm import FusedBatchNormalization
from resnet_tf.models.fastnet import FastNet, PatchWhitening, activate
from resnet_tf.models.summary import count_macs, count_trainable_params
from resnet_tf.training import schedules
from tests.helpers.tiny_runs import tiny_fast_config


def correlated_images(n: int = 300, seed: int = 0) -> np.ndarray:
    """Smooth, channel-correlated images: their 2x2 patches are far from white."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 8, 8, 1))
    smooth = np.repeat(np.repeat(base, 4, axis=1), 4, axis=2)  # 32x32, blocky
    mix = np.array([[1.0, 0.8, 0.6]])
    return (smooth * mix + 0.1 * rng.normal(size=(n, 32, 32, 3))).astype("float32")


def test_patch_whitening_decorrelates_patches():
    x = correlated_images()
    layer = PatchWhitening(epsilon=1e-6)
    layer.adapt(x)
    out = keras.ops.convert_to_numpy(layer(x)).reshape(-1, 24)
    assert out.shape[0] == len(x) * 31 * 31
    cov = np.cov(out[:, :12], rowvar=False)
    np.testing.assert_allclose(cov, np.eye(12), atol=0.02)
    # The second half are the negated filters, and the kernel is frozen.
    np.testing.assert_allclose(out[:, 12:], -out[:, :12], atol=1e-5)
    assert [w.name for w in layer.trainable_weights] == ["bias"]
    # Without adapt the filters are zero, and the raw patches are far from white.
    assert not np.any(keras.ops.convert_to_numpy(PatchWhitening()(x[:2])))
    assert np.abs(np.cov(x[:, :2, :2, :].reshape(len(x), -1), rowvar=False)).max() > 0.5


def test_fastnet_shape_params_and_macs():
    model = build_model("fastnet")
    assert isinstance(model, FastNet) and model.widths == [64, 256, 256]
    # whiten bias 24; convs 24*64*9 + 64*64*9 + 64*256*9 + 256*256*9 * 3; BN shifts only
    # (64*2 + 256*4); classifier 256*10, no bias.
    convs = 9 * (24 * 64 + 64 * 64 + 64 * 256 + 3 * 256 * 256)
    assert count_trainable_params(model) == 24 + convs + 64 * 2 + 256 * 4 + 2560
    assert not [w for w in model.weights if "gamma" in w.path]
    # Spatial sizes 31 (whiten, valid 2x2) -> 15 -> 7 -> 3; each group's first conv runs
    # before its pool, the second after it.
    macs = (
        31 * 31 * 12 * 24
        + 31 * 31 * 9 * 24 * 64 + 15 * 15 * 9 * 64 * 64
        + 15 * 15 * 9 * 64 * 256 + 7 * 7 * 9 * 256 * 256
        + 7 * 7 * 9 * 256 * 256 + 3 * 3 * 9 * 256 * 256
        + 256 * 10
    )  # fmt: skip
    assert count_macs(model) == macs
    half = build_model("fastnet", width_multiplier=0.5)
    assert half.widths == [32, 128, 128]
    logits = half(correlated_images(4), training=False)
    assert tuple(logits.shape) == (4, 10) and logits.dtype == "float32"
    with pytest.raises(ConfigError, match="fixed patch-whitening stem"):
        build_model("fastnet", stem="imagenet")


def test_shift_only_fused_batch_norm_matches_keras():
    x = tf.constant(np.random.default_rng(1).normal(size=(6, 5, 5, 4)).astype("float32") * 2 + 1)
    plain = keras.layers.BatchNormalization(scale=False, momentum=0.6)
    fused = FusedBatchNormalization(scale=False, momentum=0.6)
    for layer in (plain, fused):
        layer.build(x.shape)
        layer.beta.assign([0.5, -0.5, 1.0, 0.0])
    np.testing.assert_allclose(fused(x, training=True), plain(x, training=True), atol=1e-5)
    np.testing.assert_allclose(fused.moving_mean, plain.moving_mean, atol=1e-6)
    n = 6 * 5 * 5  # the fused kernel keeps the unbiased variance, as PyTorch does
    batch_var = np.var(x.numpy().reshape(-1, 4), axis=0)
    np.testing.assert_allclose(
        fused.moving_variance, 0.6 + 0.4 * batch_var * n / (n - 1), rtol=1e-5
    )
    fused.moving_variance.assign(plain.moving_variance)
    np.testing.assert_allclose(fused(x, training=False), plain(x, training=False), atol=1e-5)
    # Neither scale nor shift: plain standardisation.
    bare = FusedBatchNormalization(scale=False, center=False, epsilon=1e-12)
    y = bare(x, training=True).numpy().reshape(-1, 4)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=0), 1, atol=1e-4)


def test_linear_schedule_warms_up_then_decays_to_the_final_fraction():
    config = load_config(
        None,
        [
            "train.epochs=10",
            "train.optimizer.lr=0.4",
            "train.schedule.name=linear",
            "train.schedule.warmup_epochs=2",
            "train.schedule.final_lr_fraction=0.1",
        ],
    )
    schedule = schedules.make_schedule(config.train, updates_per_epoch=10)

    def lr(step):
        return float(keras.ops.convert_to_numpy(schedule(step)))

    assert lr(0) == pytest.approx(0.4 / 20)
    assert lr(19) == pytest.approx(0.4)
    assert lr(40) == pytest.approx(0.4 - 0.36 * 0.25)  # a quarter of the way (cosine: 0.347)
    assert lr(60) == pytest.approx(0.4 - 0.36 * 0.5)  # half-way down from 0.4 to 0.04
    assert lr(100) == pytest.approx(0.04)


def saved_tiny_fastnet(tmp_path: Path, seed: int):
    """(model, its .keras file, 20 images, labels, the images as a batched dataset)."""
    model = build_model("fastnet", width_multiplier=0.25)
    x = correlated_images(20, seed=seed)
    model.adapt(x)
    model.save(tmp_path / "m.keras")
    data = tf.data.Dataset.from_tensor_slices(x).batch(8)
    return model, tmp_path / "m.keras", x, np.arange(20) % 10, data


def score_saved_model(path: Path, data, labels: np.ndarray, tta: str = "none") -> dict:
    """Load as a user would and score through evaluation's one TTA path (as the test score)."""
    logits, _ = predict(keras.models.load_model(path), data, tta)
    return accuracy_and_loss(logits, labels)


def test_flip_tta_averages_the_logits_of_image_and_mirror(tmp_path):
    model, path, x, y, data = saved_tiny_fastnet(tmp_path, seed=3)
    got = score_saved_model(path, data, y, tta="flip")
    logits = (model.predict(x, verbose=0) + model.predict(x[:, :, ::-1], verbose=0)) / 2
    assert got["accuracy"] == pytest.approx(float((logits.argmax(1) == y).mean()))
    plain = score_saved_model(path, data, y)
    assert got["loss"] != pytest.approx(plain["loss"])


def test_shift_images_moves_content_one_pixel_and_reflects_the_edge():
    x = np.arange(2 * 4 * 5 * 1, dtype="float32").reshape(2, 4, 5, 1)
    down_right = shift_images(tf.constant(x), offset=0).numpy()
    up_left = shift_images(tf.constant(x), offset=2).numpy()
    assert down_right.shape == up_left.shape == x.shape
    assert (down_right[:, 1:, 1:] == x[:, :-1, :-1]).all()
    assert (up_left[:, :-1, :-1] == x[:, 1:, 1:]).all()
    assert (down_right[:, 0, 1:] == x[:, 1, :-1]).all()  # row -1 is the reflection of row 1


def test_flip_translate_tta_weights_six_views_like_numpy(tmp_path):
    model, path, x, y, data = saved_tiny_fastnet(tmp_path, seed=4)
    got = score_saved_model(path, data, y, tta="flip_translate")

    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    views = [(0.25, x), (0.25, x[:, :, ::-1])]
    for offset in (0, 2):
        moved = padded[:, offset : offset + 32, offset : offset + 32]
        views += [(0.125, moved), (0.125, moved[:, :, ::-1])]
    logits = sum(w * model.predict(v, verbose=0).astype("float64") for w, v in views)
    z = logits - logits.max(1, keepdims=True)
    loss = -(z - np.log(np.exp(z).sum(1, keepdims=True)))[np.arange(20), y].mean()
    assert got["loss"] == pytest.approx(loss, rel=1e-4)
    flip = score_saved_model(path, data, y, tta="flip")
    assert got["loss"] != pytest.approx(flip["loss"], rel=1e-4)


def test_fast_config_trains_end_to_end_with_whitening_and_tta(tiny_cifar_archive, tmp_path):
    """configs/fast.yaml as shipped, shrunk: whitening set from the data, TTA test score."""
    config = tiny_fast_config(tiny_cifar_archive, tmp_path, "fast", ["train.batch_size=80"])
    assert config.train.test_tta == "flip" and config.model.name == "fastnet_relu"
    metrics = experiment.start(config, None, argv=["train.py"], verbose=0)
    assert metrics["status"] == "completed" and metrics["test_tta"] == "flip"
    assert json.loads((tmp_path / "fast" / "metrics.json").read_text()) == metrics
    saved = keras.models.load_model(tmp_path / "fast" / "checkpoints" / "best.keras")
    kernel = keras.ops.convert_to_numpy(saved.whiten.kernel)
    assert np.abs(kernel).max() > 0.1  # set by adapt, not the zero initialiser


def test_relu_variant_uses_relu_everywhere_and_round_trips():
    model = build_model("fastnet_relu", width_multiplier=0.25)
    assert model.activation == "relu" and [g.activation for g in model.groups] == ["relu"] * 3
    assert FastNet.from_config(model.get_config()).activation == "relu"
    x = correlated_images(4)
    for name, built in (("relu", model), ("gelu", build_model("fastnet", width_multiplier=0.25))):
        built.adapt(x)
        features = built.groups[0](activate(built.whiten(x), name), training=False)
        smallest = float(keras.ops.min(features))
        # ReLU outputs are >= 0; tanh-GELU dips to about -0.17.
        assert smallest == 0.0 if name == "relu" else -0.2 < smallest < 0.0
    with pytest.raises(ValueError, match="activation must be one of"):
        FastNet(activation="swish")


def tiny_fastnet() -> tuple[FastNet, np.ndarray]:
    """A quarter-width FastNet adapted to 8 images, and the images."""
    model = build_model("fastnet", width_multiplier=0.25)
    images = correlated_images(8)
    model.adapt(images)
    return model, images


def counting_fused_gelu(calls: list):
    """The fused GELU, recording each call's input shape in `calls`."""
    from resnet_tf.models.gelu import fused_gelu

    def counted(x):
        calls.append(x.shape)
        return fused_gelu(x)

    return counted


def test_fused_gelu_matches_keras_gelu_and_its_gradient():
    """Training's XLA-fused GELU (hand-written derivative) against Keras' tanh GELU and autodiff,
    over the range where the curve bends and both tails."""
    from resnet_tf.models.gelu import fused_gelu

    x = tf.constant(np.linspace(-9.0, 9.0, 3601, dtype=np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        fused = fused_gelu(x)
        reference = keras.activations.gelu(x, approximate=True)
    np.testing.assert_allclose(fused, reference, atol=2e-6)
    np.testing.assert_allclose(tape.gradient(fused, x), tape.gradient(reference, x), atol=1e-5)
    # The derivative is not GELU's value: -0.17 at its minimum near x = -0.75, 1.08 near 1.5.
    gradient = tape.gradient(fused, x).numpy()
    assert -0.2 < gradient.min() < -0.1 and 1.05 < gradient.max() < 1.15

    # FastNet uses it in training, each of its 7 activations, and Keras' own in inference (which
    # every export format converts): the training pass equals one with Keras' GELU everywhere.
    model, images = tiny_fastnet()
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fastnet, "fused_gelu", counting_fused_gelu(calls))
        trained = model(images, training=True)
        assert len(calls) == 7
        model(images, training=False)
        assert len(calls) == 7
        patch.setattr(fastnet, "fused_gelu", lambda x: keras.activations.gelu(x, approximate=True))
        np.testing.assert_allclose(model(images, training=True), trained, atol=1e-5)


def test_the_evaluation_stage_traces_the_fused_gelu_and_exports_keep_keras_own():
    """evaluate.py and the test score run the model through traced_inference, which takes the
    fused GELU (faster in TensorFlow) and gives the same logits; a plain inference call, as the
    exporters trace it, still uses Keras' GELU, which the LiteRT and ONNX converters need."""
    from resnet_tf.evaluation.tta import traced_inference

    model, images = tiny_fastnet()
    plain = model(images, training=False)
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fastnet, "fused_gelu", counting_fused_gelu(calls))
        traced = traced_inference(model)(images)
        assert len(calls) == 7  # traced once, every activation fused
        model(images, training=False)
        assert len(calls) == 7  # outside the evaluation stage: Keras' own
    np.testing.assert_allclose(traced, plain, atol=1e-4)
    assert np.abs(plain).max() > 1e-2  # the logits compared are not all near zero


def test_fused_gelu_on_bfloat16_is_rounded_once_from_float32():
    """Mixed bfloat16 training hands the GELU bfloat16 tensors: it keeps their type but computes
    in float32 inside, so value and gradient are the exact ones rounded once to bfloat16 (within
    one bfloat16 step, 2**-7 relative). Computed on bfloat16 values, rounded after every op,
    they were off by up to a fifth (the value) and nine tenths (the gradient)."""
    from resnet_tf.models.gelu import fused_gelu

    x = tf.cast(tf.constant(np.linspace(-6.0, 6.0, 2401, dtype=np.float32)), tf.bfloat16)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = fused_gelu(x)
    gradient = tape.gradient(value, x)
    assert value.dtype == tf.bfloat16 and gradient.dtype == tf.bfloat16

    # The exact ones: Keras' own tanh GELU and its autodiff gradient, in float64.
    exact_x = tf.cast(x, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(exact_x)
        exact_value = keras.activations.gelu(exact_x, approximate=True)
    exact_gradient = tape.gradient(exact_value, exact_x).numpy()
    exact_value = exact_value.numpy()
    for got, exact in ((value, exact_value), (gradient, exact_gradient)):
        got = got.numpy().astype(np.float64)
        shown = np.abs(exact) > 1e-2  # below, a bfloat16 step is no longer relative to 1e-2
        np.testing.assert_array_less(np.abs(got - exact)[shown], 2**-7 * np.abs(exact)[shown])
