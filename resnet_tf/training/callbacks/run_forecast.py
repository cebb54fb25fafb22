"""Say once, early, how long the whole run will take on this machine.

A 200-epoch ResNet-18 recipe started on a laptop CPU runs for days; its user should learn that
in the first minutes, not from the first epoch's end. The first batches are skipped (they
include tracing and warm-up), the next ones are timed, and the rate is extrapolated to every
batch left; validation is not included.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import keras

WARMUP_BATCHES = 3  # tracing, thread pools and caches warm up here: not timed
TIMED_BATCHES = 10
SLOW_ON_CPU_SECONDS = 2 * 3600  # a forecast above this, without a GPU, points to the CPU recipes


def say_now(text: str) -> None:
    """Print at once (a run's output is often piped to a log), below Keras' progress bar."""
    print(("\n" if sys.stdout.isatty() else "") + text, flush=True)


def describe_duration(seconds: float) -> str:
    """A duration as people say it: '3 d 4 h', '2 h 5 min', '12 min', '40 s'."""
    minutes, hours = seconds / 60, seconds / 3600
    if hours >= 24:
        return f"{int(hours // 24)} d {int(hours % 24)} h"
    if hours >= 1:
        return f"{int(hours)} h {int(minutes % 60)} min"
    if minutes >= 1:
        return f"{round(minutes)} min"
    return f"{round(seconds)} s"


class RunForecast(keras.callbacks.Callback):
    """Times TIMED_BATCHES batches after WARMUP_BATCHES (or, in a shorter epoch, the whole
    first epoch) and says once what the remaining `epochs_left` epochs will take, less the
    `batches_done` of the first one that a resume from inside it skips."""

    def __init__(
        self,
        epochs_left: int,
        batches_per_epoch: int,
        batch_size: int,
        on_gpu: bool,
        say: Callable[[str], None] = say_now,
        clock: Callable[[], float] = time.perf_counter,
        batches_done: int = 0,
    ):
        super().__init__()
        self.epochs_left = epochs_left
        self.batches_per_epoch = batches_per_epoch
        self.batches_done = batches_done
        self.batch_size = batch_size
        self.on_gpu = on_gpu
        self.say = say
        self.clock = clock
        self.said = False
        self.first_epoch = True

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = self.clock()
        self.timed_from = None  # (time, batches done) when timing started

    def on_train_batch_end(self, batch, logs=None):
        # `batch` may advance by train.steps_per_execution at a time.
        if self.said or not self.first_epoch:
            return
        done = batch + 1
        if self.timed_from is None:
            if done >= WARMUP_BATCHES:
                self.timed_from = (self.clock(), done)
        elif done - self.timed_from[1] >= TIMED_BATCHES:
            seconds = (self.clock() - self.timed_from[0]) / (done - self.timed_from[1])
            self._forecast(seconds, done)

    def on_epoch_end(self, epoch, logs=None):
        if not self.said and self.first_epoch:  # an epoch too short to time part of
            batches = self.batches_per_epoch - self.batches_done
            self._forecast((self.clock() - self.epoch_started) / batches, batches)
        self.first_epoch = False

    def _forecast(self, seconds_per_batch: float, batches_timed: int) -> None:
        """`batches_timed`: the batches this session has trained when it speaks."""
        self.said = True
        left = self.epochs_left * self.batches_per_epoch - self.batches_done - batches_timed
        total = seconds_per_batch * left
        rate = self.batch_size / max(seconds_per_batch, 1e-9)
        epoch = seconds_per_batch * self.batches_per_epoch
        device = "GPU" if self.on_gpu else "CPU"
        message = (
            f"forecast: about {describe_duration(total)} of training left "
            f"({describe_duration(epoch)} an epoch at {rate:,.0f} images/s on this {device}; "
            "validation not included)"
        )
        if not self.on_gpu and total > SLOW_ON_CPU_SECONDS:
            message += (
                "\nno GPU found: the recipes made for a CPU are configs/fast.yaml and "
                "configs/fast_full_width.yaml (README, 'A fast recipe'), or stop here "
                "(Ctrl-C) and resume the run on a machine with a GPU"
            )
        self.say(message)
