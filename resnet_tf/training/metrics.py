"""The metrics history.csv records, for integer labels and for MixUp/CutMix's mixed one-hot
labels alike (registered, so compiled checkpoints load with plain load_model).

A mixed label counts, for accuracy, as the class with the larger share, and cross-entropy is
taken against the whole mixed vector; validation and test batches carry integer labels and are
scored as always. Keras' sparse metrics would refuse the mixed labels, and its categorical ones
the integer labels, and one compiled model sees both.
"""

from __future__ import annotations

import keras
from keras import ops


def _is_mixed(y_true, y_pred) -> bool:
    return len(y_true.shape) == 2 and y_true.shape[-1] == y_pred.shape[-1] != 1


@keras.saving.register_keras_serializable(package="resnet_tf")
class Accuracy(keras.metrics.SparseCategoricalAccuracy):
    """Top-1 accuracy against the label, or a mixed label's larger share."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        if _is_mixed(y_true, y_pred):
            y_true = ops.argmax(y_true, axis=-1)
        return super().update_state(y_true, y_pred, sample_weight)


@keras.saving.register_keras_serializable(package="resnet_tf")
def cross_entropy(y_true, y_pred):
    """Cross-entropy of the logits against the label (or the mixed label vector)."""
    if _is_mixed(y_true, y_pred):
        return keras.losses.categorical_crossentropy(y_true, y_pred, from_logits=True)
    return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)


@keras.saving.register_keras_serializable(package="resnet_tf")
class CrossEntropy(keras.metrics.MeanMetricWrapper):
    """The mean of `cross_entropy` over the batches seen."""

    def __init__(self, name: str = "cross_entropy", dtype=None):
        super().__init__(cross_entropy, name=name, dtype=dtype)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}
