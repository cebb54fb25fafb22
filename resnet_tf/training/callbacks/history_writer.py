"""history.csv: one row per completed epoch, with its lr, losses, accuracies and timing."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import keras
from keras import ops

from resnet_tf.runs.history import write_history


class HistoryWriter(keras.callbacks.Callback):
    """Appends the epoch's row to `rows` (shared with the checkpoint and plot callbacks, which
    read the newest row) and rewrites the file. `skip_epoch()` true: the epoch diverged and
    gets no row. `seconds_before`: the training seconds the first epoch had before a resume
    from inside it (a mid-epoch checkpoint), counted in its row."""

    def __init__(
        self,
        path: Path,
        rows: list[dict],
        train_images: int,
        skip_epoch: Callable[[], bool],
        seconds_before: float = 0.0,
    ):
        super().__init__()
        self.path = path
        self.rows = rows
        self.train_images = train_images
        self.skip_epoch = skip_epoch
        self.seconds_before = seconds_before

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter() - self.seconds_before
        self.seconds_before = 0.0
        self.train_end = None

    def seconds_so_far(self) -> float:
        """The epoch's training seconds until now (for a mid-epoch checkpoint)."""
        return time.perf_counter() - self.epoch_start

    def on_test_begin(self, logs=None):
        if self.train_end is None:  # validation starts: the training part of the epoch is over
            self.train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self.skip_epoch():
            return
        logs = logs or {}
        now = time.perf_counter()
        train_seconds = (self.train_end or now) - self.epoch_start
        self.rows.append(
            {
                "epoch": epoch + 1,
                "lr": float(ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                "loss": float(logs["cross_entropy"]),
                "accuracy": float(logs["accuracy"]),
                "val_loss": float(logs.get("val_cross_entropy", math.nan)),
                "val_accuracy": float(logs.get("val_accuracy", math.nan)),
                "epoch_seconds": now - self.epoch_start,
                "images_per_s": self.train_images / max(train_seconds, 1e-9),
            }
        )
        write_history(self.path, self.rows)
