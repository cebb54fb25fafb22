"""plots/accuracy_loss.png, redrawn after each recorded epoch so a run can be watched."""

from __future__ import annotations

from pathlib import Path

import keras

from resnet_tf.runs.plots import plot_accuracy_loss


class LivePlot(keras.callbacks.Callback):
    def __init__(self, path: Path, rows: list[dict], title: str):
        super().__init__()
        self.path = path
        self.rows = rows
        self.title = title

    def on_epoch_end(self, epoch, logs=None):
        if self.rows and self.rows[-1]["epoch"] == epoch + 1:
            plot_accuracy_loss(self.rows, self.path, self.title)
