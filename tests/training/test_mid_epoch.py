"""Checkpoints inside an epoch (train.checkpoint_every_minutes), exact resume from them, and
what SIGTERM and Ctrl-C do to a training run (save, stop, exit 143 or 130)."""

from __future__ import annotations

import json
import signal
import subprocess

import keras
import numpy as np
import pytest

import train as train_cli
from resnet_tf import data as data_lib
from resnet_tf import experiment
from resnet_tf.config import load_config
from resnet_tf.errors import ConfigError, TrainingError
from resnet_tf.experiment import run as experiment_run
from resnet_tf.runs.history import read_history, write_history
from resnet_tf.runs.run_dir import create_run_dir
from resnet_tf.training.callbacks.mid_epoch import EpochProgress, read_progress, save_mid_epoch
from resnet_tf.training.loop import resume_state
from tests.helpers import REPO_ROOT
from tests.helpers.tiny_runs import QUICK_MODEL, tiny_fast_config
from tests.helpers.tiny_runs import tiny_run_args as tiny_args

EVERY_STEP = "train.checkpoint_every_minutes=0.000001"  # a save at every step that allows one


class SimulatedKill(Exception):
    """What kill -9 leaves: training stops between two steps, nothing more is written."""


class AtBatch(keras.callbacks.Callback):
    """Calls `act()` when batch `batch` of epoch `epoch` (both 0-based) begins or ends."""

    def __init__(self, epoch: int, batch: int, act, at_end: bool = False):
        super().__init__()
        self.at, self.act, self.at_end = (epoch, batch), act, at_end

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if not self.at_end and (self.epoch, batch) == self.at:
            self.act()

    def on_train_batch_end(self, batch, logs=None):
        if self.at_end and (self.epoch, batch) == self.at:
            self.act()


def run_in_process(args, capsys) -> subprocess.CompletedProcess:
    code = train_cli.main(args)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, captured.out, captured.err)


def with_callbacks(monkeypatch, *callbacks) -> None:
    """Make the runs that train.main() starts or resumes here get `callbacks` too."""
    fit = experiment_run.training.fit

    def fit_with_callbacks(*args, **kwargs):
        return fit(*args, **{**kwargs, "callbacks": [*(kwargs["callbacks"] or []), *callbacks]})

    monkeypatch.setattr(experiment_run.training, "fit", fit_with_callbacks)


def last_weights(run) -> list[np.ndarray]:
    model = keras.models.load_model(run / "checkpoints" / "last.keras")
    return [np.asarray(w) for w in model.get_weights()]


