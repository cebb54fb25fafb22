"""Lookahead: every few steps, the weights are replaced by a slow moving average of themselves,
whose decay grows through the run (Zhang et al. 2019, with airbench's schedule).

Late in training this averages out the SGD noise, much as an EMA of weights does, but the model
always holds the averaged weights, so validation, checkpoints and resume need nothing special.
"""

from __future__ import annotations

import keras
from keras import ops


class Lookahead(keras.callbacks.Callback):
    """Every `every` steps, and at the last step of each epoch: slow = decay * slow +
    (1 - decay) * weights, then weights = slow, for all float weights (BN statistics too).
    Steps are weight updates (the optimizer's iterations): with gradient accumulation, the
    batches between two updates change no weight, and nothing happens after them.

    decay = max_decay * (step / total_steps) ** 3, so the average only matters late in the run.
    Because the weights equal the average at every epoch end, the average needs no saving: a
    resumed run starts it again from the checkpoint's weights, as an unbroken run would have it.
    """

    def __init__(self, every: int, total_steps: int, steps_per_epoch: int, max_decay: float):
        super().__init__()
        self.every = int(every)
        self.total_steps = int(total_steps)
        self.steps_per_epoch = int(steps_per_epoch)
        self.max_decay = float(max_decay)

    def on_train_begin(self, logs=None):
        self.last_step = self._step()
        self.pairs = None

    def on_train_batch_begin(self, batch, logs=None):
        # The average starts from the weights the first step trains: after every callback's
        # epoch start (with an EMA, a second fit() begins with the average in the model).
        if self.pairs is None:
            self.pairs = [
                (
                    w,
                    keras.Variable(
                        ops.convert_to_tensor(w), trainable=False, name=f"slow_{w.name}"
                    ),
                )
                for w in self.model.weights
                if "float" in str(w.dtype)
            ]

    def decay(self, step: int) -> float:
        return self.max_decay * (min(step, self.total_steps) / self.total_steps) ** 3

    def _step(self) -> int:
        return int(ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        if step == self.last_step:  # a batch whose gradient was only accumulated
            return
        self.last_step = step
        if step % self.every and step % self.steps_per_epoch:
            return
        decay = self.decay(step)
        for weight, slow in self.pairs:
            slow.assign(slow * decay + weight * (1.0 - decay))
            weight.assign(slow)
