"""Run folders written by an earlier version (commit d5cf95d, before the package's redesign) still
load and resume: their checkpoints predict what they predicted then, and a resumed run ends
where it ended then.

The fixtures are two tiny runs interrupted after epoch 1 of 3 (resnet20 at a quarter width, and
FastNet at 1/16 width) on the tiny archive of conftest; resumed_expected.json holds what the old
code's own resume produced, on a CPU whose oneDNN ran its AVX2 kernels. oneDNN picks its kernels
by the CPU's instruction set, and an AVX-512 kernel sums in another order: after two epochs of
the tiny runs that moves the losses by ~1e-3, more than the tolerance that checks the resume.
So the resume runs in a child process with oneDNN capped at AVX2 (ONEDNN_MAX_CPU_ISA), which
is a no-op on an AVX2 machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from resnet_tf.runs.history import read_history
from tests.helpers import REPO_ROOT
from tests.helpers.tiny_runs import child_env

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "saved_by_d5cf95d"
RUNS = ("resnet20_interrupted", "fastnet_interrupted")


def probe_images() -> np.ndarray:
    """The input the fixtures' expected_logits.npy were computed on."""
    return np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("float32") / 255.0


@pytest.mark.parametrize("name", RUNS)
def test_an_old_checkpoint_loads_and_predicts_as_it_did(name):
    model = keras.models.load_model(FIXTURES / name / "checkpoints" / "best.keras", compile=False)
    logits = keras.ops.convert_to_numpy(model(probe_images(), training=False))
    expected = np.load(FIXTURES / name / "expected_logits.npy")
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", RUNS)
def test_an_old_interrupted_run_resumes_to_the_same_end(name, tiny_cifar_archive, tmp_path):
    run = tmp_path / name
    shutil.copytree(FIXTURES / name, run)
    expected = json.loads((run / "resumed_expected.json").read_text())

    resume = [sys.executable, "train.py", "--resume", str(run), "--data-dir"]
    resume.append(str(tiny_cifar_archive))
    env = child_env({"ONEDNN_MAX_CPU_ISA": "AVX2"})
    done = subprocess.run(
        resume, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == expected["status"] == "completed"
    assert metrics["best_epoch"] == expected["best_epoch"]
    assert metrics["test_accuracy"] == pytest.approx(expected["test_accuracy"], abs=1e-6)
    rows = read_history(run / "history.csv")
    assert [row["epoch"] for row in rows] == expected["history_epochs"] == [1, 2, 3]
    for row, old in zip(rows, expected["history"]):
        for key in ("lr", "loss", "accuracy", "val_loss", "val_accuracy"):
            assert row[key] == pytest.approx(float(old[key]), rel=1e-4, abs=1e-6), (key, row)
