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


def is_whitening_bias(variable) -> bool:
    """The trained bias of FastNet's patch-whitening stem (resnet_tf/models/patch_whitening.py)."""
    return variable.path.endswith("whiten/bias")


@keras.saving.register_keras_serializable(package="resnet_tf")
class SGD(keras.optimizers.SGD):
    """keras.optimizers.SGD, with the learning rate of batch-norm shifts times
    `bn_bias_lr_multiplier` (momentum is linear, so this is exactly a separate lr).

    With `whitening_bias_steps` > 0 the whitening bias's lr is also ramped down linearly to zero
    over that many weight updates, after which the bias stays frozen (airbench: the first layer
    settles early, and a moving first layer would keep disturbing all the others)."""

    def __init__(self, bn_bias_lr_multiplier: float = 1.0, whitening_bias_steps: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.bn_bias_lr_multiplier = float(bn_bias_lr_multiplier)
        self.whitening_bias_steps = int(whitening_bias_steps)

    def uses_bias_lr(self, variable) -> bool:
        """Whether `bn_bias_lr_multiplier` applies to this weight."""
        return is_bn_bias(variable)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._lr_multipliers = [
            self.bn_bias_lr_multiplier if self.uses_bias_lr(v) else 1.0 for v in variables
        ]
        self._ramped = [self.whitening_bias_steps > 0 and is_whitening_bias(v) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        multiplier = self._lr_multipliers[index]
        if multiplier != 1.0:
            learning_rate = ops.multiply(learning_rate, multiplier)
        if self._ramped[index]:
            learning_rate = ops.multiply(learning_rate, self.whitening_bias_ramp())
        super().update_step(gradient, variable, learning_rate)

    def whitening_bias_ramp(self):
        """1 at the first weight update, falling linearly to 0 at `whitening_bias_steps`."""
        # `iterations` counts weight updates (Keras divides out gradient accumulation).
        done = ops.cast(self.iterations, "float32") / float(self.whitening_bias_steps)
        return ops.maximum(0.0, 1.0 - done)

    def get_config(self):
        return {
            **super().get_config(),
            "bn_bias_lr_multiplier": self.bn_bias_lr_multiplier,
            "whitening_bias_steps": self.whitening_bias_steps,
        }
