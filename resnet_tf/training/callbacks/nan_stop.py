"""Stop at the first non-finite loss, before that epoch writes anything to the run folder."""

from __future__ import annotations

import math

import keras


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Checks the loss after every step and at the epoch's end; `diverged_at` is the 1-based
    epoch in which it became NaN/inf (None while training is sound). It goes first among the
    run folder's callbacks, which then leave that epoch unrecorded."""

    def __init__(self, completed_epochs: int):
        super().__init__()
        self.completed_epochs = completed_epochs
        self.diverged_at: int | None = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._stop(self.completed_epochs + 1)

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged_at is not None or not math.isfinite(
            float((logs or {}).get("loss", math.nan))
        ):
            self._stop(epoch + 1)
        else:
            self.completed_epochs = epoch + 1

    def _stop(self, epoch: int) -> None:
        self.diverged_at = epoch
        self.model.stop_training = True
