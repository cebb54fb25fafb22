"""SGD with a larger learning rate for the batch-norm shifts (beta), which short, high-lr runs
gain from (see README "A fast recipe"). The shifts are few, set the thresholds of every
activation, and have no scale invariance to hide a too-small step behind; airbench trains them
64x faster than the rest.
"""

from __future__ import annotations

import keras
from keras import ops


def is_bn_bias(variable) -> bool:
    """The shift (beta) of a batch-norm layer, by Keras' variable naming."""
    return variable.name == "beta"


@keras.saving.register_keras_serializable(package="resnet_tf")
class SGD(keras.optimizers.SGD):
    """keras.optimizers.SGD, with the learning rate of batch-norm shifts times
    `bn_bias_lr_multiplier` (momentum is linear, so this is exactly a separate lr)."""

    def __init__(self, bn_bias_lr_multiplier: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.bn_bias_lr_multiplier = float(bn_bias_lr_multiplier)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._lr_multipliers = [
            self.bn_bias_lr_multiplier if is_bn_bias(v) else 1.0 for v in variables
        ]

    def update_step(self, gradient, variable, learning_rate):
        multiplier = self._lr_multipliers[self._get_variable_index(variable)]
        if multiplier != 1.0:
            learning_rate = ops.multiply(learning_rate, multiplier)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "bn_bias_lr_multiplier": self.bn_bias_lr_multiplier}
