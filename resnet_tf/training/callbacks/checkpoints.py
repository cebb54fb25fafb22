"""checkpoints/best.keras and checkpoints/last.keras after each recorded epoch.

Written after history.csv and best before last, so that a crash at any point leaves files that
--resume can reconcile (the epoch comes from last.keras; rows past it are dropped). Then the
epoch's mid-epoch checkpoint goes: last.keras is further on (resume would ignore it anyway).
"""

from __future__ import annotations

import math

import keras

from resnet_tf.runs.files import atomic_save
from resnet_tf.runs.run_dir import RunPaths


class CheckpointSaver(keras.callbacks.Callback):
    """Saves best.keras when the epoch's validation accuracy beats every earlier one (every
    epoch without a validation split: "best" can only mean "latest"), then last.keras."""

    def __init__(self, paths: RunPaths, rows: list[dict], has_validation: bool):
        super().__init__()
        self.paths = paths
        self.rows = rows
        self.has_validation = has_validation
        self.best = max(
            (r["val_accuracy"] for r in rows if math.isfinite(r["val_accuracy"])), default=-math.inf
        )
        # The epoch last.keras holds: what a run stopped by a failed write resumes after.
        self.saved_epoch = rows[-1]["epoch"] if rows else 0

    def on_epoch_end(self, epoch, logs=None):
        if not self.rows or self.rows[-1]["epoch"] != epoch + 1:
            return  # the epoch was not recorded (it diverged)
        score = self.rows[-1]["val_accuracy"]
        if not self.has_validation or score > self.best:
            self.best = score
            atomic_save(self.paths.best, self.model.save)
        atomic_save(self.paths.last, self.model.save)
        self.saved_epoch = epoch + 1
        self.paths.mid_epoch.unlink(missing_ok=True)  # last.keras is further on
