"""The training loss (registered, so compiled checkpoints load with plain load_model)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="resnet_tf")
class SparseCrossEntropy(keras.losses.Loss):
    """Cross-entropy on logits with integer labels and optional label smoothing (Keras' sparse
    loss has no smoothing, and one-hot labels would change the pipeline's output). MixUp and
    CutMix batches carry mixed one-hot labels instead: those are taken as they are, smoothed
    alike, so the loss is the mix of the two labels' losses."""

    def __init__(
        self,
        num_classes: int = 10,
        label_smoothing: float = 0.0,
        name: str = "sparse_cross_entropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        if len(y_true.shape) == 2 and y_true.shape[-1] == self.num_classes != 1:  # mixed
            return keras.losses.categorical_crossentropy(
                y_true, y_pred, from_logits=True, label_smoothing=self.label_smoothing
            )
        if self.label_smoothing == 0:
            return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        one_hot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), self.num_classes)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=True, label_smoothing=self.label_smoothing
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "label_smoothing": self.label_smoothing,
        }
