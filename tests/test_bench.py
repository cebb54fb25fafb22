"""The benchmark's own code paths on tiny settings (its figures come from real runs, not tests)."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import tensorflow as tf

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
    # The quarter-width FastNet (groups 16, 64, 64): the fewest layers to trace of the zoo.
    quarter = ["--model", "fastnet_relu", "--set", "model.width_multiplier=0.25"]
    (record,) = bench(capsys, "--mode", mode, *quarter, "--batch-size", "16")
    assert record["mode"] == mode and record["model"] == "fastnet_relu"
    assert record["batch_size"] == 16 and len(record["images_per_s_all"]) == 2
    assert record["images_per_s"] > 0 and record["peak_rss_mb"] > 100
    # The framework's own footprint is measured before any model exists, so it is a part.
    assert 100 < record["framework_rss_mb"] < record["peak_rss_mb"]
    # tests/compress/test_prune.py::fastnet_size([16, 64, 64], ...), the count written by hand
    assert record["macs_per_image"] == 10_135_072
    per_image = (6 if mode == "train" else 2) * 10_135_072
    assert record["gflop_per_s"] == pytest.approx(record["images_per_s"] * per_image / 1e9, abs=0.1)


def test_pipeline_and_e2e_modes_run_on_real_format_data(tiny_cifar_archive, capsys):
    # The quarter-width FastNet: the pipeline is what is measured here, and it traces fastest.
    common = [
        *["--model", "fastnet_relu", "--set", "model.width_multiplier=0.25"],
        *["--batch-size", "16", "--data-dir", str(tiny_cifar_archive)],
        *["--set", "data.val_size=40"],
    ]
    (pipeline,) = bench(capsys, "--mode", "pipeline", *common)
    (e2e,) = bench(capsys, "--mode", "e2e", *common)
    assert pipeline["images_per_s"] > e2e["images_per_s"] > 0


def test_matmul_peak(capsys):
    (record,) = bench(capsys, "--mode", "matmul", "--matmul-size", "512")
    float32 = ("numpy_gflop_per_s", "tf_gflop_per_s", "tf_conv_gflop_per_s")
    assert record["gflop_per_s"] == max(record[key] for key in float32)
    bfloat16 = ("bfloat16_matmul_gflop_per_s", "bfloat16_conv_gflop_per_s")
    assert record["bfloat16_gflop_per_s"] == max(record[key] for key in bfloat16)
    assert min(record[key] for key in float32 + bfloat16) > 1


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
    assert seen["command"][0] == "/peer/python" and "runpy.run_path" in seen["command"][2]
    assert seen["command"][-1] == "--channels-last" and "--steps" in seen["command"]


def test_each_row_is_a_share_of_the_peak_of_its_own_precision(capsys):
    from resnet_tf.bench.cli import print_table

    matmul = {"mode": "matmul", "gflop_per_s": 100.0, "bfloat16_gflop_per_s": 200.0}
    rows = [
        {
            "mode": "train",
            "variant": "ours-fp32",
            "gflop_per_s": 50.0,
            "mixed_precision": "float32",
        },
        {
            "mode": "train",
            "variant": "ours-bf16",
            "gflop_per_s": 150.0,
            "mixed_precision": "mixed_bfloat16",
        },
        {"mode": "train", "variant": "peer-bf16", "gflop_per_s": 60.0, "precision": "bfloat16"},
    ]
    print_table([matmul, *rows], matmul)
    lines = capsys.readouterr().out.splitlines()[2:]
    shares = {line.split()[1]: [t for t in line.split() if t.endswith("%")] for line in lines}
    assert shares["ours-fp32"] == ["50%"] and shares["ours-bf16"] == ["75%"]
    assert shares["peer-bf16"] == ["30%"]


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_compare_runs_the_peer_in_the_precision_ours_ran_in(monkeypatch, capsys, precision):
    from resnet_tf.bench import cli

    def ours(argv, env=None):
        mode = argv[argv.index("--mode") + 1]
        return {"mode": mode, "mixed_precision": precision, "images_per_s": 1.0}

    calls = []

    def peer(python, mode, batch, channels_last, args, bfloat16=False):
        calls.append((mode, channels_last, bfloat16))
        return {"model": "pytorch-eager", "mode": mode, "images_per_s": 1.0}

    monkeypatch.setattr(cli, "run_child", ours)
    monkeypatch.setattr(cli, "run_peer", peer)
    sets = ["--set", f"runtime.mixed_precision={precision}"]
    assert cli.main(["--mode", "compare", "--peer-python", "py", "--rounds", "1", *sets]) == 0
    bf16 = precision == "mixed_bfloat16"
    assert calls == [(m, cl, bf16) for m in ("train", "eval") for cl in (False, True)]


def test_a_bfloat16_peer_runs_under_torch_autocast(monkeypatch, tmp_path):
    """The wrapper really runs the peer inside autocast: a stand-in torch records it."""
    import sys

    from resnet_tf.bench import peer

    (tmp_path / "torch.py").write_text(
        "import contextlib\n"
        "state = {'autocast': None}\n"
        "@contextlib.contextmanager\n"
        "def autocast(device, dtype):\n"
        "    state['autocast'] = (device, dtype)\n"
        "    yield\n"
        "    state['autocast'] = None\n"
        "bfloat16 = 'bf16'\n"
    )
    fake_peer = tmp_path / "peer.py"
    fake_peer.write_text(
        "import json, torch\n"
        "print(json.dumps({'peer': 'pytorch-eager', 'autocast': torch.state['autocast']}))\n"
    )
    monkeypatch.setattr(peer, "PEER", fake_peer)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    args = peer.argparse.Namespace(steps=1, repeats=1, warmup=0)
    plain = peer.run_peer(sys.executable, "train", 8, False, args)
    mixed = peer.run_peer(sys.executable, "train", 8, False, args, bfloat16=True)
    assert plain["model"] == "pytorch-eager" and plain["autocast"] is None
    assert mixed["model"] == "pytorch-eager-bf16-autocast" and mixed["autocast"] == ["cpu", "bf16"]


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


@pytest.fixture(scope="module")
def tiny_keras(tmp_path_factory):
    """A tiny option-A CIFAR ResNet saved as .keras outside any run folder."""
    from resnet_tf.models.resnet import ResNet

    model = ResNet(
        block_type="basic",
        stage_blocks=(1, 1),
        stage_widths=(8, 16),
        stem="cifar",
        shortcut="zero_pad",
        name="tiny",
    )
    model.build((None, 32, 32, 3))
    path = tmp_path_factory.mktemp("infer") / "tiny.keras"
    model.save(path)
    return path


def infer_args(checkpoint, *args: str) -> list[str]:
    return ["--mode", "infer", "--checkpoint", str(checkpoint), "--normalization", "cifar10", *args]


def test_infer_mode_times_each_format_in_its_own_process(
    tiny_keras, tiny_cifar_archive, tmp_path, capsys
):
    """One real export and timing child (the other formats differ only in the loader, which
    tests/deploy covers; the driver's rounds and reuse are tested with fakes below)."""
    records = bench(
        capsys,
        *infer_args(tiny_keras, "--formats", "litert", "--calls", "20", "--rounds", "1"),
        *["--batch-size", "32", "--data-dir", str(tiny_cifar_archive)],
        *["--export-dir", str(tmp_path)],
    )
    assert [(r["format"], r["round"]) for r in records] == [("litert", 0)]
    (record,) = records
    exported = tmp_path / "tiny_fp32.tflite"  # the default name, kept in --export-dir
    assert record["size_bytes"] == exported.stat().st_size > 0
    assert record["size_mib"] == round(exported.stat().st_size / 2**20, 3)
    assert record["p99_ms"] >= record["p50_ms"] > 0 and record["calls"] == 20
    assert record["images_per_s"] > 0 and len(record["images_per_s_all"]) == 2
    assert record["batch_size"] == 32 and record["threads"] >= 1
    assert record["runtime"].startswith("ai-edge-litert ")


def test_infer_driver_exports_or_reuses_interleaves_rounds_and_cleans_up(
    tiny_keras, tmp_path, monkeypatch, capsys
):
    """The driver alone: children, exports and the peer replaced by fakes."""
    from resnet_tf import deploy
    from resnet_tf.bench import cli, infer

    children, exports = [], []

    def fake_child(argv):
        children.append(argv)
        path = argv[argv.index("--model-path") + 1]
        assert os.path.exists(path)  # exported before any timing
        return {"path": path, "p50_ms": 1.0, "p99_ms": 2.0, "images_per_s": 9.0, "calls": 200}

    def fake_export(checkpoint, format, output, **options):
        Path(output).write_bytes(b"model")
        exports.append(format)
        return SimpleNamespace(summary=lambda: str(output))

    monkeypatch.setattr(cli, "run_child", fake_child)
    monkeypatch.setattr(deploy, "export_checkpoint", fake_export)
    monkeypatch.setattr(
        infer, "run_peer", lambda *a: {"model": "pytorch-eager", "batch_size": a[2]}
    )

    def run(*args: str) -> list[dict]:
        assert cli.main(["--json", *infer_args(tiny_keras, *args)]) == 0
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    records = run("--formats", "keras,onnx,litert_int8", "--rounds", "2", "--peer-python", "py")
    assert exports == ["onnx", "litert_int8"]  # once each, then timed in every round
    peer = "peer pytorch-eager eval"
    assert [(r["format"], r["round"]) for r in records] == [
        *[("keras", 0), ("onnx", 0), ("litert_int8", 0), (peer, 0)],
        *[("onnx", 1), ("litert_int8", 1), ("keras", 1), (peer, 1)],  # order rotated
    ]
    assert records[3]["batch_size"] == 256 and all(r["mode"] == "infer" for r in records)
    for argv in children:
        assert argv[argv.index("--batch-size") + 1] == "256"
        assert ("--normalization" in argv) == (argv[argv.index("--format") + 1] == "keras")
    # The temporary export folder is gone; the checkpoint is timed where it is.
    assert [os.path.exists(r["path"]) for r in records[:3]] == [True, False, False]

    (tmp_path / "tiny.onnx").write_bytes(b"theirs")
    exports.clear()
    run("--formats", "onnx,litert", "--export-dir", str(tmp_path), "--rounds", "1")
    assert exports == ["litert"]  # the file already there is reused, never overwritten
    assert (tmp_path / "tiny.onnx").read_bytes() == b"theirs"
    assert (tmp_path / "tiny_fp32.tflite").is_file()  # --export-dir keeps what it exported

    assert cli.main(infer_args(tiny_keras, "--formats", "keras,tflite")) == 1
    assert "--formats: expected a comma list of keras, saved_model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["--mode", "infer"])
    assert "--mode infer needs --checkpoint" in capsys.readouterr().err


def test_serve_mode_drives_a_real_server_and_reports_each_level(
    tiny_cifar_archive, monkeypatch, capsys
):
    """--mode serve against serve.py serving the pretrained model, briefly: the raw runtime's
    child is faked (tests above run it), the server, the client and the overload are real."""
    from resnet_tf.bench import cli

    raw = []

    def fake_child(argv):
        raw.append(argv)
        return {"p50_ms": 0.3, "p99_ms": 0.5, "images_per_s": 900.0, "batch_size": 64}

    monkeypatch.setattr(cli, "run_child", fake_child)
    code = cli.main(
        [
            *["--json", "--mode", "serve", "--data-dir", str(tiny_cifar_archive)],
            *["--concurrency", "1,4", "--duration", "1", "--overload", "1", "--workers", "1"],
        ]
    )
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    modes = [r["mode"] for r in records]
    assert modes == [*["raw", "payload", "serve", "serve", "overload", "recovery", "server", "raw"]]
    assert records[0]["machine"]["cores"] >= 1 and len(records[1]["load"]) == 3
    assert [r["when"] for r in records if r["mode"] == "raw"] == ["before", "after"]
    assert "--batch-size" in raw[0] and raw[0][raw[0].index("--format") + 1] == "litert"
    for record in records[2:4]:
        assert record["outcomes"] == {"200": record["outcomes"]["200"]} and record["errors"] == 0
        assert record["requests_per_s"] > 0 and record["p99_ms"] >= record["p50_ms"] > 0
        assert record["server_cpu_cores"] > 0 and record["server_rss_mb"] > 100
    assert [r["concurrency"] for r in records[2:4]] == [1, 4]
    overload = records[4]
    assert overload["offered_per_s"] == pytest.approx(
        4 * max(r["requests_per_s"] for r in records[2:4]), rel=0.01
    )
    assert set(overload["outcomes"]) <= {"200", "503", "not sent (client limit)"}
    assert records[5]["errors"] == 0 and records[6]["sigterm_exit_code"] == 0


def test_every_record_and_table_names_the_machine(monkeypatch, capsys):
    """A figure is only read against its own machine: each record carries the CPU, its
    instruction sets and the library versions, and the table's first line says them."""
    from resnet_tf.bench import cli
    from resnet_tf.bench.machine import machine_fields

    def ours(argv, env=None):
        return {"mode": argv[argv.index("--mode") + 1], "images_per_s": 1.0}

    monkeypatch.setattr(cli, "run_child", ours)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert cli.main(["--mode", "train", "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["machine"] == machine_fields()
    assert record["machine"]["onednn_max_cpu_isa"] == "AVX2"
    assert record["machine"]["isa"] in ([], ["AVX2"])  # the cap hides AVX-512 and above
    assert record["machine"]["versions"]["tensorflow"] == tf.__version__
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert cli.main(["--mode", "train"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"machine: {machine_fields()['cpu']}, ")
    assert f"tensorflow {tf.__version__}" in first
