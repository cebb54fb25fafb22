"""Muon (Jordan et al. 2024) on the conv kernels, Nesterov SGD on every other weight: the
optimizer of the fastest known CIFAR-10 recipe (airbench94_muon; see README "Toward half an
hour").

Muon replaces a kernel's momentum by the nearest semi-orthogonal matrix (a few Newton-Schulz
iterations on the kernel seen as a (kh * kw * in, out) matrix), so that every direction of the
update gets the same step whatever the gradient's scale, and it keeps each kernel at a fixed norm
(sqrt(out)), which behind batch norm fixes the effective step size and replaces weight decay.

`keras.optimizers.Muon` does not fit this recipe: it orthogonalizes only 2-D weights (the conv
kernels would get its AdamW), pairs Muon with AdamW, not SGD, rescales updates by the matrix
shape (Moonlight's rule) and does not normalize the weights.
"""

from __future__ import annotations

import keras
from keras import ops

from resnet_tf.training.optimizers import SGD, is_bn_bias, is_whitening_bias

# The quintic Newton-Schulz coefficients (Jordan's): they push every singular value of a matrix
# scaled to norm <= 1 into roughly [0.5, 1.5] in a few steps, which is orthogonal enough.
NEWTON_SCHULZ_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def is_muon_weight(variable) -> bool:
    """The weights Muon updates: conv kernels (4-D). Dense kernels, among them the classifier,
    stay with SGD, as in airbench94_muon."""
    return len(variable.shape) == 4


def orthogonalize(matrix, steps: int):
    """An approximately semi-orthogonal matrix with `matrix`'s singular vectors: Newton-Schulz
    on matrix / ||matrix||_F, on the wide orientation (fewer rows, cheaper products)."""
    a, b, c = NEWTON_SCHULZ_COEFFICIENTS
    tall = matrix.shape[0] > matrix.shape[1]
    x = ops.transpose(matrix) if tall else matrix
    x = x / (ops.sqrt(ops.sum(ops.square(x))) + 1e-7)
    for _ in range(steps):
        gram = ops.matmul(x, ops.transpose(x))
        x = a * x + ops.matmul(b * gram + c * ops.matmul(gram, gram), x)
    return ops.transpose(x) if tall else x


@keras.saving.register_keras_serializable(package="resnet_tf")
class Muon(SGD):
    """Muon on the conv kernels, our SGD (lr, momentum, Nesterov, bn_bias_lr_multiplier) on the
    rest; the BN shifts' multiplier also applies to the whitening bias (airbench94_muon's bias
    group).

    Each kernel's step is muon_lr * (the schedule's lr / its peak): Muon follows the schedule's
    shape at its own scale. With momentum m and Nesterov, per step: buf = m * buf + g; the
    kernel is rescaled to norm sqrt(out) and moved by -lr * orthogonalize(g + m * buf)."""

    def __init__(
        self,
        muon_lr: float = 0.24,
        muon_momentum: float = 0.6,
        muon_ns_steps: int = 3,
        peak_lr: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.muon_lr = float(muon_lr)
        self.muon_momentum = float(muon_momentum)
        self.muon_ns_steps = int(muon_ns_steps)
        self.peak_lr = float(peak_lr)

    def uses_bias_lr(self, variable) -> bool:
        return is_bn_bias(variable) or is_whitening_bias(variable)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.muon_buffers = [
            self.add_variable_from_reference(v, name="muon_momentum") if is_muon_weight(v) else None
            for v in variables
        ]

    def update_step(self, gradient, variable, learning_rate):
        buffer = self.muon_buffers[self._get_variable_index(variable)]
        if buffer is None:
            super().update_step(gradient, variable, learning_rate)
            return
        gradient = ops.cast(gradient, variable.dtype)
        self.assign(buffer, ops.add(ops.multiply(buffer, self.muon_momentum), gradient))
        direction = buffer
        if self.nesterov:
            direction = ops.add(gradient, ops.multiply(buffer, self.muon_momentum))
        out = variable.shape[-1]
        update = ops.reshape(
            orthogonalize(ops.reshape(direction, (-1, out)), self.muon_ns_steps), variable.shape
        )
        norm = ops.sqrt(ops.sum(ops.square(variable)))
        self.assign(variable, ops.multiply(variable, float(out) ** 0.5 / (norm + 1e-12)))
        lr = ops.cast(learning_rate, variable.dtype) * (self.muon_lr / self.peak_lr)
        self.assign_sub(variable, ops.multiply(update, lr))

    def get_config(self):
        return {
            **super().get_config(),
            "muon_lr": self.muon_lr,
            "muon_momentum": self.muon_momentum,
            "muon_ns_steps": self.muon_ns_steps,
            "peak_lr": self.peak_lr,
        }
