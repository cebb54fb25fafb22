"""predict.py and deploy.predict_images: image files of any size or mode -> their top classes,
from a run folder, a .keras checkpoint or any exported format, with one line per bad file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import predict as predict_cli
from resnet_tf import deploy
from resnet_tf.data import CLASS_NAMES, load_image
from resnet_tf.errors import DeployError
from tests.deploy.tiny_exports import INT8_FORMATS, INT8_PROBABILITY
from tests.helpers import REPO_ROOT
from tests.helpers.tiny_runs import child_env

FAMILY = "basic"
FLOAT_FORMATS = ("saved_model", "litert", "litert_fp16", "onnx")
TEXT_LINE = re.compile(r"^(?P<image>.+): (?P<ranked>\w+ \d+\.\d%(, \w+ \d+\.\d%)*)$")


def write(path: Path, encoded) -> Path:
    path.write_bytes(encoded.numpy())
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    """Good images of several sizes and modes, a text file named .png and a missing file."""
    folder = tmp_path_factory.mktemp("predict_images")
    rng = np.random.default_rng(0)
    exact = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    grey = np.tile(np.arange(0, 240, 6, dtype=np.uint8)[:, None, None], (1, 40, 1))
    rgba = rng.integers(0, 256, (20, 50, 4), dtype=np.uint8)
    coarse = rng.integers(0, 256, (6, 10, 3)).astype(np.float32)  # a smooth 300x500 photo
    large = tf.cast(tf.round(tf.image.resize(coarse, (300, 500))), tf.uint8)
    (folder / "x.png").write_text("not an image\n")
    return {
        "exact": write(folder / "exact.png", tf.io.encode_png(exact)),
        "grey": write(folder / "grey.png", tf.io.encode_png(grey)),
        "rgba": write(folder / "rgba.png", tf.io.encode_png(rgba)),
        "rgb_of_rgba": write(folder / "rgb.png", tf.io.encode_png(rgba[..., :3])),
        "large": write(folder / "large.jpg", tf.io.encode_jpeg(large, quality=95)),
        "text": folder / "x.png",
        "missing": folder / "absent.png",
    }


@pytest.fixture(scope="module")
def keras_classifier(tiny_checkpoints):
    return deploy.load_classifier(tiny_checkpoints[FAMILY], normalization="cifar10")


def run_cli(capsys, *argv) -> tuple[int, list[str], list[str]]:
    """predict.main in this process: (exit status, stdout lines, stderr lines)."""
    status = predict_cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return status, out.out.splitlines(), out.err.splitlines()


def json_probabilities(document: list[dict]) -> np.ndarray:
    """[images, classes] in CLASS_NAMES order, from a --top-k 10 JSON document."""
    rows = []
    for entry in document:
        by_class = {p["class"]: p["probability"] for p in entry["predictions"]}
        rows.append([by_class[name] for name in CLASS_NAMES])
    return np.asarray(rows)


def test_load_image_decodes_any_size_and_mode_to_32x32_rgb(images):
    decoded = {name: load_image(images[name]) for name in ("exact", "grey", "rgba", "large")}
    assert all(im.shape == (32, 32, 3) and im.dtype == np.uint8 for im in decoded.values())
    exact = tf.io.decode_png(images["exact"].read_bytes()).numpy()
    np.testing.assert_array_equal(decoded["exact"], exact)  # 32x32: the pixels, untouched
    grey = decoded["grey"]
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    assert grey[0, 0, 0] < 20 < 200 < grey[-1, 0, 0]  # the vertical ramp, resized
    np.testing.assert_array_equal(decoded["rgba"], load_image(images["rgb_of_rgba"]))
    source = tf.io.decode_jpeg(images["large"].read_bytes()).numpy().astype(np.float64)
    np.testing.assert_allclose(
        decoded["large"].mean(axis=(0, 1)), source.mean(axis=(0, 1)), atol=2.0
    )


def test_predict_images_gives_the_classifiers_probabilities(keras_classifier, images):
    paths = [images[n] for n in ("exact", "grey", "text", "rgba", "missing", "large")]
    results = deploy.predict_images(keras_classifier, paths, top_k=3, batch_size=2)
    assert [r.image for r in results] == [str(p) for p in paths]
    assert [r.ok for r in results] == [True, True, False, True, False, True]
    for bad in (results[2], results[4]):
        assert bad.error.startswith(f"{bad.image}: ") and "\n" not in bad.error
        assert bad.top == () and bad.probabilities is None
    good = [r for r in results if r.ok]
    expected = keras_classifier.probabilities(np.stack([load_image(r.image) for r in good]))
    for result, row in zip(good, expected):
        np.testing.assert_allclose(result.probabilities, row, atol=1e-5)
        names = [name for name, _ in result.top]
        assert names == [CLASS_NAMES[i] for i in np.argsort(-row, kind="stable")[:3]]
        probabilities = [p for _, p in result.top]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) <= 1 + 1e-6
        np.testing.assert_allclose(probabilities, np.sort(row)[::-1][:3], atol=1e-5)
    # One batch or many: the same numbers.
    whole = deploy.predict_images(keras_classifier, [r.image for r in good], top_k=10)
    for one, other in zip(good, whole):
        np.testing.assert_allclose(one.probabilities, other.probabilities, atol=1e-5)
    for top_k in (0, 11):
        with pytest.raises(DeployError, match="--top-k"):
            deploy.predict_images(keras_classifier, paths, top_k=top_k)


def test_text_lines_for_good_images_and_one_error_line_per_bad_file(
    tiny_checkpoints, keras_classifier, images, capsys
):
    model = ["--model", tiny_checkpoints[FAMILY], "--normalization", "cifar10"]
    order = ("exact", "text", "large", "missing")
    status, out, err = run_cli(capsys, *model, *(images[n] for n in order))
    assert status == 1
    assert [TEXT_LINE.match(line)["image"] for line in out] == [
        str(images["exact"]),
        str(images["large"]),
    ]
    expected = keras_classifier.probabilities(
        np.stack([load_image(images["exact"]), load_image(images["large"])])
    )
    for line, row in zip(out, expected):
        ranked = TEXT_LINE.match(line)["ranked"].split(", ")
        best = np.argsort(-row, kind="stable")[:3]
        assert ranked == [f"{CLASS_NAMES[i]} {100 * row[i]:.1f}%" for i in best]
    assert len(err) == 2
    assert err[0].startswith(f"error: {images['text']}: ") and "decode" in err[0]
    assert err[1].startswith(f"error: {images['missing']}: ") and "No such file" in err[1]

    status, out, err = run_cli(capsys, *model, "--top-k", "1", images["grey"], images["rgba"])
    assert (status, err) == (0, [])
    assert [len(TEXT_LINE.match(line)["ranked"].split(", ")) for line in out] == [1, 1]


def test_json_is_one_document_with_every_image_in_order(tiny_checkpoints, images, capsys):
    model = ["--model", tiny_checkpoints[FAMILY], "--normalization", "cifar10"]
    paths = [images["grey"], images["text"], images["large"]]
    status, out, err = run_cli(capsys, *model, "--json", "--top-k", "10", *paths)
    assert status == 1
    assert len(err) == 1 and err[0].startswith(f"error: {images['text']}: ")
    document = json.loads("\n".join(out))
    assert [entry["image"] for entry in document] == [str(p) for p in paths]
    assert set(document[1]) == {"image", "error"} and err[0] == f"error: {document[1]['error']}"
    good = [document[0], document[2]]
    assert all(set(entry) == {"image", "predictions"} for entry in good)
    np.testing.assert_allclose(json_probabilities(good).sum(axis=1), 1.0, atol=1e-4)
    for entry in good:
        values = [p["probability"] for p in entry["predictions"]]
        assert len(values) == 10 and values == sorted(values, reverse=True)


@pytest.mark.parametrize("fmt", [*FLOAT_FORMATS, *INT8_FORMATS])
def test_exported_models_predict_as_their_checkpoint_does(
    fmt, exported, tiny_checkpoints, images, capsys
):
    paths = [images[n] for n in ("exact", "grey", "rgba", "large")]
    keras_args = ["--model", tiny_checkpoints[FAMILY], "--normalization", "cifar10"]
    status, out, _ = run_cli(capsys, *keras_args, "--json", "--top-k", "10", *paths)
    assert status == 0
    expected = json_probabilities(json.loads("\n".join(out)))
    model = exported[FAMILY, fmt].path
    status, out, err = run_cli(capsys, "--model", model, "--json", "--top-k", "10", *paths)
    assert (status, err) == (0, [])
    found = json_probabilities(json.loads("\n".join(out)))
    assert ((found >= 0) & (found <= 1)).all()
    np.testing.assert_allclose(found.sum(axis=1), 1.0, atol=1e-2)
    tolerance = deploy.EXPORT_FORMATS[fmt].tolerance
    if tolerance is None:  # INT8, on a briefly trained net: what the export check allows
        assert np.abs(found - expected).max() <= INT8_PROBABILITY, (found, expected)
        assert expected.max(axis=1).mean() > 0.25  # far from uniform: the check has teeth
        return
    np.testing.assert_allclose(found, expected, atol=tolerance + 1e-6)
    ranked = np.sort(expected, axis=1)
    clear = ranked[:, -1] - ranked[:, -2] > 2 * tolerance  # not a near tie
    assert (found.argmax(1) == expected.argmax(1))[clear].all()


def test_a_run_folder_uses_its_best_checkpoint_and_normalization(finished_run, images, capsys):
    status, out, err = run_cli(capsys, "--model", finished_run, "--json", images["exact"])
    assert (status, err) == (0, [])
    [entry] = json.loads("\n".join(out))
    classifier = deploy.load_classifier(finished_run)
    row = classifier.probabilities(load_image(images["exact"])[None])[0]
    top = [CLASS_NAMES[i] for i in np.argsort(-row, kind="stable")[:3]]
    assert [p["class"] for p in entry["predictions"]] == top
    np.testing.assert_allclose(
        [p["probability"] for p in entry["predictions"]], np.sort(row)[::-1][:3], atol=1e-5
    )
    status, out, err = run_cli(
        capsys, "--model", finished_run, "--normalization", "imagenet", images["exact"]
    )
    assert (status, out, len(err)) == (1, [], 1) and "normalization" in err[0]


def test_bad_models_are_one_error_line_and_exit_1(
    tiny_checkpoints, exported, images, tmp_path, capsys
):
    (tmp_path / "model.onnx").write_text("not a model")
    (tmp_path / "model.tflite").write_bytes(b"\0" * 64)
    (tmp_path / "model.keras").write_text("not a zip")
    (tmp_path / "empty").mkdir()
    cases = [
        ([tmp_path / "absent.onnx"], "not found"),
        ([tmp_path / "absent"], "not found"),
        ([tmp_path / "model.onnx"], "ONNX"),
        ([tmp_path / "model.tflite"], "LiteRT"),
        ([tmp_path / "model.keras", "--normalization", "cifar10"], "zip"),
        ([tmp_path / "empty"], "run folder"),
        ([tiny_checkpoints[FAMILY]], "--normalization"),  # outside a run: unknown normalization
        ([exported[FAMILY, "onnx"].path, "--normalization", "cifar10"], "drop --normalization"),
    ]
    for model, expected in cases:
        status, out, err = run_cli(capsys, "--model", *model, images["exact"])
        assert (status, out, len(err)) == (1, [], 1), (model, err)
        assert err[0].startswith("error: ") and expected in err[0], (model, err)


@pytest.mark.parametrize("top_k", ["0", "11", "two"])
def test_top_k_outside_1_to_10_is_a_usage_error(top_k, images, capsys):
    with pytest.raises(SystemExit) as exit_info:
        predict_cli.main(["--model", "m.onnx", "--top-k", top_k, str(images["exact"])])
    assert exit_info.value.code == 2
    assert "--top-k: expected 1 to 10" in capsys.readouterr().err


def test_the_command_line_as_a_user_runs_it(exported, images):
    """A fresh process on an ONNX file, with names relative to the working folder."""
    model = exported[FAMILY, "onnx"].path
    command = [sys.executable, str(REPO_ROOT / "predict.py"), "--model", str(model)]
    out = subprocess.run(
        [*command, "exact.png", "x.png", "large.jpg"],
        cwd=images["exact"].parent,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1, out.stderr[-2000:]
    assert [TEXT_LINE.match(line)["image"] for line in out.stdout.splitlines()] == [
        "exact.png",
        "large.jpg",
    ]
    errors = [
        line for line in out.stderr.splitlines() if line.startswith("error") or "x.png" in line
    ]
    assert len(errors) == 1 and errors[0].startswith("error: x.png: "), out.stderr[-2000:]
    assert "Traceback" not in out.stderr


def test_files_that_are_no_images_are_one_line_each_and_the_others_are_predicted(
    exported, images, tmp_path, capsys
):
    """A FIFO (which would block a read), a device that never ends and a sparse 8 GB file
    are refused before any byte is read; the good image is still predicted."""
    import os

    from tests.data.test_images import deadline

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    sparse = tmp_path / "huge.png"
    with open(sparse, "wb") as f:
        f.truncate(8 << 30)
    model = exported[FAMILY, "onnx"].path
    with deadline(60):
        status, out, err = run_cli(
            capsys, "--model", model, fifo, "/dev/zero", images["exact"], sparse
        )
    assert status == 1
    assert [TEXT_LINE.match(line)["image"] for line in out] == [str(images["exact"])]
    assert err == [
        f"error: {fifo}: a FIFO (named pipe), expected an image file",
        "error: /dev/zero: a device, expected an image file",
        f"error: {sparse}: 8,589,934,592 bytes, over the limit of 67,108,864 bytes for an image",
    ]
