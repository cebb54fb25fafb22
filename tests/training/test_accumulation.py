"""Gradient accumulation (train.accumulation_steps): N batches of B update the weights as one
batch of N x B would, and everything that counts steps counts weight updates."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from resnet_tf.config import TrainConfig
from resnet_tf.config.schema import OptimizerConfig, ScheduleConfig
from resnet_tf.training.callbacks import Lookahead
from resnet_tf.training.losses import SparseCrossEntropy
from resnet_tf.training.schedules import make_schedule
from resnet_tf.training.task import add_l2_penalty, make_optimizer


def no_bn_model() -> keras.Model:
    """A small conv net without batch norm (whose statistics would differ per micro-batch)."""
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(5),
        ]
    )


def trained(optimizer_name: str, accumulation_steps: int, batch_size: int, x, y) -> list:
    train = TrainConfig(
        batch_size=batch_size,
        accumulation_steps=accumulation_steps,
        optimizer=OptimizerConfig(name=optimizer_name, lr=0.05, weight_decay=5e-4),
        schedule=ScheduleConfig(name="linear", warmup_epochs=0.0),
        epochs=1,
    )
    model = no_bn_model()
    if optimizer_name != "adamw":
        add_l2_penalty(model, train.optimizer.weight_decay)
    model.compile(
        optimizer=make_optimizer(train, make_schedule(train, 3), 3),  # 3 updates in the run
        loss=SparseCrossEntropy(num_classes=5, label_smoothing=0.1),
    )
    for start in range(0, len(x), batch_size):
        model.train_on_batch(x[start : start + batch_size], y[start : start + batch_size])
    assert int(model.optimizer.iterations) == 3  # weight updates, not batches
    return model.get_weights()


@pytest.mark.parametrize("optimizer_name", ["sgd", "adam", "adamw"])
def test_four_batches_accumulated_equal_one_batch_four_times_larger(optimizer_name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3 * 32, 8, 8, 3)).astype("f4")
    y = rng.integers(0, 5, 3 * 32)
    whole = trained(optimizer_name, 1, 32, x, y)
    accumulated = trained(optimizer_name, 4, 8, x, y)
    for a, b in zip(whole, accumulated, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    assert not np.allclose(whole[0], no_bn_model().get_weights()[0])  # it did train


def test_lookahead_acts_on_weight_updates_only():
    class Recording(Lookahead):
        def decay(self, step):
            acted.append(step)
            return super().decay(step)

    acted: list[int] = []
    model = no_bn_model()
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, gradient_accumulation_steps=3),
        loss=SparseCrossEntropy(num_classes=5),
    )
    lookahead = Recording(every=2, total_steps=8, steps_per_epoch=4, max_decay=0.9)
    lookahead.set_model(model)
    x, y = np.zeros((6, 8, 8, 3), "f4"), np.zeros(6, "i4")
    lookahead.on_train_begin()
    for batch in range(3 * 6):  # 6 updates of 3 batches each
        lookahead.on_train_batch_begin(batch)
        model.train_on_batch(x, y)
        lookahead.on_train_batch_end(batch)
    assert acted == [2, 4, 6]  # every 2 updates and at the epoch's end (4), once each
