"""The model that ships in pretrained/: its card cannot drift from the file (sha256, size, the
test accuracy rescored on the 10,000 real CIFAR-10 test images, with and without TTA), the
folder stays small, and predict.py's default model names the example images' classes."""

from __future__ import annotations

import hashlib
import json

import pytest

import predict as predict_cli
from resnet_tf import deploy
from resnet_tf.data import CLASS_NAMES
from tests.helpers import REPO_ROOT

FAST = REPO_ROOT / "pretrained" / "fast"
EXAMPLES = REPO_ROOT / "examples"
# INT8 kernels differ between CPUs (README: a few hundredths of a point).
TOLERANCE = 0.001


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((FAST / "card.json").read_text())


def test_the_card_names_the_file_its_size_and_sha256(card):
    model = FAST / card["file"]
    assert model == deploy.DEFAULT_MODEL
    data = model.read_bytes()
    assert len(data) == card["size_bytes"]
    assert hashlib.sha256(data).hexdigest() == card["sha256"]
    shown = (FAST / "README.md").read_text()
    assert card["sha256"] in shown and f"{card['size_bytes']:,}" in shown
    for figures in card["test_accuracy"].values():
        assert all(f"{100 * value:.2f} %" in shown for value in figures.values())


def test_the_int8_file_scores_what_its_card_says_on_the_real_test_set(
    card, real_cifar_path, tmp_path
):
    report = deploy.evaluate_exported(
        FAST / card["file"], data_dir=str(real_cifar_path), output_dir=tmp_path, tta="flip"
    )
    assert report["images"] == card["test_images"] == 10_000
    expected = card["test_accuracy"]["int8"]
    assert report["top1_accuracy"] == pytest.approx(expected["none"], abs=TOLERANCE)
    assert report["tta"]["top1_accuracy"] == pytest.approx(expected["flip"], abs=TOLERANCE)


def test_what_ships_stays_small():
    files = [p for folder in (FAST.parent, EXAMPLES) for p in folder.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 5 * 2**20
    binary = {p.suffix for p in files} - {".md", ".json"}
    assert binary == {".tflite", ".png"}
    assert sorted(p.stem for p in EXAMPLES.glob("*.png")) == sorted(CLASS_NAMES)


def test_predict_py_by_default_names_each_example_images_class(capsys):
    images = sorted(EXAMPLES.glob("*.png"))
    code = predict_cli.main([str(p) for p in images])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == len(images)
    for image, line in zip(images, lines):
        assert line.startswith(f"{image}: {image.stem} "), line
