"""Muon on the conv kernels, SGD on the rest, and the whitening bias's ramp (fast94.yaml's)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from resnet_tf.config import load_config
from resnet_tf.errors import ConfigError
from resnet_tf.models import build_model
from resnet_tf.training.muon import Muon, orthogonalize
from resnet_tf.training.optimizers import SGD
from resnet_tf.training.task import add_l2_penalty
from tests.helpers import REPO_ROOT


def newton_schulz_reference(g: np.ndarray, steps: int) -> np.ndarray:
    """airbench94_muon's iteration in float64 on a (out, fan_in) matrix, written out plainly."""
    x = g / (np.linalg.norm(g) + 1e-7)
    flip = x.shape[0] > x.shape[1]
    if flip:
        x = x.T
    for _ in range(steps):
        a = x @ x.T
        x = 3.4445 * x + (-4.7750 * a + 2.0315 * a @ a) @ x
    return x.T if flip else x


def test_orthogonalize_keeps_the_singular_vectors_and_evens_out_the_singular_values():
    rng = np.random.default_rng(0)
    # A badly conditioned matrix: singular values from 1e-3 to 10.
    u, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    v, _ = np.linalg.qr(rng.normal(size=(30, 12)))
    matrix = (u * np.geomspace(10, 1e-3, 12)) @ v.T
    result = np.asarray(orthogonalize(keras.ops.convert_to_tensor(matrix, "float32"), 5))
    np.testing.assert_allclose(result, newton_schulz_reference(matrix, 5), atol=2e-5)
    singular = np.linalg.svd(result, compute_uv=False)
    # The strong directions end near 1 (not 10 to 0.1 as before); the weakest two stay small.
    assert singular[:9].min() > 0.5 and singular.max() < 1.5
    # Same singular vectors: result = U diag(s') V^T with the input's U and V.
    np.testing.assert_allclose(u.T @ result @ v, np.diag(np.diag(u.T @ result @ v)), atol=1e-4)
    # Tall matrices are done transposed, so the result is the transpose's.
    tall = np.asarray(orthogonalize(keras.ops.convert_to_tensor(matrix.T, "float32"), 5))
    np.testing.assert_allclose(tall, result.T, atol=1e-5)


