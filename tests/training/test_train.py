"""End-to-end tests of train.py on small data in the real CIFAR-10 archive format."""

import csv
import hashlib
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import train as train_cli
from resnet_tf import evaluation, experiment, training
from resnet_tf.config import load_config
from resnet_tf.data import load_cifar10, normalize_images
from resnet_tf.errors import RunInterrupted, TrainingError
from resnet_tf.models import build_model
from resnet_tf.runs.history import read_history
from resnet_tf.training import losses, metrics, schedules
from resnet_tf.training.muon import Muon
from resnet_tf.training.task import ImageClassificationTask, add_l2_penalty
from tests.helpers import REPO_ROOT
from tests.helpers.tiny_runs import (
    QUICK_MODEL,
    child_env,
    save_bottleneck_teacher,
    tiny_fast_config,
)
from tests.helpers.tiny_runs import TINY_RUN as TINY
from tests.helpers.tiny_runs import tiny_run_args as tiny_args


def weights_of(path: Path) -> list[np.ndarray]:
    return [np.asarray(w) for w in keras.models.load_model(path).get_weights()]


def run_cli(args, **kwargs) -> subprocess.CompletedProcess:
    env = child_env()
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "train.py"), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        **kwargs,
    )


def run_in_process(args, capsys) -> subprocess.CompletedProcess:
    """train.py's main() on `args` here, reported as run_cli reports the command's process."""
    try:
        code = train_cli.main(args)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, captured.out, captured.err)


def tiny_config(archive, out, name: str, epochs: int, extra=()):
    """The resolved config of TINY_RUN (plus `extra` overrides), `epochs` epochs, in out/name."""
    return experiment.resolve_config(
        str(REPO_ROOT / "configs" / "quick.yaml"),
        TINY + [f"train.epochs={epochs}", *extra],
        str(archive),
        str(out),
        name,
    )


