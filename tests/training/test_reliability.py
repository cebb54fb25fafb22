"""train.py when the disk fills up, and --resume of a run that is already finished."""

import errno
import json
import os
import shutil

import keras
import pytest
import tensorflow as tf

import train as train_cli
from resnet_tf import experiment, startup
from resnet_tf.errors import TrainingError
from resnet_tf.experiment.outcome import write_run_metrics
from resnet_tf.runs import files
from resnet_tf.runs.history import read_history
from resnet_tf.runs.records import RunMetrics
from resnet_tf.runs.run_dir import RunPaths
from tests.helpers import REPO_ROOT, assert_one_error_line
from tests.helpers.tiny_runs import QUICK_MODEL, TINY_RUN, tiny_run_args


def run_main(args, capsys) -> tuple[int, str, str]:
    code = train_cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_full_disk_is_one_line_keeps_the_last_checkpoint_and_the_run_resumes(
    tiny_cifar_archive, tmp_path, monkeypatch, capsys
):
    """The disk fills up while epoch 2 writes last.keras: one line naming the file, the
    checkpoint of epoch 1 and the resume command; no temporary file left; resume finishes."""
    real_replace = os.replace
    code = errno.ENOSPC
    saves = []

    def replace_on_a_full_disk(src, dst, *args, **kwargs):
        if str(dst).endswith("last.keras"):
            saves.append(dst)
            if len(saves) == 2:
                raise OSError(code, os.strerror(code))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(files.os, "replace", replace_on_a_full_disk)
    run = tmp_path / "full"
    args = tiny_run_args(tiny_cifar_archive, tmp_path, "full", epochs=2, extra=QUICK_MODEL)
    status, _, stderr = run_main(args, capsys)
    last = run / "checkpoints" / "last.keras"
    assert_one_error_line(
        status,
        stderr,
        f"{last}: cannot write: {os.strerror(code).lower()}; {last} (epoch 1) is intact: "
        f"free some space, then continue with python train.py --resume {run}",
    )
    assert "Traceback" not in stderr
    assert not list(run.rglob("*.tmp*"))
    assert int(keras.models.load_model(last).optimizer.iterations) == 5  # the end of epoch 1

    monkeypatch.undo()  # space freed
    status, stdout, _ = run_main(["--resume", str(run)], capsys)
    assert status == 0 and "resumed after epoch 1" in stdout
    assert startup.device_line("training") in stdout.splitlines()  # "no GPU found: ..." here
    assert [r["epoch"] for r in read_history(run / "history.csv")] == [1, 2]
    assert "test_accuracy" in json.loads((run / "metrics.json").read_text())


def test_tensorflows_own_full_disk_error_is_not_called_out_of_memory(
    tiny_cifar_archive, tmp_path, capsys
):
    """TensorFlow reports ENOSPC as ResourceExhaustedError, as it does an out-of-memory."""

    class TensorBoardOnAFullDisk(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                message = "tb/train/events.out.tfevents.1; No space left on device"
                raise tf.errors.ResourceExhaustedError(None, None, message)

    config = experiment.resolve_config(
        str(REPO_ROOT / "configs" / "quick.yaml"),
        [*TINY_RUN, "train.epochs=2", *QUICK_MODEL],
        str(tiny_cifar_archive),
        str(tmp_path),
        "tb",
    )
    with pytest.raises(TrainingError) as raised:
        experiment.start(config, None, argv=[], verbose=0, callbacks=[TensorBoardOnAFullDisk()])
    run = tmp_path / "tb"
    assert str(raised.value) == (
        f"{run / 'tb'}: cannot write: no space left on device; {run / 'checkpoints' / 'last.keras'}"
        f" (epoch 2) is intact: free some space, then continue with python train.py --resume {run}"
    )


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_writing_metrics_is_one_line(code, tmp_path, monkeypatch):
    """metrics.json is written after the last epoch: a full disk then is one line naming the
    intact last checkpoint and the resume command, and no temporary file is left."""

    def full_disk(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    paths = RunPaths(tmp_path / "run")
    monkeypatch.setattr(files.os, "fsync", full_disk)
    metrics = RunMetrics("completed", "resnet20", 3, 3, 0.5, 3, 0.5, 0.6, 9.0, 9.0, 1.0)
    with pytest.raises(TrainingError) as raised:
        write_run_metrics(paths, metrics)
    assert str(raised.value) == (
        f"{paths.metrics}: cannot write: {os.strerror(code).lower()}; {paths.last} (epoch 3) is "
        f"intact: free some space, then continue with python train.py --resume {paths.root}"
    )
    assert os.listdir(paths.root) == []  # the temporary file is gone


def copy_of(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    return copy


def test_resuming_a_finished_run_changes_nothing(finished_run, tmp_path, capsys):
    run = copy_of(finished_run, tmp_path)
    before = (run / "metrics.json").read_bytes()
    accuracy = json.loads(before)["test_accuracy"]
    status, stdout, stderr = run_main(["--resume", str(run)], capsys)
    assert status == 0 and stderr == ""
    assert stdout.strip() == (
        f"{run} is already finished (2/2 epochs, test accuracy {accuracy:.2%}); nothing to resume"
    )
    assert (run / "metrics.json").read_bytes() == before


def test_a_finished_run_without_its_test_score_is_scored_on_resume(finished_run, tmp_path, capsys):
    """Training ended but the test score did not happen (a crash while scoring): resume scores."""
    run = copy_of(finished_run, tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    unscored = {k: v for k, v in metrics.items() if not k.startswith("test_")}
    (run / "metrics.json").write_text(json.dumps(unscored))
    status, stdout, _ = run_main(["--resume", str(run)], capsys)
    assert status == 0 and "nothing to resume" not in stdout
    rescored = json.loads((run / "metrics.json").read_text())
    assert rescored["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert rescored["epochs_completed"] == 2
