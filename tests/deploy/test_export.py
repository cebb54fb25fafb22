"""export.py and deploy.export_checkpoint: every family in every format, checked at export time,
loaded where resnet_tf is not, and every bad input refused with one line and no file left."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.deploy.tiny_exports import (
    CALIBRATION_IMAGES,
    FAMILIES,
    FORMATS,
    INT8_AGREEMENT,
    INT8_FORMATS,
    INT8_PROBABILITY,
    build_tiny,
)

TOLERANCE = {"saved_model": 1e-4, "litert": 1e-4, "litert_fp16": 1e-2, "onnx": 1e-4}


def run_export(argv: list[str]) -> int:
    import export as export_cli

    return export_cli.main(argv)


def test_every_family_converts_to_every_format_and_matches_the_checkpoint(exported):
    from resnet_tf import deploy
    from resnet_tf.deploy.export import size_of

    for family in FAMILIES:
        sizes = {}
        for fmt in FORMATS:
            result = exported[family, fmt]
            assert result.path.exists() and result.format == fmt
            if fmt.startswith("litert") or fmt.startswith("onnx"):  # read back from the file
                assert deploy.load_exported(result.path).format == fmt
            assert result.size_bytes == size_of(result.path) > 0
            sizes[fmt] = result.size_bytes
            check = result.check
            assert check.images == 40  # the tiny archive's test images
            if fmt in TOLERANCE:
                # Untrained nets give near-even probabilities, so rounding may break a tie
                # (the checkpoint's own top two within the tolerance); nothing else may differ.
                assert check.clear_disagreements == 0, (family, fmt, check)
                assert check.max_probability_difference <= TOLERANCE[fmt], (family, fmt, check)
                assert abs(check.exported_accuracy - check.reference_accuracy) <= check.ties / 40
            else:
                assert result.calibration_images == CALIBRATION_IMAGES
                assert check.top1_agreement >= INT8_AGREEMENT, (family, fmt, check)
                assert check.max_probability_difference <= INT8_PROBABILITY, (family, fmt, check)
        # Smaller weights make smaller files, even at a few thousand parameters.
        assert sizes["litert_int8"] < sizes["litert_fp16"] < sizes["litert"], (family, sizes)


def test_onnx_int8_leaves_the_gelu_in_float(exported):
    """The GELU's inner values are never rounded to int8, only its result where a convolution
    reads it: rounding each of the tanh GELU's inner products (x**3 above all) to 256 levels
    cost the full-size fast94 net ten points of accuracy, which the tiny net's agreement check
    is too small to show."""
    from collections import Counter

    import onnx

    for family in FAMILIES:
        graph = onnx.load(str(exported[family, "onnx_int8"].path)).graph
        made_by = {output: node.op_type for node in graph.node for output in node.output}
        quantized_from = Counter(
            made_by.get(node.input[0]) for node in graph.node if node.op_type == "QuantizeLinear"
        )
        gelus = sum(node.op_type == "Tanh" for node in graph.node)
        assert quantized_from["Conv"] > 0, (family, quantized_from)
        assert quantized_from["Pow"] == quantized_from["Tanh"] == 0, (family, quantized_from)
        assert quantized_from["Mul"] <= gelus, (family, quantized_from)  # each GELU's result


def test_the_int8_check_can_tell_a_wrong_model(exported, tiny_cifar_archive):
    """The INT8 thresholds have teeth: the checkpoints' outputs are far from uniform, and each
    INT8 file, compared with another family's checkpoint, misses them by far."""
    from resnet_tf.data import load_cifar10
    from resnet_tf.deploy import load_classifier

    _, (images, labels) = load_cifar10(tiny_cifar_archive)
    float_outputs = {
        family: load_classifier(exported[family, "onnx"].path).probabilities(images)
        for family in FAMILIES
    }
    for family, probabilities in float_outputs.items():
        assert probabilities.max(axis=1).mean() > 0.25, family  # uniform would be 0.1
    for fmt in INT8_FORMATS:
        for family, other in zip(FAMILIES, FAMILIES[1:] + FAMILIES[:1]):
            int8 = load_classifier(exported[family, fmt].path).probabilities(images)
            wrong = deploy_compare(float_outputs[other], int8, labels)
            assert wrong[1] > INT8_PROBABILITY or wrong[0] < INT8_AGREEMENT, (family, fmt)


def deploy_compare(reference, exported_probabilities, labels) -> tuple[float, float]:
    """(top-1 agreement, max |probability difference|) of two sets of probabilities."""
    agreement = float(np.mean(reference.argmax(1) == exported_probabilities.argmax(1)))
    return agreement, float(np.abs(reference - exported_probabilities).max())


