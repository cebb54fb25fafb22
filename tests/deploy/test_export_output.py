"""Where export.py writes: --overwrite replaces only an export of its own kind, an interrupted
export leaves nothing behind and says so in one line, and a killed one's leftovers are removed
by the next export to that name."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

import export as export_cli
from tests.helpers import assert_one_error_line


def run(capsys, *argv) -> tuple[int, str, str]:
    code = export_cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def snapshot(folder) -> dict:
    """Every path under `folder` with its size: what must stay as it was."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))}


def test_overwrite_replaces_only_an_export_of_the_same_kind(
    finished_run, tmp_path, monkeypatch, capsys
):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics.update(status="interrupted", epochs_completed=1)
    for key in [k for k in metrics if k.startswith("test_")]:
        del metrics[key]
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    saved = run_dir / "export" / "best_saved_model"

    code, out, err = run(capsys, "--checkpoint", run_dir, "--format", "saved_model")
    assert (code, err) == (0, "")
    assert out.startswith(
        "note: exported from an unfinished run (1/2 epochs, interrupted, no test score)\n"
        f"{saved} (saved_model, "
    )
    (run_dir / "export" / "notes.txt").write_text("mine")
    (run_dir / "export" / "best.onnx").write_bytes(b"\x08\x07 an onnx file")
    (tmp_path / "fake.tflite").write_text("not a LiteRT file")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "saved_model.pb").write_text("and a photo beside it")
    (tmp_path / "plain" / "holiday.jpg").write_text("jpeg")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    before = snapshot(tmp_path)
    kind = "--overwrite replaces only a saved_model export; choose another --output"
    refused = [
        (run_dir, "saved_model", "is a run folder"),
        (run_dir / "export", "saved_model", "is not a SavedModel folder (it holds best.onnx, "),
        (".", "saved_model", "is the current folder or holds it"),
        (tmp_path, "saved_model", "is the current folder or holds it"),
        (run_dir / "checkpoints", "saved_model", f"holds the checkpoint {run_dir}/checkpoints/"),
        (tmp_path / "plain", "saved_model", "is not a SavedModel folder (it holds holiday.jpg"),
        (tmp_path / "fake.tflite", "litert", "is not a LiteRT model file (no TFL3 identifier)"),
        (saved / "variables", "saved_model", "is not a SavedModel folder (it holds variables."),
    ]
    for output, fmt, what in refused:
        argv = ["--checkpoint", run_dir, "--format", fmt, "--output", output, "--overwrite"]
        code, out, err = run(capsys, *argv)
        assert_one_error_line(code, err, what)
        if fmt == "saved_model":
            assert err.strip().endswith(kind), err
    assert snapshot(tmp_path) == before

    # An export of the same kind is what --overwrite is for; and an export is not a checkpoint.
    code, out, err = run(capsys, "--checkpoint", run_dir, "--format", "saved_model", "--overwrite")
    assert (code, err) == (0, "") and (saved / "saved_model.pb").is_file()
    code, out, err = run(capsys, "--checkpoint", saved, "--format", "onnx")
    assert_one_error_line(
        code, err, f"{saved}: an exported model; export.py exports a trained checkpoint"
    )
    assert sorted(p.name for p in (run_dir / "export").iterdir()) == [
        "best.onnx",
        "best_saved_model",
        "notes.txt",
    ]


@pytest.mark.parametrize(
    "sig, code, when",
    [
        (signal.SIGINT, 130, "converting"),
        (signal.SIGTERM, 143, "converting"),
        (signal.SIGTERM, 143, "tracing"),  # inside TensorFlow's tracing, which wraps errors
    ],
)
def test_an_interrupted_int8_export_is_one_line_and_leaves_nothing(
    sig,
    code,
    when,
    tiny_checkpoints,
    tiny_cifar_archive,
    tmp_path,
    monkeypatch,
    capsys,
    ctrl_c_raises,
):
    """The signal comes while the model is traced, or while the converter works: by then Keras
    has written its intermediate SavedModel, which must be inside our own temporary folder; and
    everything goes."""
    import keras
    import tensorflow as tf
    from tensorflow.lite.python.lite import TFLiteSavedModelConverterV2

    seen = {}

    def interrupted_convert(converter):
        seen["tempdir"] = tempfile.gettempdir()
        seen["beside"] = sorted(p.name for p in (tmp_path / "out").iterdir())
        signal.raise_signal(sig)

    real_call = keras.layers.Rescaling.call

    def interrupted_call(layer, inputs):
        if not tf.executing_eagerly() and not seen:
            seen.update(tempdir=tempfile.gettempdir(), beside=[f".m_int8.tflite.tmp{os.getpid()}"])
            signal.raise_signal(sig)
        return real_call(layer, inputs)

    if when == "tracing":
        monkeypatch.setattr(keras.layers.Rescaling, "call", interrupted_call)
    else:
        monkeypatch.setattr(TFLiteSavedModelConverterV2, "convert", interrupted_convert)
    handler = signal.getsignal(signal.SIGTERM)
    target = tmp_path / "out" / "m_int8.tflite"
    argv = ["--checkpoint", tiny_checkpoints["basic"], "--format", "litert_int8"]
    argv += ["--output", target, "--data-dir", tiny_cifar_archive, "--normalization", "cifar10"]
    argv += ["--calibration-images", "50"]
    status, out, err = run(capsys, *argv)
    assert status == code and out == "", err
    said = "Ctrl-C" if sig == signal.SIGINT else "SIGTERM"
    assert err.strip().splitlines() == [
        f"interrupted by {said} while exporting litert_int8; nothing of it was written"
    ]
    work = f".m_int8.tflite.tmp{os.getpid()}"
    assert seen["beside"] == [work] and seen["tempdir"] == str(tmp_path / "out" / work)
    assert list((tmp_path / "out").iterdir()) == []
    assert tempfile.gettempdir() != seen["tempdir"]  # tempfile's own folder is back
    assert signal.getsignal(signal.SIGTERM) == handler  # and no handler of ours left behind


def test_what_a_killed_export_left_is_removed_by_the_next_one(
    tiny_checkpoints, tiny_cifar_archive, tmp_path, capsys
):
    dead = subprocess.Popen(["true"])
    dead.wait()  # a process that is gone
    alive = os.getppid()
    out = tmp_path / "out"
    out.mkdir()
    (out / f".m.onnx.tmp{dead.pid}").mkdir()
    (out / f".m.onnx.tmp{dead.pid}" / "tmpabc").mkdir()  # Keras' folder inside ours
    (out / f".m.onnx.tmp{dead.pid}.onnx").write_text("half written")  # an older version's name
    (out / f".m.onnx.tmp{alive}").mkdir()  # a live export to the same name: left alone
    (out / ".other.onnx.tmp1").write_text("not ours to judge")
    argv = ["--checkpoint", tiny_checkpoints["basic"], "--format", "onnx", "--output"]
    argv += [out / "m.onnx", "--data-dir", tiny_cifar_archive, "--normalization", "cifar10"]
    status, _, err = run(capsys, *argv)
    assert (status, err) == (0, "")
    assert sorted(p.name for p in out.iterdir()) == [
        ".m.onnx.tmp" + str(alive),
        ".other.onnx.tmp1",
        "m.onnx",
    ]
