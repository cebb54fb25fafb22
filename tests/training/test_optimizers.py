"""The fast recipe's extras: the BN-shift lr multiplier, Lookahead, identity init, kernel init."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from resnet_tf.config import load_config
from resnet_tf.errors import ConfigError
from resnet_tf.models import build_model
from resnet_tf.models.fastnet import FastNet
from resnet_tf.training.callbacks import Lookahead
from resnet_tf.training.optimizers import SGD
from resnet_tf.training.task import add_l2_penalty


def test_sgd_gives_bn_shifts_the_multiplied_lr_and_nothing_else():
    beta = keras.Variable(np.ones(3, "float32"), name="beta")
    kernel = keras.Variable(np.ones(3, "float32"), name="kernel")
    ours = SGD(learning_rate=0.1, momentum=0.9, nesterov=True, bn_bias_lr_multiplier=64.0)
    plain = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    fast = keras.optimizers.SGD(learning_rate=6.4, momentum=0.9, nesterov=True)
    twins = [keras.Variable(np.ones(3, "float32")) for _ in range(2)]
    grads = [np.array([0.5, -1.0, 2.0], "float32"), np.array([1.0, 0.0, -0.5], "float32")]
    for g in grads:  # two steps, so the momentum takes part
        ours.apply([g, g], [beta, kernel])
        fast.apply([g], [twins[0]])
        plain.apply([g], [twins[1]])
    np.testing.assert_allclose(beta.numpy(), twins[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(kernel.numpy(), twins[1].numpy(), rtol=1e-6)
    assert SGD.from_config(ours.get_config()).bn_bias_lr_multiplier == 64.0


def test_l2_penalty_of_bn_shifts_shrinks_with_their_lr_multiplier():
    """So that lr * penalty gradient, the decay per step, is the same for every weight."""
    model = build_model("fastnet_relu", width_multiplier=0.25)
    add_l2_penalty(model, 0.01, SGD(bn_bias_lr_multiplier=64.0))
    factors = {v.path: v.regularizer.l2 for v in model.trainable_variables}
    betas = [p for p in factors if p.endswith("/beta")]
    assert len(betas) == 6  # two shift-only BNs per group
    for path, factor in factors.items():
        assert factor == pytest.approx(0.005 / 64 if path in betas else 0.005)


def test_lookahead_pulls_the_weights_to_the_slow_average_on_its_steps():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.optimizer.build(model.trainable_variables)
    lookahead = Lookahead(every=5, total_steps=10, steps_per_epoch=4, max_decay=0.8)
    lookahead.set_model(model)
    lookahead.on_train_begin()
    lookahead.on_train_batch_begin(0)  # the slow weights start from the first step's
    kernel = model.weights[0]
    start = kernel.numpy().copy()

    def step_to(step: int, moved: np.ndarray) -> np.ndarray:
        kernel.assign(moved)
        model.optimizer.iterations.assign(step)
        lookahead.on_train_batch_end(0)
        return kernel.numpy()

    np.testing.assert_array_equal(step_to(3, start + 1.0), start + 1.0)  # not its step
    decay = 0.8 * 0.5**3
    assert lookahead.decay(5) == pytest.approx(decay)
    slow = decay * start + (1 - decay) * (start + 1.0)
    np.testing.assert_allclose(step_to(5, start + 1.0), slow, rtol=1e-6)
    # The last step of an epoch (8 = 2 x 4) updates too, so checkpoints hold the average.
    decay = 0.8 * 0.8**3
    np.testing.assert_allclose(
        step_to(8, slow + 2.0), decay * slow + (1 - decay) * (slow + 2.0), rtol=1e-6
    )


def test_identity_init_makes_dirac_filters_and_keeps_the_rest_random():
    model = build_model("fastnet_relu", width_multiplier=0.25, identity_init=True)
    conv = model.groups[0].conv1  # 24 whitened channels in, 16 filters out
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    n = min(kernel.shape[2], kernel.shape[3])
    dirac = np.zeros((3, 3, kernel.shape[2], n), "float32")
    dirac[1, 1, np.arange(n), np.arange(n)] = 1.0
    np.testing.assert_array_equal(kernel[..., :n], dirac)
    wider = keras.ops.convert_to_numpy(model.groups[1].conv1.kernel)  # 16 in, 32 out
    assert np.abs(wider[..., 16:]).min() > 0  # the filters past the identity stay random
    assert FastNet.from_config(model.get_config()).identity_init is True
    with pytest.raises(ConfigError, match="identity_init"):
        build_model("resnet20", identity_init=True)


def test_fan_in_uniform_init_draws_within_pytorchs_bound_and_defaults_stay_he():
    small = build_model("fastnet", width_multiplier=0.5, kernel_init="fan_in_uniform")
    default = build_model("fastnet", width_multiplier=0.5)
    for layer in ("conv1", "conv2"):
        kernel = keras.ops.convert_to_numpy(getattr(small.groups[1], layer).kernel)
        bound = 1 / np.sqrt(np.prod(kernel.shape[:3]))  # 1/sqrt(fan_in)
        assert np.abs(kernel).max() <= bound * (1 + 1e-6)  # float32 rounding at the edge
        assert kernel.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)  # uniform's std
        he = keras.ops.convert_to_numpy(getattr(default.groups[1], layer).kernel)
        assert he.std() == pytest.approx(np.sqrt(2 / (9 * kernel.shape[3])), rel=0.05)
    head = keras.ops.convert_to_numpy(small.classifier.kernel)  # 128 in, 10 out
    assert np.abs(head).max() <= 1.000001 / np.sqrt(128) < np.abs(default.classifier.kernel).max()
    assert FastNet.from_config(small.get_config()).groups[0].kernel_init == "fan_in_uniform"
    with pytest.raises(ConfigError, match="kernel_init"):
        build_model("resnet20", kernel_init="fan_in_uniform")
    with pytest.raises(ConfigError, match="kernel_init"):
        build_model("fastnet", kernel_init="xavier")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model.name=resnet20", "model.identity_init=true"], "model.identity_init: only"),
        (["model.name=resnet20", "model.kernel_init=fan_in_uniform"], "model.kernel_init: only"),
        (
            ["train.optimizer.name=adam", "train.optimizer.bn_bias_lr_multiplier=64"],
            "train.optimizer.bn_bias_lr_multiplier: only sgd",
        ),
        (
            ["train.lookahead_every=5", "train.steps_per_execution=4"],
            "train.lookahead_every: .*steps_per_execution 1, found 4",
        ),
    ],
)
def test_config_rejects_the_extras_where_they_cannot_work(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)