def test_exports_run_in_a_fresh_process_without_resnet_tf(exported, tiny_cifar_archive, tmp_path):
    """Each file on its own runtime as a user would load it: names, dtypes, the same outputs."""
    from resnet_tf.data import load_cifar10
    from resnet_tf.deploy import load_classifier

    _, (images, _) = load_cifar10(tiny_cifar_archive)
    expected = {
        family: load_classifier(
            exported[family, "onnx"].checkpoint, normalization="cifar10"
        ).outputs(images)
        for family in FAMILIES
    }
    np.savez(
        tmp_path / "expected.npz",
        images=images,
        **{f"{f}_{k}": v for f, out in expected.items() for k, v in out.items()},
    )
    files = {f"{family}/{fmt}": str(exported[family, fmt].path) for family, fmt in exported}
    (tmp_path / "files.json").write_text(json.dumps(files))
    script = textwrap.dedent(
        """
        import importlib.util, json, sys
        import numpy as np
        assert importlib.util.find_spec("resnet_tf") is None, "resnet_tf is importable"
        import onnxruntime, tensorflow as tf
        from ai_edge_litert.interpreter import Interpreter
        data = np.load("expected.npz")
        images = data["images"]
        report = {}
        for key, path in json.load(open("files.json")).items():
            family, fmt = key.split("/")
            if fmt == "saved_model":
                signature = tf.saved_model.load(path).signatures["serving_default"]
                assert signature.structured_input_signature[1]["images"].dtype == tf.uint8
                out = {k: v.numpy() for k, v in signature(images=tf.constant(images)).items()}
            elif fmt.startswith("onnx"):
                session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
                (inp,) = session.get_inputs()
                assert (inp.name, inp.type) == ("images", "tensor(uint8)"), inp
                names = [o.name for o in session.get_outputs()]
                out = dict(zip(names, session.run(names, {"images": images})))
            else:
                interpreter = Interpreter(model_path=path)
                runner = interpreter.get_signature_runner("serving_default")
                assert runner.get_input_details()["images"]["dtype"] == np.uint8
                out = runner(images=images)
            probs = out["probabilities"]
            want = data[family + "_probabilities"]
            rows = np.arange(len(want))
            # the checkpoint's margin between its class and the one the export chose
            gap = want[rows, want.argmax(1)] - want[rows, probs.argmax(1)]
            report[key] = {
                "outputs": sorted(out),
                "max_diff": float(np.abs(probs - want).max()),
                "agree": float(np.mean(probs.argmax(1) == want.argmax(1))),
                "largest_gap_overruled": float(gap.max()),
                "logits_diff": float(np.abs(out["logits"] - data[family + "_logits"]).max())
                if "logits" in out else None,
            }
        print(json.dumps(report))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(report) == len(FAMILIES) * len(FORMATS)
    for key, row in report.items():
        fmt = key.split("/")[1]
        with_logits = fmt in ("saved_model", "onnx", "onnx_int8")
        assert row["outputs"] == (["logits", "probabilities"] if with_logits else ["probabilities"])
        if fmt in TOLERANCE:  # a different class only where the checkpoint had a tie
            assert row["max_diff"] <= TOLERANCE[fmt], (key, row)
            assert row["largest_gap_overruled"] <= TOLERANCE[fmt], (key, row)
        else:
            assert row["agree"] >= INT8_AGREEMENT, (key, row)
            assert row["max_diff"] <= INT8_PROBABILITY, (key, row)
        if with_logits and fmt in TOLERANCE:
            assert row["logits_diff"] <= 1e-4, (key, row)


def test_a_run_folder_exports_into_its_export_folder_and_evaluates_alike(
    finished_run, tmp_path, capsys
):
    """export.py on a run uses its best.keras and its normalization; evaluate.py then gives the
    ONNX file the checkpoint's report: same predictions, class by class."""
    import evaluate as evaluate_cli

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    assert run_export(["--checkpoint", str(run), "--format", "onnx"]) == 0
    onnx_file = run / "export" / "best.onnx"
    assert onnx_file.is_file()
    assert "top-1 agreement with the checkpoint 100.00%" in capsys.readouterr().out

    assert evaluate_cli.main(["--checkpoint", str(run), "--output", str(tmp_path / "k")]) == 0
    assert evaluate_cli.main(["--checkpoint", str(onnx_file), "--tta", "flip"]) == 0
    keras_report = json.loads((tmp_path / "k" / "report.json").read_text())
    onnx_report = json.loads((run / "export" / "eval-best" / "report.json").read_text())
    assert (onnx_report["format"], keras_report["format"]) == ("onnx", "keras")
    assert onnx_report["normalization"] == "inside the model"
    assert onnx_report["images"] == keras_report["images"] == 40
    for key in ("top1_accuracy", "top5_accuracy", "per_class", "confusion_matrix"):
        assert onnx_report[key] == keras_report[key], key
    assert onnx_report["mean_loss"] == pytest.approx(keras_report["mean_loss"], abs=1e-5)
    assert onnx_report["tta"]["name"] == "flip"
    assert "(onnx)" in capsys.readouterr().out


def test_a_mixed_precision_checkpoint_exports_in_float32(tmp_path, tiny_cifar_archive):
    import keras

    from resnet_tf import deploy

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_tiny("option_a")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.dtype_policy.name == "mixed_bfloat16"
    model.save(tmp_path / "bf16.keras")
    result = deploy.export_checkpoint(
        tmp_path / "bf16.keras", "onnx", data_dir=str(tiny_cifar_archive), normalization="none"
    )
    assert result.check.top1_agreement == 1.0
    probs = deploy.load_exported(result.path).probabilities(np.zeros((2, 32, 32, 3), np.uint8))
    assert probs.dtype == np.float32 and np.allclose(probs.sum(1), 1.0, atol=1e-5)


def test_a_float_export_that_disagrees_is_an_error_and_leaves_no_file(
    tiny_checkpoints, tiny_cifar_archive, tmp_path, monkeypatch
):
    from resnet_tf import deploy
    from resnet_tf.deploy import export
    from resnet_tf.errors import DeployError

    class Off:
        """The exported model, one class's probability moved by 0.01."""

        def __init__(self, inner):
            self.inner = inner

        def probabilities(self, images):
            probs = self.inner.probabilities(images).copy()
            probs[:, 0] += 0.01
            return probs

    real_load = export.load_exported
    monkeypatch.setattr(export, "load_exported", lambda path: Off(real_load(path)))
    target = tmp_path / "out" / "m.onnx"
    with pytest.raises(DeployError, match=r"disagrees with the checkpoint .*nothing written"):
        deploy.export_checkpoint(
            tiny_checkpoints["basic"],
            "onnx",
            target,
            data_dir=str(tiny_cifar_archive),
            normalization="cifar10",
        )
    assert list((tmp_path / "out").iterdir()) == []


def bad_input_cases(tmp_path: Path, checkpoint: Path, archive: Path) -> list:
    not_a_model = tmp_path / "notes.keras"
    not_a_model.write_text("hello")
    existing = tmp_path / "taken.onnx"
    existing.write_bytes(b"keep me")
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    common = ["--data-dir", str(archive), "--normalization", "cifar10"]
    return [
        (["--checkpoint", str(not_a_model), "--format", "onnx", *common], "not a .keras model"),
        (["--checkpoint", str(tmp_path / "nope"), "--format", "onnx", *common], "not found"),
        (
            [
                "--checkpoint",
                str(checkpoint),
                "--format",
                "onnx",
                "--output",
                str(existing),
                *common,
            ],
            "exists; choose another --output or pass --overwrite",
        ),
        (
            [
                "--checkpoint",
                str(checkpoint),
                "--format",
                "litert",
                "--output",
                str(tmp_path / "m.onnx"),
                *common,
            ],
            "format litert needs a path ending in .tflite",
        ),
        (
            [
                "--checkpoint",
                str(checkpoint),
                "--format",
                "onnx",
                "--output",
                str(a_file / "m.onnx"),
                *common,
            ],
            "cannot create the output folder",
        ),
        (
            [
                "--checkpoint",
                str(checkpoint),
                "--format",
                "litert_int8",
                "--output",
                str(tmp_path / "q.tflite"),
                "--calibration-images",
                "5000",
                *common,
            ],
            "the training split of .* has only 200 images",
        ),
        (["--checkpoint", str(checkpoint), "--format", "onnx"], "normalization"),
    ]


def test_bad_input_is_one_line_and_a_non_zero_exit(
    tiny_checkpoints, tiny_cifar_archive, tmp_path, capsys
):
    import re

    for argv, message in bad_input_cases(tmp_path, tiny_checkpoints["basic"], tiny_cifar_archive):
        assert run_export(argv) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), (argv, err)
        assert re.search(message, err[0]), (message, err[0])
    assert (tmp_path / "taken.onnx").read_bytes() == b"keep me"
    leftovers = sorted(p.name for p in tmp_path.rglob("*") if ".tmp" in p.name)
    assert leftovers == []
    with pytest.raises(SystemExit) as exit_info:  # argparse: a format that does not exist
        run_export(["--checkpoint", "x", "--format", "jpeg"])
    assert exit_info.value.code == 2