def test_two_epoch_run_writes_every_file(finished_run):
    run = finished_run
    for name in (
        "config.yaml",
        "history.csv",
        "metrics.json",
        "checkpoints/best.keras",
        "checkpoints/last.keras",
        "plots/accuracy_loss.png",
    ):
        assert (run / name).is_file(), name
    assert list((run / "tb").rglob("events.out.tfevents.*")), "no TensorBoard logs"
    assert not list(run.rglob("*.tmp*")), "temporary files left behind"

    with open(run / "history.csv") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == [
            "epoch",
            "lr",
            "loss",
            "accuracy",
            "val_loss",
            "val_accuracy",
            "epoch_seconds",
            "images_per_s",
        ]
        rows = list(reader)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for row in rows:
        assert 0 <= float(row["accuracy"]) <= 1 and 0 <= float(row["val_accuracy"]) <= 1
        assert math.isfinite(float(row["loss"])) and float(row["images_per_s"]) > 0
    # Cosine over 2 epochs of 5 steps, peak 0.1: after step 5, lr = 0.05; after step 10, 0.
    assert float(rows[0]["lr"]) == pytest.approx(
        0.05 * (1 + math.cos(math.pi * 5 / 10)) / 1, rel=1e-4
    )
    assert float(rows[1]["lr"]) == pytest.approx(0.0, abs=1e-7)

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_completed"] == 2
    assert metrics["best_val_accuracy"] == pytest.approx(
        max(float(r["val_accuracy"]) for r in rows), rel=1e-6
    )
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["test_images"] == 40

    saved = load_config(run / "config.yaml")
    assert saved.train.epochs == 2 and saved.output.name == "two-epochs"
    assert "train.py" in (run / "config.yaml").read_text().splitlines()[0]
    png = (run / "plots" / "accuracy_loss.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_best_checkpoint_reloads_in_a_fresh_process_and_predicts_the_same(finished_run):
    """The test score written at the end of training is what a new process gets: the same
    logits for every image (not only the same share right, which on random pixels any
    one-class predictor would match), so the same accuracy and loss."""
    script = (
        "import sys, json, numpy as np, keras\n"
        "import resnet_tf\n"
        "from resnet_tf.data import load_cifar10, make_eval_dataset\n"
        "model = keras.models.load_model(sys.argv[1])\n"
        "_, (x, y) = load_cifar10(sys.argv[2])\n"
        "logits = model.predict(make_eval_dataset(x, y, batch_size=256,"
        " normalization='cifar10').map(lambda a, b: a), verbose=0)\n"
        "print(json.dumps({'logits': logits.tolist(), 'labels': y.tolist()}))\n"
    )
    config = load_config(finished_run / "config.yaml")
    env = child_env()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(finished_run / "checkpoints" / "best.keras"),
            config.data.path,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    fresh = json.loads(out.stdout.strip().splitlines()[-1])
    logits, labels = np.asarray(fresh["logits"]), np.asarray(fresh["labels"])
    metrics = json.loads((finished_run / "metrics.json").read_text())
    assert (logits.argmax(1) == labels).mean() == metrics["test_accuracy"]
    loss = keras.ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    assert float(np.mean(loss)) == pytest.approx(metrics["test_loss"], rel=1e-5)
    here = keras.models.load_model(finished_run / "checkpoints" / "best.keras")
    _, (x, _) = load_cifar10(config.data.path)
    np.testing.assert_allclose(here(normalize_images(x, "cifar10")), logits, atol=1e-4)
    assert logits.std(axis=0).max() > 1e-3  # the logits differ between images


def test_an_existing_run_folder_is_never_overwritten(finished_run, tiny_cifar_archive, capsys):
    before = (finished_run / "history.csv").read_text()
    code = train_cli.main(tiny_args(tiny_cifar_archive, finished_run.parent, "two-epochs"))
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert "run folder exists" in err and "--resume" in err and len(err.splitlines()) == 1
    assert (finished_run / "history.csv").read_text() == before


def test_resume_after_ctrl_c_equals_an_unbroken_run_with_every_extra_on(
    tiny_cifar_archive, tmp_path, capsys
):
    """Ctrl-C after epoch 1, then --resume, must end bit-identical to the unbroken run, with
    every training option that keeps state on. Lookahead keeps none across epochs, but every=3
    does not divide the 2 weight updates of an epoch (4 batches, accumulated 2 by 2), so this
    also needs its epoch-end update.
    Distillation from a (Bottleneck) teacher: its file is pinned in config.yaml, the checkpoints
    hold the student alone, and resume refuses a changed one. RandAugment, colour jitter,
    MixUp and CutMix draw from the batches' stateless seeds like every other augmentation; the
    weight average (EMA) lives in the optimizer's state and is swapped exactly. The optimizer
    is Muon (its momentum buffers are optimizer state too) with the whitening bias's ramp.
    (Resume of a BasicBlock ResNet: tests/runs/test_saved_runs_compat.py.)"""

    class CtrlCAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt

    teacher = save_bottleneck_teacher(tmp_path / "teacher.keras")

    def run(name, callbacks):
        extras = [
            "model.identity_init=true",
            "data.augment.flip_mode=alternate",
            "train.batch_size=32",
            "train.optimizer.name=muon",
            "train.optimizer.bn_bias_lr_multiplier=64",
            "train.whitening_bias_epochs=1",
            "train.lookahead_every=3",
            "train.test_tta=flip",
            "train.test_tta_fraction=0.5",
            "runtime.deterministic=true",
            f"train.distill.teacher={teacher}",
            "data.augment.randaugment.num_ops=2",
            "data.augment.color_jitter.saturation=0.3",
            "data.augment.mixup=0.2",
            "data.augment.cutmix=1.0",
            "train.accumulation_steps=2",
            "train.ema_decay=0.9",
        ]
        config = tiny_fast_config(tiny_cifar_archive, tmp_path, name, extras)
        return experiment.start(config, None, argv=[], verbose=0, callbacks=callbacks)

    assert run("whole", [])["status"] == "completed"
    capsys.readouterr()
    with pytest.raises(RunInterrupted) as stopped:
        run("broken", [CtrlCAfterFirstEpoch()])
    assert stopped.value.exit_code == 130 and "python train.py --resume" in str(stopped.value)
    interrupted = json.loads((tmp_path / "broken" / "metrics.json").read_text())
    assert interrupted["status"] == "interrupted" and interrupted["epochs_completed"] == 1
    out = capsys.readouterr().out
    assert "distilling from " + str(teacher.resolve()) + ": bottleneck_teacher" in out
    # Resume refuses a changed teacher (and goes on once it is back).
    original = teacher.read_bytes()
    save_bottleneck_teacher(teacher, widths=(4, 8))  # another model in the teacher's file
    assert train_cli.main(["--resume", str(tmp_path / "broken")]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "changed since the run started" in error[0], error
    teacher.write_bytes(original)
    assert train_cli.main(["--resume", str(tmp_path / "broken")]) == 0

    unbroken, resumed = (tmp_path / name for name in ("whole", "broken"))
    history = [read_history(run / "history.csv") for run in (unbroken, resumed)]
    assert [r["epoch"] for r in history[1]] == [1, 2]
    for a, b in zip(*history, strict=True):
        assert (a["loss"], a["val_accuracy"], a["lr"]) == (b["loss"], b["val_accuracy"], b["lr"])
    whole, broken = (
        keras.models.load_model(run / "checkpoints" / "last.keras") for run in (unbroken, resumed)
    )
    assert whole.groups[0].identity_init and whole.optimizer.bn_bias_lr_multiplier == 64.0
    assert isinstance(whole.optimizer, Muon) and whole.optimizer.whitening_bias_steps == 2
    for a, b in zip(whole.get_weights(), broken.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    scored = json.loads((resumed / "metrics.json").read_text())
    assert scored["status"] == "completed"
    assert (scored["test_tta"], scored["test_images"], scored["test_tta_images"]) == (
        "flip",
        40,
        20,
    )

    # The teacher: pinned in config.yaml, and nowhere in the student's checkpoints.
    recorded = load_config(unbroken / "config.yaml").train.distill
    assert recorded.teacher == str(teacher.resolve())
    assert recorded.teacher_sha256 == hashlib.sha256(teacher.read_bytes()).hexdigest()
    fresh = build_model("fastnet_relu", width_multiplier=0.25)
    assert [w.path for w in whole.weights] == [w.path for w in fresh.weights]


def test_resume_after_kill_9(tiny_cifar_archive, tmp_path, capsys):
    """A hard kill mid-training loses at most the steps since the last checkpoint (here one
    every step: train.checkpoint_every_minutes tiny); resume continues from inside the epoch
    and completes the run."""
    # The model does not matter here; the quick one saves ~10 s in the killed run and the resume.
    extra = [*QUICK_MODEL, "train.checkpoint_every_minutes=0.000001"]
    args = tiny_args(tiny_cifar_archive, tmp_path, "killed", epochs=4, extra=extra)
    env = child_env()
    proc = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "train.py"), *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    history = tmp_path / "killed" / "history.csv"
    mid_epoch = tmp_path / "killed" / "checkpoints" / "mid_epoch.keras"
    deadline = time.time() + 300
    while time.time() < deadline and not (len(read_history(history)) >= 2 and mid_epoch.exists()):
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    done_before = len(read_history(history))
    assert 2 <= done_before < 4

    # The killed process was the separate one; the resume runs train.py's main() here.
    resume = ["--resume", str(tmp_path / "killed"), "--data-dir", str(tiny_cifar_archive)]
    resumed = run_in_process(resume, capsys)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # From inside the epoch killed in, or (killed between its last.keras and the deletion of
    # its mid-epoch file) from its end.
    assert "resumed in epoch " in resumed.stdout or "resumed after epoch " in resumed.stdout
    assert [r["epoch"] for r in read_history(history)] == [1, 2, 3, 4]
    assert not list((tmp_path / "killed").rglob("*.tmp*"))
    assert not mid_epoch.exists()


def test_bad_command_lines_get_one_line_and_a_nonzero_exit(
    tiny_cifar_archive, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(REPO_ROOT)  # the relative configs/ paths, as run_cli's cwd
    cases = [
        (["--set", "train.epochs=2"], 2, "give --config FILE"),
        (["--resume", str(tmp_path), "--set", "train.epochs=3"], 2, "drop --set"),
        (
            ["--config", "configs/quick.yaml", "--set", "train.epoch=3"],
            1,
            "unknown key train.epoch (did you mean",
        ),
        (["--config", "configs/nope.yaml"], 1, "configs/nope.yaml: config file not found"),
        (
            [
                "--config",
                "configs/quick.yaml",
                "--data-dir",
                str(tmp_path / "missing"),
                "--output-dir",
                str(tmp_path),
            ],
            1,
            str(tmp_path / "missing"),
        ),
        (["--resume", str(tmp_path / "nothing")], 1, "run folder not found"),
    ]
    # One case runs the real command line, to show that no traceback reaches the user from a
    # failure deep in a run's start (the data set); the others call the same main() here, which
    # saves a process start (~5 s) each.
    in_a_process = 4
    for index, (args, code, text) in enumerate(cases):
        result = run_cli(args) if index == in_a_process else run_in_process(args, capsys)
        assert result.returncode == code, (args, result.stderr[-1500:])
        lines = [ln for ln in result.stderr.splitlines() if text in ln]
        assert lines, (args, result.stderr[-1500:])
        assert "Traceback" not in result.stderr
    assert not [p for p in tmp_path.iterdir() if p.name != "missing"], "a run folder was made"


def test_dry_run_prints_config_and_summary_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO_ROOT)  # the relative config path, as run_cli's cwd
    result = run_in_process(
        ["--config", "configs/resnet18.yaml", "--dry-run", "--output-dir", str(tmp_path)], capsys
    )
    assert result.returncode == 0, result.stderr[-1500:]
    assert "name: resnet18" in result.stdout and "11,173,962" in result.stdout
    assert "MAC" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_divergence_stops_with_a_clear_message(tiny_cifar_archive, tmp_path):
    """A weight turned NaN in epoch 2 (as an exploding update would) stops the run there."""

    class PoisonInSecondEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 1:
                weight = self.model.trainable_variables[0]
                weight.assign(np.full(weight.shape, np.nan, np.float32))

    config = tiny_config(tiny_cifar_archive, tmp_path, "boom", epochs=4, extra=QUICK_MODEL)
    with pytest.raises(TrainingError, match=r"NaN/inf in epoch 2; stopped"):
        experiment.start(config, None, argv=[], verbose=0, callbacks=[PoisonInSecondEpoch()])
    run = tmp_path / "boom"
    assert json.loads((run / "metrics.json").read_text())["status"] == "diverged"
    assert [r["epoch"] for r in read_history(run / "history.csv")] == [1]
    last = keras.models.load_model(run / "checkpoints" / "last.keras")
    assert all(np.isfinite(w).all() for w in last.get_weights())
    assert int(last.optimizer.iterations) == 5  # the end of epoch 1


def test_a_failing_test_score_keeps_the_training_record(tiny_cifar_archive, tmp_path, monkeypatch):
    def broken_evaluation(*args, **kwargs):
        raise RuntimeError("test evaluation broke")

    monkeypatch.setattr(evaluation, "score_checkpoint", broken_evaluation)
    config = tiny_config(tiny_cifar_archive, tmp_path, "no-test", epochs=1, extra=QUICK_MODEL)
    with pytest.raises(RuntimeError, match="test evaluation broke"):
        experiment.start(config, None, argv=[], verbose=0)
    metrics = json.loads((tmp_path / "no-test" / "metrics.json").read_text())
    assert metrics["status"] == "trained" and metrics["epochs_completed"] == 1
    assert "test_accuracy" not in metrics and metrics["command_wall_seconds"] > 0
    assert (tmp_path / "no-test" / "checkpoints" / "best.keras").is_file()


def test_auto_precision_picks_bfloat16_where_faster_and_runs_it_on_cpu_with_xla(
    tiny_cifar_archive, tmp_path, monkeypatch, capsys
):
    """`auto` becomes mixed_bfloat16 where the hardware computes it faster (pretended here, so
    the bfloat16 path runs on any CPU), and the run folder records that policy, not `auto`, so
    a resume on another machine computes as the run began."""
    from resnet_tf.training import precision

    monkeypatch.setattr(precision, "bfloat16_is_faster", lambda: (True, "the CPU has AMX"))
    args = tiny_args(
        tiny_cifar_archive,
        tmp_path,
        "mp",
        epochs=1,
        extra=[
            *QUICK_MODEL,  # XLA compiles it in a fraction of resnet20's time
            "runtime.mixed_precision=auto",
            "runtime.jit_compile=true",
            "runtime.deterministic=false",
        ],
    )
    try:
        assert train_cli.main(args) == 0
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert "precision auto: mixed_bfloat16, as the CPU has AMX" in capsys.readouterr().out
    saved = load_config(tmp_path / "mp" / "config.yaml")
    assert saved.runtime.mixed_precision == "mixed_bfloat16"
    model = keras.models.load_model(tmp_path / "mp" / "checkpoints" / "last.keras")
    assert model.compute_dtype == "bfloat16"
    logits = model(np.zeros((2, 32, 32, 3), np.float32))
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert {layer.dtype_policy.name for layer in model.layers[:-1]} == {"mixed_bfloat16"}
    assert math.isfinite(read_history(tmp_path / "mp" / "history.csv")[0]["loss"])


def test_float16_on_cpu_is_refused_clearly(tmp_path, tiny_cifar_archive, capsys):
    args = tiny_args(
        tiny_cifar_archive,
        tmp_path,
        "fp16",
        epochs=1,
        extra=["runtime.mixed_precision=mixed_float16"],
    )
    try:
        code = train_cli.main(args)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert code == 1 and "mixed_float16 needs a GPU" in capsys.readouterr().err
    assert not (tmp_path / "fp16").exists()


def test_thread_counts_reach_tensorflow_in_a_new_process_and_are_refused_late():
    script = (
        "import tensorflow as tf\n"
        "from resnet_tf import training\n"
        "from resnet_tf.config import load_config\n"
        "c = load_config(None, ['runtime.intra_op_threads=1', 'runtime.inter_op_threads=3'])\n"
        "training.set_up(c, distributed=False)\n"
        "t = tf.config.threading\n"
        "print(t.get_intra_op_parallelism_threads(), t.get_inter_op_parallelism_threads())\n"
    )
    env = child_env()
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.split() == ["1", "3"], out.stderr[-2000:]
    # Here TensorFlow is already running: a different count is one clear error.
    keras.ops.add(1.0, 1.0)
    late = load_config(None, ["runtime.intra_op_threads=7"])
    with pytest.raises(TrainingError, match="runtime.intra_op_threads"):
        training.set_up(late, distributed=False)


# ---------------------------------------------------------------- pieces


def lr_at(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_schedules_give_the_documented_values():
    config = load_config(
        None, ["train.epochs=10", "train.optimizer.lr=0.1", "train.schedule.warmup_epochs=2"]
    )
    cosine = schedules.make_schedule(config.train, updates_per_epoch=100)
    assert lr_at(cosine, 0) == pytest.approx(0.1 / 200)
    assert lr_at(cosine, 199) == pytest.approx(0.1)
    assert lr_at(cosine, 600) == pytest.approx(0.05)  # half-way through the cosine part
    assert lr_at(cosine, 1000) == pytest.approx(0.0, abs=1e-9)

    config = load_config(
        None,
        ["train.epochs=10", "train.schedule.name=multistep", "train.schedule.milestones=[3, 6]"],
    )
    multistep = schedules.make_schedule(config.train, updates_per_epoch=10)
    assert [lr_at(multistep, s) for s in (0, 29, 30, 59, 60, 99)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    )

    config = load_config(
        None,
        [
            "train.epochs=9",
            "train.schedule.name=step",
            "train.schedule.step_epochs=3",
            "train.schedule.gamma=0.5",
        ],
    )
    step = schedules.make_schedule(config.train, updates_per_epoch=10)
    assert [lr_at(step, s) for s in (29, 30, 60, 89)] == pytest.approx([0.1, 0.05, 0.025, 0.025])

    config = load_config(
        None, ["train.epochs=10", "train.schedule.name=onecycle", "train.schedule.pct_start=0.3"]
    )
    onecycle = schedules.make_schedule(config.train, updates_per_epoch=10)
    assert lr_at(onecycle, 0) == pytest.approx(0.1 / 25)
    assert lr_at(onecycle, 30) == pytest.approx(0.1)
    assert lr_at(onecycle, 100) == pytest.approx(0.1 / 25 / 1e4, rel=1e-3)
    # The schedule survives serialization (it is saved inside every checkpoint).
    again = schedules.LearningRate.from_config(onecycle.get_config())
    assert lr_at(again, 42) == lr_at(onecycle, 42)


def test_l2_penalty_matches_pytorch_weight_decay():
    """gradient of the penalty = weight_decay * w, for every trainable weight."""
    config = load_config(None, ["model.name=resnet20", "train.optimizer.weight_decay=0.01"])
    model = ImageClassificationTask(config).build_model()
    add_l2_penalty(model, 0.01)
    expected = sum(0.005 * float(np.sum(np.square(v.numpy()))) for v in model.trainable_variables)
    assert float(sum(keras.ops.convert_to_numpy(x) for x in model.losses)) == pytest.approx(
        expected, rel=1e-5
    )
    assert len(model.losses) == len(model.trainable_variables)


def test_label_smoothing_loss():
    loss = losses.SparseCrossEntropy(num_classes=4, label_smoothing=0.2)
    logits = np.log(np.array([[0.7, 0.1, 0.1, 0.1]], np.float32))
    target = np.array([0.85, 0.05, 0.05, 0.05])
    expected = -(target * np.log([0.7, 0.1, 0.1, 0.1])).sum()
    assert float(loss(np.array([0]), logits)) == pytest.approx(expected, rel=1e-5)
    plain = losses.SparseCrossEntropy(num_classes=4)
    assert float(plain(np.array([0]), logits)) == pytest.approx(-np.log(0.7), rel=1e-5)


def test_mixed_labels_give_the_mix_of_both_labels_losses_and_metrics():
    """MixUp/CutMix labels (lam of one class, 1 - lam of another): the loss is lam * loss(a)
    + (1 - lam) * loss(b), label smoothing included; accuracy counts the larger share, and the
    same compiled metrics still take the integer labels of validation."""
    logits = np.log(np.array([[0.6, 0.2, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4]], np.float32))
    a, b, lam = np.array([0, 3]), np.array([2, 1]), 0.7
    mixed = lam * np.eye(4)[a] + (1 - lam) * np.eye(4)[b]
    for smoothing in (0.0, 0.2):
        loss = losses.SparseCrossEntropy(num_classes=4, label_smoothing=smoothing)
        expected = lam * float(loss(a, logits)) + (1 - lam) * float(loss(b, logits))
        assert float(loss(mixed.astype("f4"), logits)) == pytest.approx(expected, rel=1e-5)

    accuracy, cross_entropy = metrics.Accuracy(), metrics.CrossEntropy()
    accuracy.update_state(mixed.astype("f4"), logits)  # larger shares: classes 0 and 3
    assert float(accuracy.result()) == 1.0
    accuracy.reset_state()
    accuracy.update_state(b, logits)
    assert float(accuracy.result()) == 0.0
    cross_entropy.update_state(mixed.astype("f4"), logits)
    expected = -(mixed * logits).sum(axis=1).mean()
    assert float(cross_entropy.result()) == pytest.approx(expected, rel=1e-5)


def test_out_of_memory_is_one_line_with_the_smaller_batch_and_the_run_resumes(
    tiny_cifar_archive, tmp_path, capsys
):
    class OutOfMemoryInEpoch2(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            if self.epoch == 1 and batch == 2:
                raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")

    extra = [*QUICK_MODEL, "train.accumulation_steps=1"]
    config = tiny_config(tiny_cifar_archive, tmp_path, "oom", epochs=2, extra=extra)
    with pytest.raises(TrainingError) as raised:
        experiment.start(config, None, argv=[], verbose=0, callbacks=[OutOfMemoryInEpoch2()])
    run = tmp_path / "oom"
    assert str(raised.value) == (
        "out of memory training with train.batch_size 32: try --set train.batch_size=16 --set "
        "train.accumulation_steps=2 in a new run (the same effective batch of 32, with about "
        f"half the activation memory); {run} keeps its last completed epoch and resumes with "
        f"python train.py --resume {run} where memory allows"
    )
    assert [r["epoch"] for r in read_history(run / "history.csv")] == [1]
    assert train_cli.main(["--resume", str(run)]) == 0
    assert [r["epoch"] for r in read_history(run / "history.csv")] == [1, 2]
