"""checkpoints/mid_epoch.keras: the training state inside an epoch, saved every
train.checkpoint_every_minutes and when the process is asked to stop (SIGTERM, Ctrl-C), so that
a preempted run loses minutes rather than an epoch.

A save happens only where a resume can continue exactly: after a whole group of accumulated
batches (the gradient accumulators are empty), at a Lookahead step (the weights equal its slow
average, which a resumed run starts again from the weights), not at an epoch's last batch (the
epoch-end checkpoints follow at once) and not after a non-finite loss. The file is a .keras
model saved as last.keras is (with an EMA: the average in the model, the raw weights in the
optimizer, whose step counter says how far the run got) plus one small JSON entry, the epoch's
progress: batches done, training seconds so far and the running metric states, so that the
resumed epoch's history row covers the whole epoch. CheckpointSaver deletes it once the epoch's
last.keras supersedes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import numpy as np
from keras import ops

from resnet_tf.errors import RunInterrupted, TrainingError
from resnet_tf.runs.files import atomic_save
from resnet_tf.training.callbacks.ema import swap_average
from resnet_tf.training.stop_signals import handled_by, tell

# The entry of the .keras zip that holds EpochProgress; Keras ignores entries it does not know.
PROGRESS_ENTRY = "resnet_tf_epoch_progress.json"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclasses.dataclass
class EpochProgress:
    """How far into an epoch a mid-epoch checkpoint is."""

    epoch: int  # the epoch it is inside, 0-based (= completed epochs)
    updates: int  # weight updates of the whole run (the optimizer's iterations)
    batches_done: int  # batches of `epoch` trained
    train_seconds: float  # training time of `epoch` so far
    metrics: dict[str, list | float]  # the running metric states, by variable path


def save_mid_epoch(model: keras.Model, path: Path, progress: EpochProgress, ema: bool) -> None:
    """Write `model` (raw weights in it, as during training) as last.keras would be written,
    with `progress` inside, atomically."""

    def save_to(tmp: Path) -> None:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(PROGRESS_ENTRY, json.dumps(dataclasses.asdict(progress)))

    if ema:  # the checkpoint holds the average in the model, as last.keras does
        swap_average(model)
    try:
        atomic_save(path, save_to)
    finally:
        if ema:
            swap_average(model)


def read_progress(path: Path) -> EpochProgress:
    """The progress entry of a mid-epoch checkpoint."""
    try:
        with zipfile.ZipFile(path) as archive:
            return EpochProgress(**json.loads(archive.read(PROGRESS_ENTRY)))
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as exc:
        if isinstance(exc, zipfile.BadZipFile):
            reason = "not a .keras (zip) file"
        elif isinstance(exc, KeyError):
            reason = f"no {PROGRESS_ENTRY} inside"
        else:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TrainingError(
            f"{path}: cannot read this mid-epoch checkpoint ({reason}); delete it to resume "
            "from checkpoints/last.keras (the last completed epoch)"
        ) from None


class MidEpochCheckpoint(keras.callbacks.Callback):
    """Saves the state inside an epoch when `every_minutes` (0: never) have passed since the
    last save, or a stop signal came (`stop_signal`, set by catch_stop_signals); after a stop
    signal's save it raises RunInterrupted. Goes last among the callbacks, so that the others
    have seen the batch (and the epoch) before it saves or stops.

    `resumed`: the progress a run resumed from, whose epoch's metric states and seconds are
    restored, and whose batches done come before Keras' batch numbers in that epoch.
    """

    def __init__(
        self,
        path: Path,
        every_minutes: float,
        *,
        batches_per_epoch: int,
        accumulation_steps: int,
        lookahead_every: int,
        final_epoch: int,
        ema: bool,
        resumed: EpochProgress | None,
        epoch_seconds: Callable[[], float],
        sound: Callable[[], bool],
        restore_metrics: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__()
        self.path = path
        self.every_seconds = every_minutes * 60.0
        self.batches_per_epoch = batches_per_epoch
        self.accumulation_steps = accumulation_steps
        self.lookahead_every = lookahead_every
        self.final_epoch = final_epoch
        self.ema = ema
        self.resumed = resumed
        self.epoch_seconds = epoch_seconds
        self.sound = sound
        self.restore_metrics = restore_metrics
        self.clock = clock
        self.stop_signal: str | None = None
        self.last_save = clock()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.skipped = 0
        self.saved_metrics = None
        if self.resumed is not None and self.resumed.epoch == epoch:
            self.skipped = self.resumed.batches_done
            if self.restore_metrics:
                self.saved_metrics = self.resumed.metrics

    def on_train_batch_end(self, batch, logs=None):
        if self.saved_metrics is not None:
            self._add_metric_states(self.saved_metrics)
            self.saved_metrics = None
        done = self.skipped + batch + 1  # batches of this epoch trained
        due = self.stop_signal is not None or (
            self.every_seconds > 0 and self.clock() - self.last_save >= self.every_seconds
        )
        if not due or not self._can_save(done):
            return
        self._save(done)
        if self.stop_signal is not None:
            self._stop(self.epoch + 1, done // self.accumulation_steps)

    def on_epoch_end(self, epoch, logs=None):
        self.last_save = self.clock()  # the epoch's checkpoints (which delete this one)
        if self.stop_signal is not None and epoch + 1 < self.final_epoch:
            self._stop(epoch + 2, 0)

    def _stop(self, epoch: int, step: int) -> None:
        """End fit() at once, before any epoch-end work for an unfinished epoch."""
        code = 128 + signal.Signals[self.stop_signal].value
        raise RunInterrupted(self.stop_signal, code, f"at epoch {epoch} step {step}")

    def _can_save(self, done: int) -> bool:
        if done % self.accumulation_steps or done >= self.batches_per_epoch or not self.sound():
            return False
        return not self.lookahead_every or self._updates() % self.lookahead_every == 0

    def _updates(self) -> int:
        return int(ops.convert_to_numpy(self.model.optimizer.iterations))

    def _save(self, done: int) -> None:
        progress = EpochProgress(
            epoch=self.epoch,
            updates=self._updates(),
            batches_done=done,
            train_seconds=self.epoch_seconds(),
            metrics={
                v.path: ops.convert_to_numpy(v).tolist() for v in self.model.metrics_variables
            },
        )
        save_mid_epoch(self.model, self.path, progress, self.ema)
        self.last_save = self.clock()

    def _add_metric_states(self, states: dict) -> None:
        """Add the running metric states saved inside the epoch to those of the first batch
        after the resume, when this model has the same metrics (else the resumed epoch's
        figures cover the batches after the resume). Keras' metrics are running sums and
        counts, so this is the very addition an unbroken run makes: its figures come out the
        same (exactly with train.steps_per_execution 1). Keras builds the metrics in the
        first step, so this cannot happen before it."""
        variables = self.model.metrics_variables
        if sorted(v.path for v in variables) != sorted(states):
            return
        for variable in variables:
            saved = np.asarray(states[variable.path], dtype=variable.dtype)
            variable.assign(saved + ops.convert_to_numpy(variable))


@contextlib.contextmanager
def catch_stop_signals(checkpoint: MidEpochCheckpoint | None) -> Iterator[None]:
    """While training: SIGTERM and Ctrl-C ask `checkpoint` to save and stop at its next
    possible step. A second Ctrl-C stops at once (KeyboardInterrupt, nothing saved). The
    previous handlers come back afterwards; a signal the process ignores stays ignored."""
    if checkpoint is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum, frame):
        checkpoint.stop_signal = signal.Signals(signum).name
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, previous[signal.SIGINT])
            tell("\nCtrl-C: saving at the next step to stop there (Ctrl-C again: stop at once)\n")

    with handled_by(request_stop, STOP_SIGNALS) as previous:
        yield