def test_muon_step_on_a_kernel_matches_airbench_and_other_weights_get_sgd():
    rng = np.random.default_rng(1)
    kernel = keras.Variable(rng.normal(size=(3, 3, 4, 6)).astype("float32"), name="kernel")
    beta = keras.Variable(np.ones(6, "float32"), name="beta")
    dense = keras.Variable(np.ones((6, 2), "float32"), name="kernel")
    muon = Muon(
        learning_rate=keras.optimizers.schedules.PolynomialDecay(2.0, 10, 0.0),  # peak 2
        peak_lr=2.0,
        muon_lr=0.3,
        muon_momentum=0.6,
        muon_ns_steps=3,
        momentum=0.85,
        nesterov=True,
        bn_bias_lr_multiplier=8.0,
    )
    sgd = SGD(
        learning_rate=keras.optimizers.schedules.PolynomialDecay(2.0, 10, 0.0),
        momentum=0.85,
        nesterov=True,
        bn_bias_lr_multiplier=8.0,
    )
    twins = [keras.Variable(beta.numpy(), name="beta"), keras.Variable(dense.numpy())]
    expected = kernel.numpy().astype("float64")
    buffer = np.zeros_like(expected)
    for step in range(3):
        grads = [rng.normal(size=v.shape).astype("float32") for v in (kernel, beta, dense)]
        muon.apply(grads, [kernel, beta, dense])
        sgd.apply(grads[1:], twins)
        # The reference, in airbench's (out, in, kh, kw) layout: PyTorch's view of the kernel.
        g = grads[0].astype("float64")
        buffer = 0.6 * buffer + g
        direction = (g + 0.6 * buffer).transpose(3, 2, 0, 1)
        weight = expected.transpose(3, 2, 0, 1)
        weight = weight * np.sqrt(6) / np.linalg.norm(weight)
        update = newton_schulz_reference(direction.reshape(6, -1), 3).reshape(direction.shape)
        lr = 0.3 * (1 - step / 10)  # muon_lr times the schedule's fraction of its peak
        expected = (weight - lr * update).transpose(2, 3, 1, 0)
        np.testing.assert_allclose(kernel.numpy(), expected, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(beta.numpy(), twins[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(dense.numpy(), twins[1].numpy(), rtol=1e-6)
    config = Muon.from_config(muon.get_config()).get_config()
    assert (config["muon_lr"], config["muon_momentum"], config["muon_ns_steps"]) == (0.3, 0.6, 3)


def test_whitening_bias_ramps_down_then_stays_frozen_and_takes_the_bias_lr():
    model = build_model("fastnet_relu", width_multiplier=0.25)
    bias = next(v for v in model.trainable_variables if v.path.endswith("whiten/bias"))
    for optimizer, multiplier in ((SGD, 1.0), (Muon, 4.0)):
        bias.assign(np.zeros(bias.shape))
        opt = optimizer(
            learning_rate=0.5, momentum=0.0, bn_bias_lr_multiplier=4.0, whitening_bias_steps=4
        )
        moved = []
        for _ in range(6):
            before = bias.numpy().copy()
            opt.apply([np.ones(bias.shape, "float32")], [bias])
            moved.append(float(before[0] - bias.numpy()[0]))
        # lr 0.5 (x4 with Muon: the bias group) times 1, 3/4, 1/2, 1/4, then frozen.
        expected = [0.5 * multiplier * f for f in (1, 0.75, 0.5, 0.25, 0, 0)]
        np.testing.assert_allclose(moved, expected, rtol=1e-6, atol=1e-7)


def test_muon_kernels_get_no_weight_decay_and_the_bias_group_a_scaled_one():
    model = build_model("fastnet_relu", width_multiplier=0.25)
    add_l2_penalty(model, 0.01, Muon(bn_bias_lr_multiplier=64.0))
    for v in model.trainable_variables:
        if len(v.shape) == 4:
            assert v.regularizer is None, v.path
        elif v.path.endswith(("beta", "whiten/bias")):
            assert v.regularizer.l2 == pytest.approx(0.005 / 64), v.path
        else:
            assert v.path.endswith("classifier/kernel") and v.regularizer.l2 == 0.005


def test_fast94_config_is_the_muon_recipe():
    config = load_config(REPO_ROOT / "configs" / "fast94.yaml")
    train = config.train
    assert (train.optimizer.name, train.epochs, train.batch_size) == ("muon", 8, 1536)
    steps_per_epoch = 50000 // train.batch_size
    assert round(train.whitening_bias_epochs * steps_per_epoch) == 7  # the record's 7 steps
    assert train.test_tta == "flip_translate" and train.test_tta_fraction == 0.25
    jitter = config.data.augment.normalized_jitter
    assert 0 < jitter.shift < 0.2 and 0 < jitter.scale < 0.2
    assert config.runtime.mixed_precision == "auto"  # bfloat16 where it is the faster


def test_muon_under_mixed_bfloat16_keeps_float32_weights_and_moves_every_kernel():
    """fast94.yaml's precision: the convs compute in bfloat16, Muon updates float32 kernels."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model("fastnet", width_multiplier=0.25)
        model.compile(
            optimizer=Muon(learning_rate=0.1, muon_lr=0.2, muon_ns_steps=3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        rng = np.random.default_rng(0)
        x = rng.normal(size=(8, 32, 32, 3)).astype("float32")
        y = rng.integers(0, 10, 8)
        model(x[:1])
        kernels = [v for v in model.trainable_variables if len(v.shape) == 4]
        before = [v.numpy().copy() for v in kernels]
        loss = float(model.train_on_batch(x, y))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.compute_dtype == "bfloat16" and np.isfinite(loss)
    for v, old in zip(kernels, before, strict=True):
        assert v.dtype == "float32" and np.isfinite(v.numpy()).all(), v.path
        assert not np.allclose(v.numpy(), old), v.path


@pytest.mark.parametrize(
    "sets, words",
    [
        (["train.optimizer.muon_lr=0.1"], "train.optimizer.muon_lr: only the muon optimizer"),
        (["train.whitening_bias_epochs=2"], "only the fast nets"),
        (
            ["model.name=fastnet", "train.optimizer.name=adam", "train.whitening_bias_epochs=2"],
            "only sgd and muon can ramp",
        ),
        (
            ["train.optimizer.name=adamw", "train.optimizer.bn_bias_lr_multiplier=2"],
            "only sgd and muon have it",
        ),
    ],
)
def test_muon_and_whitening_keys_are_refused_where_they_would_do_nothing(sets, words):
    with pytest.raises(ConfigError, match=words):
        load_config(REPO_ROOT / "configs" / "quick.yaml", sets)


def test_a_tta_fraction_needs_a_tta():
    with pytest.raises(ConfigError, match="train.test_tta_fraction: .* but train.test_tta"):
        load_config(REPO_ROOT / "configs" / "quick.yaml", ["train.test_tta_fraction=0.2"])
