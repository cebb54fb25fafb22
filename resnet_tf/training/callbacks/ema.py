"""Validate, checkpoint and hand over the exponential moving average of the weights (EMA).

The average itself is Keras': an optimizer made with `use_ema=True` keeps one average per
trainable weight among its own variables, so it is saved inside last.keras with the rest of the
optimizer state and resume needs nothing more. What this callback adds is where the average is
*used*: from validation to the end of each epoch the model holds the averaged weights (so
val_accuracy, best.keras, last.keras and the final model are the average), and during training
the raw ones. Batch-norm moving statistics are not averaged (Keras averages trainable weights
only); the averaged model uses the raw model's, which are themselves slow averages of the batch
statistics.

Keras' own SwapEMAWeights swaps by adding and subtracting, which is not exact in floating
point; here each swap goes through a copy, so resume stays bit-exact. Like SwapEMAWeights, this
reads the optimizer's `_trainable_variables` and `_model_variables_moving_average` (Keras has no
public name for them; tests/training/test_ema.py pins the behaviour).
"""

from __future__ import annotations

import keras
import tensorflow as tf


def swap_average(model: keras.Model) -> None:
    """Exchange the model's trainable weights with the optimizer's averages of them, exactly.
    A checkpoint holds the average in the model and the raw weights in the optimizer: after
    loading one to train on, swap once."""
    optimizer = model.optimizer
    for weight, average in zip(
        optimizer._trainable_variables, optimizer._model_variables_moving_average
    ):
        raw = tf.identity(weight.value)
        weight.assign(average.value)
        average.assign(raw)


class AveragedWeights(keras.callbacks.Callback):
    """Put the optimizer's averaged weights into the model for validation and the epoch's end,
    and the raw weights back for training (which starts with the raw weights in the model).

    After fit() the model holds the average and the optimizer the raw weights, as in
    last.keras, so that a run trained in two fit() calls (a resume from inside an epoch)
    continues from exactly where the first left off."""

    def __init__(self):
        super().__init__()
        self.average_in_model = False
        self.raw: list | None = None  # the raw weights, kept from the last epoch to fit()'s end

    def _swap(self) -> None:
        swap_average(self.model)
        self.average_in_model = not self.average_in_model

    def on_test_begin(self, logs=None):
        if not self.average_in_model:
            self._swap()

    def on_epoch_end(self, epoch, logs=None):
        if not self.average_in_model:  # no validation this epoch
            self._swap()
        if epoch + 1 == self.params.get("epochs") or getattr(self.model, "stop_training", False):
            # fit() ends by writing the optimizer's averages into the model: make them the
            # average too, so that the model it leaves is the averaged one.
            optimizer = self.model.optimizer
            self.raw = [tf.identity(a.value) for a in optimizer._model_variables_moving_average]
            for weight, average in zip(
                optimizer._trainable_variables, optimizer._model_variables_moving_average
            ):
                average.assign(weight.value)

    def on_train_end(self, logs=None):
        if self.raw is not None:  # fit() has put the average into the model: the raw back
            for average, raw in zip(self.model.optimizer._model_variables_moving_average, self.raw):
                average.assign(raw)
            self.raw = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.average_in_model:
            self._swap()
