"""train.ema_decay: Keras' optimizer average of the weights, in the model from validation to the
epoch's end (what is checkpointed and handed over), the raw weights back for training."""

from __future__ import annotations

import keras
import numpy as np

from resnet_tf.training.callbacks import AveragedWeights
from resnet_tf.training.callbacks.ema import swap_average


def test_the_average_is_in_the_model_from_validation_to_the_epochs_end():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5)
    optimizer.build(model.trainable_variables)
    model.optimizer = optimizer
    callback = AveragedWeights()
    callback.set_model(model)
    callback.set_params({"epochs": 2})

    def train(steps: int) -> list[list[np.ndarray]]:
        trajectory = []
        for step in range(steps):
            grads = [np.full(v.shape, 0.1 * (step + 1), "f4") for v in model.trainable_variables]
            optimizer.apply(grads, model.trainable_variables)
            trajectory.append([np.array(v) for v in model.trainable_variables])
        return trajectory

    def weights() -> list[np.ndarray]:
        return [np.array(v) for v in model.trainable_variables]

    callback.on_epoch_begin(0)
    trajectory = train(3)
    expected = trajectory[0]  # Keras' first update copies the weights, then averages at 0.5
    for later in trajectory[1:]:
        expected = [0.5 * e + 0.5 * w for e, w in zip(expected, later)]
    callback.on_test_begin()
    for found, average in zip(weights(), expected):
        np.testing.assert_allclose(found, average, rtol=1e-6)
    callback.on_test_end()
    callback.on_epoch_end(0)
    for found, average in zip(weights(), expected):  # what the checkpoints of epoch 1 save
        np.testing.assert_allclose(found, average, rtol=1e-6)
    callback.on_epoch_begin(1)
    for found, raw in zip(weights(), trajectory[-1]):  # back to the raw weights, exactly
        np.testing.assert_array_equal(found, raw)

    last = train(2)[-1]
    callback.on_epoch_end(1)  # the last epoch, without validation
    averaged = weights()
    assert not np.array_equal(averaged[0], last[0])
    optimizer.finalize_variable_values(model.trainable_variables)  # what fit() does last
    for found, average in zip(weights(), averaged):
        np.testing.assert_array_equal(found, average)


def test_a_checkpoints_model_gets_its_raw_weights_back_exactly():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.SGD(0.1, use_ema=True)
    optimizer.build(model.trainable_variables)
    model.optimizer = optimizer
    raw = [np.array(v) for v in model.trainable_variables]
    # As a checkpoint holds them: the average (all 7 here) in the model, the raw in the optimizer.
    for weight, average, value in zip(
        model.trainable_variables, optimizer._model_variables_moving_average, raw
    ):
        weight.assign(value * 0 + 7.0)
        average.assign(value)
    swap_average(model)
    for found, expected in zip(model.trainable_variables, raw):
        np.testing.assert_array_equal(np.array(found), expected)
    assert all(np.all(np.array(a) == 7.0) for a in optimizer._model_variables_moving_average)