def assert_same_run(unbroken, resumed) -> None:
    """The same weights, bit for bit, and the same history (but for the timings)."""
    for a, b in zip(last_weights(unbroken), last_weights(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    figures = ("epoch", "lr", "loss", "accuracy", "val_loss", "val_accuracy")
    history = [read_history(run / "history.csv") for run in (unbroken, resumed)]
    assert [[r[k] for k in figures] for r in history[0]] == [
        [r[k] for k in figures] for r in history[1]
    ]


def test_the_interval_is_a_finite_number_of_minutes_at_least_0():
    config = REPO_ROOT / "configs" / "quick.yaml"
    assert load_config(config).train.checkpoint_every_minutes == 10.0
    assert (
        load_config(config, ["train.checkpoint_every_minutes=0"]).train.checkpoint_every_minutes
        == 0
    )
    for bad in ("-1", "nan", "inf"):
        with pytest.raises(ConfigError, match="every_minutes: expected a (value|finite)"):
            load_config(config, [f"train.checkpoint_every_minutes={bad}"])


def test_skipped_batches_are_the_ones_an_unbroken_epoch_starts_with():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 40)
    kwargs = dict(batch_size=8, seed=3, start_epoch=1, cutout=4)
    whole = list(data_lib.make_train_dataset(x, y, **kwargs).take(7))
    rest = list(data_lib.make_train_dataset(x, y, skip_batches=3, **kwargs).take(4))
    for (a_images, a_labels), (b_images, b_labels) in zip(whole[3:], rest, strict=True):
        np.testing.assert_array_equal(a_images, b_images)
        np.testing.assert_array_equal(a_labels, b_labels)


def test_resume_starts_from_the_checkpoint_further_on(tmp_path):
    """last.keras or mid_epoch.keras, whichever holds more weight updates: a mid-epoch file
    that an epoch's end has overtaken (a crash before it was deleted) is ignored; one that
    cannot be read is one line that names it."""
    paths = create_run_dir(tmp_path, "run", explicit_name=True)

    def compiled() -> keras.Model:
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        return model

    def save(updates: int, mid_epoch: bool) -> None:
        model = compiled()
        model.optimizer.build(model.trainable_variables)
        model.optimizer.iterations.assign(updates)
        if mid_epoch:  # inside epoch updates // 4 + 1, 2 updates (of one batch each) in
            progress = EpochProgress(updates // 4, updates, 2, 1.0, {})
            save_mid_epoch(model, paths.mid_epoch, progress, ema=False)
        else:
            model.save(paths.last)

    row = {"lr": 0.1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.5}
    write_history(paths.history, [{"epoch": e, **row} for e in (1, 2)])
    save(6, mid_epoch=True)
    save(8, mid_epoch=False)  # epoch 2's end, after the mid-epoch save
    point = resume_state(compiled(), paths, updates_per_epoch=4)
    assert (point.epoch, point.inside) == (2, None)

    save(10, mid_epoch=True)
    point = resume_state(compiled(), paths, updates_per_epoch=4)
    assert (point.epoch, point.inside.updates, point.inside.batches_done) == (2, 10, 2)
    assert [r["epoch"] for r in point.rows] == [1, 2]

    paths.mid_epoch.write_bytes(b"not a checkpoint")
    with pytest.raises(
        TrainingError,
        match=r"mid_epoch.keras: cannot read .*\(not a .keras \(zip\) file\).*/last.keras",
    ):
        resume_state(compiled(), paths, updates_per_epoch=4)


def test_kill_inside_an_epoch_then_resume_equals_an_unbroken_run(tiny_cifar_archive, tmp_path):
    """kill -9 inside epoch 2 of 3 (simulated: training stops between two batches), then
    --resume: the run continues from the mid-epoch checkpoint, skips the batches it holds
    and ends bit-identical to the unbroken run, with the same history figures (the
    resumed epoch's training loss and accuracy too). With gradient accumulation over 2
    batches (a save only after a whole group), Lookahead every 3 steps (a save only at one of
    its steps) and the weight average, which the checkpoint holds as last.keras does and which
    survives the resumed run's two fit() calls (the rest of epoch 2, then epoch 3)."""
    extras = [
        "runtime.deterministic=true",
        "train.epochs=3",
        "train.accumulation_steps=2",  # 2 weight updates of 2 batches of 32 an epoch
        "train.batch_size=32",
        "train.lookahead_every=3",
        "train.ema_decay=0.9",
        "train.test_tta=none",
    ]

    def start(name, more=(), callbacks=()):
        config = tiny_fast_config(tiny_cifar_archive, tmp_path, name, [*extras, *more])
        return experiment.start(config, None, argv=[], verbose=0, callbacks=list(callbacks))

    def kill():
        raise SimulatedKill

    assert start("whole")["status"] == "completed"
    broken = tmp_path / "broken"
    with pytest.raises(SimulatedKill):  # before the last batch of epoch 2
        start("broken", [EVERY_STEP], [AtBatch(1, 3, kill)])
    progress = read_progress(broken / "checkpoints" / "mid_epoch.keras")
    # Update 3, Lookahead's first, is the first of epoch 2: after its first 2 batches.
    assert (progress.epoch, progress.updates, progress.batches_done) == (1, 3, 2)
    assert [r["epoch"] for r in read_history(broken / "history.csv")] == [1]

    assert train_cli.main(["--resume", str(broken)]) == 0
    assert_same_run(tmp_path / "whole", broken)
    assert sorted(p.name for p in (broken / "checkpoints").iterdir()) == [
        "best.keras",
        "last.keras",
    ]
    assert json.loads((broken / "metrics.json").read_text())["status"] == "completed"


def stop_with(sig, at_batch, name, tiny_cifar_archive, tmp_path, monkeypatch, capsys):
    """Train the quick model into tmp_path/name, raising signal `sig` at the end of batch
    `at_batch` of epoch 1: (the run folder, what train.main() returned and printed)."""
    args = tiny_args(tiny_cifar_archive, tmp_path, name, extra=QUICK_MODEL)
    with monkeypatch.context() as patch:
        with_callbacks(patch, AtBatch(0, at_batch, lambda: signal.raise_signal(sig), True))
        return tmp_path / name, run_in_process(args, capsys)


def test_sigterm_saves_inside_the_epoch_exits_143_and_resumes(
    tiny_cifar_archive, tmp_path, monkeypatch, capsys
):
    """SIGTERM (preemption) in epoch 1: the state is saved at the next batch end, training
    stops with one line and exit code 143, and --resume continues from there to the end.
    (That such a resume ends bit for bit where an unbroken run does is the test above.)"""
    run, stopped = stop_with(
        signal.SIGTERM, 1, "stopped", tiny_cifar_archive, tmp_path, monkeypatch, capsys
    )
    assert stopped.returncode == 143, stopped.stderr[-2000:]
    assert stopped.stderr.strip().splitlines()[-1] == (
        f"interrupted by SIGTERM at epoch 1 step 2; continue with: python train.py --resume {run}"
    )
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler was for training only
    progress = read_progress(run / "checkpoints" / "mid_epoch.keras")
    assert (progress.epoch, progress.batches_done) == (0, 2)
    assert not (run / "checkpoints" / "last.keras").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["status"], metrics["epochs_completed"]) == ("interrupted", 0)

    resumed = run_in_process(["--resume", str(run)], capsys)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed in epoch 1 after step 2 of 5" in resumed.stdout
    assert [r["epoch"] for r in read_history(run / "history.csv")] == [1, 2]
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
    assert not (run / "checkpoints" / "mid_epoch.keras").exists()


def test_ctrl_c_saves_inside_the_epoch_and_exits_130(
    tiny_cifar_archive, tmp_path, monkeypatch, capsys, ctrl_c_raises
):
    """The first Ctrl-C is a request: the state is saved at the next batch end, then the run
    stops with exit code 130 (a script can tell it from a finished run's 0)."""
    run, stopped = stop_with(
        signal.SIGINT, 2, "ctrl-c", tiny_cifar_archive, tmp_path, monkeypatch, capsys
    )
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert stopped.stderr.strip().splitlines()[-1] == (
        f"interrupted by Ctrl-C at epoch 1 step 3; continue with: python train.py --resume {run}"
    )
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert read_progress(run / "checkpoints" / "mid_epoch.keras").batches_done == 3


def test_a_ctrl_c_that_cannot_wait_exits_130_too(tiny_cifar_archive, tmp_path, monkeypatch, capsys):
    """A KeyboardInterrupt straight into training (a second Ctrl-C) saves nothing more: the
    line says the run continues from its last checkpoint, and the exit code is still 130."""
    run = tmp_path / "ctrl-c"
    args = tiny_args(tiny_cifar_archive, tmp_path, "ctrl-c", extra=QUICK_MODEL)

    def interrupt():
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        with_callbacks(patch, AtBatch(0, 2, interrupt))
        stopped = run_in_process(args, capsys)
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert stopped.stderr.strip().splitlines()[-1] == (
        "interrupted by Ctrl-C in epoch 1 (unsaved: from its last checkpoint); "
        f"continue with: python train.py --resume {run}"
    )
    assert json.loads((run / "metrics.json").read_text())["status"] == "interrupted"
