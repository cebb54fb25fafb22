"""Data-parallel training without GPUs: mirrored over 2 logical CPUs, and 2 local workers."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from resnet_tf.config import load_config
from resnet_tf.errors import DistributionError
from resnet_tf.runs.history import read_history
from resnet_tf.training.distribute import set_worker_index
from resnet_tf.training.schedules import make_schedule
from tests.helpers import REPO_ROOT
from tests.helpers.tiny_runs import QUICK_MODEL, child_env, tiny_run_args

# Runs train.py's own main(), and afterwards saves the weights this process trained, so that a
# worker that writes no run folder can still be compared with the chief.
WORKER = """
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
import train
from resnet_tf import training
fit = training.fit
def fit_and_keep(task, model, *args, **kwargs):
    result = fit(task, model, *args, **kwargs)
    np.savez(sys.argv[2], *model.get_weights())
    return result
training.fit = fit_and_keep
sys.exit(train.main(sys.argv[3:]))
"""


def cli_args(archive, out, name, extra=()):
    return tiny_run_args(archive, out, name, epochs=2, extra=extra)


def start(args, env=None, log=None, worker_script=None) -> subprocess.Popen:
    env = child_env(env)
    command = [sys.executable, str(REPO_ROOT / "train.py"), *args]
    if worker_script is not None:
        command = [sys.executable, "-c", WORKER, str(REPO_ROOT), str(worker_script), *args]
    return subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
    )


def finish(procs: list[subprocess.Popen], logs: list[Path], timeout: float = 240) -> None:
    """Wait for all; on a timeout or a failure kill the rest (SIGKILL: workers ignore SIGTERM)."""
    try:
        for proc in procs:
            proc.wait(timeout=timeout)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=60)
    for proc, log in zip(procs, logs):
        assert proc.returncode == 0, log.read_text()[-3000:]


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_mirrored_on_two_cpus_follows_the_single_device_loss_curve(
    finished_run, tiny_cifar_archive, tmp_path
):
    """finished_run is the same run on one device."""
    logs = [tmp_path / "mirrored.log"]
    with open(logs[0], "w") as log:
        args = cli_args(tiny_cifar_archive, tmp_path, "mirrored", ["runtime.distribution=mirrored"])
        finish([start(args, env={"RESNET_TF_CPU_DEVICES": "2"}, log=log)], logs)
    assert "2 replicas on 1 worker(s), global batch 32 = 16 per replica" in logs[0].read_text()
    mirrored = read_history(tmp_path / "mirrored" / "history.csv")
    single = read_history(finished_run / "history.csv")
    assert [r["epoch"] for r in mirrored] == [1, 2]
    # Same global batches, lr schedule and averaged gradients; what differs is that each replica
    # normalizes with the batch statistics of its own 16 images rather than of all 32 (batch norm
    # is per replica), and the order of the reductions. Measured here: the epochs' mean training
    # losses differ by 0.4-0.9 %; 3 % leaves room for that, not for a different training.
    for m, s in zip(mirrored, single):
        assert m["lr"] == s["lr"]
        assert m["loss"] == pytest.approx(s["loss"], rel=0.03)
    assert json.loads((tmp_path / "mirrored" / "metrics.json").read_text())["test_images"] == 40


def test_two_local_workers_train_one_model_into_one_run_folder(tiny_cifar_archive, tmp_path):
    out, private_tmp = tmp_path / "runs", tmp_path / "tmp"
    private_tmp.mkdir()
    ports = free_ports(2)
    tf_config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}}
    env = {"TF_CONFIG": json.dumps(tf_config), "TMPDIR": str(private_tmp)}
    # Bit-identical weights do not depend on the model: the quick one saves ~15 s of tracing.
    extra = [*QUICK_MODEL, "runtime.distribution=multi_worker"]
    args = cli_args(tiny_cifar_archive, out, "together", extra)
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    files = [open(log, "w") for log in logs]
    try:
        procs = [
            start(
                [*args, "--worker-index", str(i)],
                env=env,
                log=files[i],
                worker_script=tmp_path / f"weights{i}.npz",
            )
            for i in range(2)
        ]
        finish(procs, logs)
    finally:
        for f in files:
            f.close()

    assert [p.name for p in out.iterdir()] == ["together"]
    run = out / "together"
    for name in ("config.yaml", "history.csv", "metrics.json", "plots/accuracy_loss.png"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.keras", "last.keras"]
    assert [r["epoch"] for r in read_history(run / "history.csv")] == [1, 2]
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
    assert not list(run.rglob("*.tmp*")) and not list(private_tmp.iterdir()), "temp files left"
    assert "worker 1 of 2: the chief writes the run folder" in logs[1].read_text()

    saved = keras.models.load_model(run / "checkpoints" / "last.keras").get_weights()
    for i in range(2):
        trained = np.load(tmp_path / f"weights{i}.npz")
        assert len(trained.files) == len(saved)
        for k, w in enumerate(saved):
            np.testing.assert_array_equal(trained[f"arr_{k}"], w)


def test_worker_index_sets_the_task_and_bad_settings_get_one_line(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(DistributionError, match="multi_worker needs TF_CONFIG"):
        set_worker_index(0)
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]}}))
    set_worker_index(1)
    assert json.loads(os.environ["TF_CONFIG"])["task"] == {"type": "worker", "index": 1}
    with pytest.raises(DistributionError, match="lists 2 workers"):
        set_worker_index(2)


def test_linear_lr_scaling_uses_the_global_batch():
    config = load_config(None, ["train.batch_size=1024", "train.schedule.name=constant"])
    assert config.train.lr_scaling == "none" and config.runtime.distribution == "auto"
    assert make_schedule(config.train, 10).peak_lr == pytest.approx(0.1)
    config.train.lr_scaling = "linear"
    assert make_schedule(config.train, 10).peak_lr == pytest.approx(0.1 * 1024 / 256)
