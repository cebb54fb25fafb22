"""The benchmark's own code paths on tiny settings (its figures come from real runs, not tests)."""

import json
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT

TINY_TIMING = ["--json", "--steps", "1", "--repeats", "2", "--warmup", "1"]


def bench(capsys, *args: str) -> list[dict]:
    """The bench's driver, called in this process; each measurement still runs in a fresh
    `python -m resnet_tf.bench --child ...` process, the module's command-line entry."""
    from resnet_tf.bench.cli import main

    code = main([*TINY_TIMING, *args])
    out = capsys.readouterr().out
    assert code == 0, out[-2000:]
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_model_modes_report_rates_flops_and_memory(mode, capsys):
    (record,) = bench(capsys, "--mode", mode, "--model", "resnet20", "--batch-size", "16")
    assert record["mode"] == mode and record["model"] == "resnet20"
    assert record["batch_size"] == 16 and len(record["images_per_s_all"]) == 2
    assert record["images_per_s"] > 0 and record["peak_rss_mb"] > 100
    # The framework's own footprint is measured before any model exists, so it is a part.
    assert 100 < record["framework_rss_mb"] < record["peak_rss_mb"]
    assert record["macs_per_image"] == 40_551_040
    per_image = (6 if mode == "train" else 2) * 40_551_040
    assert record["gflop_per_s"] == pytest.approx(record["images_per_s"] * per_image / 1e9, abs=0.1)


def test_pipeline_and_e2e_modes_run_on_real_format_data(tiny_cifar_archive, capsys):
    common = [
        "--model",
        "resnet20",
        "--batch-size",
        "16",
        "--data-dir",
        str(tiny_cifar_archive),
        "--set",
        "data.val_size=40",
    ]
    (pipeline,) = bench(capsys, "--mode", "pipeline", *common)
    (e2e,) = bench(capsys, "--mode", "e2e", *common)
    assert pipeline["images_per_s"] > e2e["images_per_s"] > 0


def test_matmul_peak(capsys):
    (record,) = bench(capsys, "--mode", "matmul", "--matmul-size", "512")
    assert record["gflop_per_s"] == max(record["numpy_gflop_per_s"], record["tf_gflop_per_s"]) > 1


def test_peer_record_carries_its_peak_and_framework_memory(monkeypatch):
    """The peer's wrapper prints its JSON line, then its peak and post-import RSS."""
    from resnet_tf.bench import peer

    peer_line = json.dumps({"peer": "pytorch-eager", "mode": "train", "images_per_s": 17.5})
    seen = {}

    def fake_run(command, **kwargs):
        seen["command"] = command
        return subprocess.CompletedProcess(command, 0, stdout=f"{peer_line}\nRSS 1296.5 217.2\n")

    monkeypatch.setattr(peer.subprocess, "run", fake_run)
    args = peer.argparse.Namespace(steps=4, repeats=3, warmup=1)
    record = peer.run_peer("/peer/python", "train", 128, True, args)
    assert record["model"] == "pytorch-eager" and record["images_per_s"] == 17.5
    assert record["peak_rss_mb"] == 1296.5 and record["framework_rss_mb"] == 217.2
    assert seen["command"][0] == "/peer/python" and "import runpy, sys, torch" in seen["command"][2]
    assert seen["command"][-1] == "--channels-last" and "--steps" in seen["command"]


def test_peak_memory_is_the_process_own_not_its_parents():
    """Linux's ru_maxrss would report at least this process's memory (made large here) for a
    small child it starts; the bench's peak must be the child's own."""
    import resource

    import numpy as np

    ballast = np.ones(100_000_000, np.float32)  # 400 MB, touched
    parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    bench_file = REPO_ROOT / "resnet_tf" / "bench" / "memory.py"
    script = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('bench', sys.argv[1])\n"
        "bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)\n"
        "print(bench.peak_rss_mb())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(bench_file)], capture_output=True, text=True, timeout=60
    )
    child_mb = float(out.stdout.strip())
    del ballast
    assert parent_mb > 400
    assert 1 < child_mb < 100
