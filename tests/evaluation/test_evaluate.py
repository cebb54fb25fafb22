"""evaluate.py: exact agreement with a plain loop, the report, image folders, bad input.

The metric functions on small arrays are in test_evaluation_metrics.py."""

import contextlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import evaluate as evaluate_cli
from resnet_tf import evaluation
from resnet_tf.config import load_config
from resnet_tf.config.choices import TTA_CHOICES
from resnet_tf.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CLASS_NAMES,
    load_cifar10,
    load_image_folder,
)
from resnet_tf.errors import DataError
from resnet_tf.models import build_model
from resnet_tf.startup import device_line
from tests.helpers import REPO_ROOT, assert_one_error_line
from tests.helpers.tiny_runs import child_env

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(finished_run, tmp_path_factory) -> Path:
    """A resnet20 run on the tiny archive (200 train / 40 test images): a copy of the session's
    finished_run (trained once for several modules), since evaluate.py writes into its folder."""
    copy = tmp_path_factory.mktemp("eval_runs") / "tiny"
    shutil.copytree(finished_run, copy)
    return copy


@pytest.fixture(scope="module")
def evaluated(run_dir, tiny_cifar_archive) -> tuple[dict, str]:
    """(report.json of evaluate.py on the run's best checkpoint with flip TTA, its stdout)."""
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = evaluate_cli.main(
            ["--checkpoint", str(run_dir / "checkpoints" / "best.keras")]
            + ["--data-dir", str(tiny_cifar_archive), "--batch-size", "16", "--tta", "flip"]
        )
    assert code == 0
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    return report, stdout.getvalue()


def plain_loop(checkpoint: Path, x: np.ndarray, y: np.ndarray, batch: int) -> tuple[float, float]:
    """(accuracy, mean cross-entropy): what a user gets from load_model and a loop, normalizing
    with numpy. The loss compares every image's probabilities, not only which class wins (on
    random pixels any one-class predictor gets the same accuracy)."""
    model = keras.models.load_model(checkpoint)
    mean = np.asarray(CIFAR10_MEAN, np.float32)
    std = np.asarray(CIFAR10_STD, np.float32)
    correct, losses = 0, []
    for start in range(0, len(x), batch):
        x_batch = (x[start : start + batch].astype(np.float32) / np.float32(255.0) - mean) / std
        logits = np.asarray(model(x_batch, training=False), np.float64)
        labels = y[start : start + batch]
        correct += int((logits.argmax(axis=1) == labels).sum())
        losses.extend(
            keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        )
    return correct / len(x), float(np.mean(losses))


# ---------------------------------------------------------------- the report of a real run


def test_top1_is_exactly_the_plain_loop_figure(evaluated, run_dir, tiny_cifar_archive):
    report, _ = evaluated
    _, (x_test, y_test) = load_cifar10(tiny_cifar_archive)
    accuracy, loss = plain_loop(run_dir / "checkpoints" / "best.keras", x_test, y_test, 16)
    assert report["top1_accuracy"] == accuracy
    assert report["mean_loss"] == pytest.approx(loss, rel=1e-5)
    assert report["mean_loss"] != pytest.approx(np.log(10), rel=1e-3)  # not a uniform output
    assert report["images"] == len(y_test) == 40
    assert report["normalization"] == "cifar10"
    assert report["normalization_from"] == "run config"


def test_report_numbers_agree_with_each_other(evaluated):
    report, _ = evaluated
    top1 = report["top1_accuracy"]
    assert 1.0 >= report["top5_accuracy"] >= top1
    assert report["mean_loss"] > 0 and 0 <= report["ece"] <= 1 and report["ece_bins"] == 15
    matrix = np.asarray(report["confusion_matrix"])
    assert matrix.shape == (10, 10)
    assert matrix.sum() == report["images"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(top1, abs=1e-12)
    per_class = report["per_class"]
    weighted_recall = sum(row["recall"] * row["images"] for row in per_class) / report["images"]
    assert weighted_recall == pytest.approx(top1, abs=1e-12)
    assert [row["class"] for row in per_class] == list(CLASS_NAMES)  # tiny test set has all 10
    for pair in report["most_confused"]:
        true, predicted = CLASS_NAMES.index(pair["true"]), CLASS_NAMES.index(pair["predicted"])
        assert pair["count"] == matrix[true, predicted] > 0 and true != predicted
    confidences = [m["confidence"] for m in report["confident_mistakes"]]
    assert confidences == sorted(confidences, reverse=True)
    assert report["images_per_s"] > 0
    assert report["tta"]["top5_accuracy"] >= report["tta"]["top1_accuracy"]


def test_flip_translate_report_agrees_with_the_training_test_score(
    run_dir, tiny_cifar_archive, tmp_path
):
    """evaluate.py and train.py's final test score average the same views with the same weights,
    also with the views for the least confident half of the images only."""
    _, (x_test, y_test) = load_cifar10(tiny_cifar_archive)

    def both(fraction: float) -> tuple[dict, dict]:
        report = evaluation.evaluate_checkpoint(
            run_dir,
            data_dir=str(tiny_cifar_archive),
            output_dir=tmp_path / str(fraction),
            batch_size=16,
            tta="flip_translate",
            tta_fraction=fraction,
        )
        direct = evaluation.score_checkpoint(
            run_dir / "checkpoints" / "best.keras",
            x_test,
            y_test,
            normalization="cifar10",
            tta="flip_translate",
            batch_size=16,
            tta_fraction=fraction,
        )
        return report, direct

    report, direct = both(1.0)
    assert report["tta"]["name"] == "flip_translate"
    # the tolerances date from when the test score used predict(); allow one near-tie image
    assert report["tta"]["top1_accuracy"] == pytest.approx(direct["accuracy"], abs=1.01 / 40)
    assert report["tta"]["mean_loss"] == pytest.approx(direct["loss"], rel=1e-4)
    # both now run the one plain loop of evaluation.tta: same batches, same figures exactly
    assert report["tta"]["top1_accuracy"] == direct["accuracy"]
    assert direct["tta_images"] == 40
    half, direct_half = both(0.5)
    assert direct_half["tta_images"] == 20 and half["tta"]["fraction"] == 0.5
    assert half["tta"]["method"].endswith("on the 50% least confident images")
    assert half["tta"]["top1_accuracy"] == direct_half["accuracy"]
    assert half["tta"]["mean_loss"] == pytest.approx(direct_half["loss"], rel=1e-6)
    assert report["tta"]["mean_loss"] == direct["loss"]
    assert direct["images"] == 40 and direct["seconds"] > 0
    assert report["tta"]["mean_loss"] != pytest.approx(report["mean_loss"], rel=1e-4)
    assert "with flip_translate TTA" in evaluation.format_for_terminal(report)


def test_report_files_plots_and_summary(evaluated, run_dir):
    report, stdout = evaluated
    eval_dir = run_dir / "eval"
    for name in ("confusion_matrix.png", "per_class_accuracy.png", "confident_mistakes.png"):
        raw = (eval_dir / name).read_bytes()
        assert raw.startswith(PNG_MAGIC), name
        height, width, _ = tf.io.decode_png(raw).shape
        assert height > 200 and width > 200, name
    markdown = (eval_dir / "report.md").read_text()
    assert f"{report['top1_accuracy']:.2%}" in markdown and "with flip TTA" in markdown
    assert "top-1" in stdout and "with flip TTA" in stdout and str(eval_dir) in stdout
    assert stdout.splitlines()[0] == device_line("evaluation")  # "no GPU found: ..." here


def test_a_run_folder_alone_uses_its_best_checkpoint(run_dir, tiny_cifar_archive, tmp_path):
    report = evaluation.evaluate_checkpoint(
        run_dir, data_dir=str(tiny_cifar_archive), output_dir=tmp_path, batch_size=40
    )
    assert report["checkpoint"] == str(run_dir / "checkpoints" / "best.keras")
    assert (tmp_path / "report.json").is_file()


# ---------------------------------------------------------------- image folders


def write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(image).numpy())


def solid(height: int, width: int, colour: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.asarray(colour, np.uint8), (height, width, 3)).copy()


def test_image_folder_loads_any_size_as_32x32_rgb(tmp_path):
    write_png(tmp_path / "test" / "Cat" / "a.png", solid(32, 32, (255, 0, 0)))
    write_png(tmp_path / "test" / "Cat" / "b.png", solid(64, 48, (0, 255, 0)))
    write_png(tmp_path / "test" / "AIRPLANE" / "c.png", solid(20, 90, (10, 20, 30)))
    grey = np.full((40, 40, 1), 77, np.uint8)
    write_png(tmp_path / "test" / "truck" / "d.png", grey)
    (tmp_path / "test" / "truck" / "notes.txt").write_text("ignored")
    (tmp_path / "test" / "dog").mkdir()  # an empty class folder: dog is simply absent
    write_png(tmp_path / "train" / "frog" / "e.png", solid(32, 32, (1, 2, 3)))

    images, labels = load_image_folder(tmp_path, "test")
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
    assert [CLASS_NAMES[i] for i in labels] == ["airplane", "cat", "cat", "truck"]
    assert (images[0] == (10, 20, 30)).all()
    assert (images[1] == (255, 0, 0)).all() and (images[2] == (0, 255, 0)).all()
    assert (images[3] == 77).all()

    direct, direct_labels = load_image_folder(tmp_path / "train", split="test")
    assert direct.shape == (1, 32, 32, 3) and CLASS_NAMES[direct_labels[0]] == "frog"


def test_tta_of_mirror_symmetric_images_changes_nothing(run_dir, tiny_cifar_archive, tmp_path):
    _, (x_test, y_test) = load_cifar10(tiny_cifar_archive)
    left = x_test[:20, :, :16]
    symmetric = np.concatenate([left, left[:, :, ::-1]], axis=2)
    for index, (image, label) in enumerate(zip(symmetric, y_test[:20])):
        write_png(tmp_path / "photos" / "test" / CLASS_NAMES[label] / f"{index}.png", image)
    report = evaluation.evaluate_checkpoint(
        run_dir,
        data_dir=str(tmp_path / "photos"),
        output_dir=tmp_path / "out",
        batch_size=8,
        tta="flip",
    )
    assert report["data"]["kind"] == "image_folder" and report["images"] == 20
    for key in ("top1_accuracy", "top5_accuracy", "mean_loss", "ece"):
        assert report["tta"][key] == report[key], key
    present = {CLASS_NAMES[label] for label in y_test[:20]}
    assert {row["class"] for row in report["per_class"]} == present


# ---------------------------------------------------------------- bad input


def run_main(args: list[str], capsys) -> tuple[int, str]:
    code = evaluate_cli.main(args)
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def bad_checkpoints(run_dir, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad_checkpoints")
    best = run_dir / "checkpoints" / "best.keras"
    text = folder / "notes.keras"
    text.write_text("this is not a model\n")
    truncated = folder / "truncated.keras"
    truncated.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    model = build_model("resnet20", num_classes=100)
    model(np.zeros((1, 32, 32, 3), np.float32))
    hundred = folder / "cifar100.keras"
    model.save(hundred)
    weights = folder / "model.weights.h5"
    keras.models.load_model(best).save_weights(weights)
    plain_h5 = folder / "model.h5"
    shutil.copy(weights, plain_h5)
    outside = folder / "copied_best.keras"
    shutil.copy(best, outside)
    return {
        "text": text,
        "truncated": truncated,
        "hundred": hundred,
        "weights": weights,
        "plain_h5": plain_h5,
        "outside": outside,
    }


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("missing", "not found"),
        ("text", "not a .keras model archive"),
        ("truncated", "not a .keras model archive"),
        ("weights", "weights-only"),
        ("plain_h5", "cannot load as a Keras model"),
        ("hundred", "found 100"),
    ],
)
def test_bad_checkpoints_give_one_line(
    kind, reason, bad_checkpoints, tiny_cifar_archive, tmp_path, capsys
):
    path = bad_checkpoints.get(kind, tmp_path / "nowhere.keras")
    args = ["--checkpoint", str(path), "--normalization", "cifar10"]
    code, stderr = run_main(args + ["--data-dir", str(tiny_cifar_archive)], capsys)
    assert_one_error_line(code, stderr, str(path), reason)


def test_checkpoint_outside_a_run_needs_normalization(bad_checkpoints, tiny_cifar_archive, capsys):
    path = bad_checkpoints["outside"]
    code, stderr = run_main(
        ["--checkpoint", str(path), "--data-dir", str(tiny_cifar_archive)], capsys
    )
    assert_one_error_line(code, stderr, str(path), "--normalization")
    code, _ = run_main(
        ["--checkpoint", str(path), "--data-dir", str(tiny_cifar_archive)]
        + ["--normalization", "cifar10", "--batch-size", "40"],
        capsys,
    )
    assert code == 0 and (path.parent / "eval" / "report.json").is_file()


def test_normalization_that_contradicts_the_run_config_is_refused(run_dir, capsys):
    code, stderr = run_main(["--checkpoint", str(run_dir), "--normalization", "imagenet"], capsys)
    assert_one_error_line(code, stderr, str(run_dir / "config.yaml"), "'cifar10'")


def test_bad_image_folders_give_one_line(run_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    no_images = tmp_path / "no_images"
    (no_images / "test" / "cat").mkdir(parents=True)
    unknown = tmp_path / "unknown"
    write_png(unknown / "test" / "cat" / "a.png", solid(32, 32, (0, 0, 0)))
    write_png(unknown / "test" / "dragon" / "b.png", solid(32, 32, (0, 0, 0)))
    corrupt = tmp_path / "corrupt"
    (corrupt / "dog").mkdir(parents=True)
    (corrupt / "dog" / "x.png").write_text("not a png")
    for data_dir, must_name in (
        (empty, [str(empty), "found none"]),
        (no_images, [str(no_images / "test"), "found none"]),
        (unknown, [str(unknown / "test" / "dragon"), "airplane, automobile", "truck"]),
        (corrupt, [str(corrupt / "dog" / "x.png")]),
    ):
        code, stderr = run_main(["--checkpoint", str(run_dir), "--data-dir", str(data_dir)], capsys)
        assert_one_error_line(code, stderr, *must_name)
    with pytest.raises(DataError, match="no such folder"):
        load_image_folder(tmp_path / "absent")


@pytest.mark.parametrize(
    "args",
    [[], ["--checkpoint", "x", "--batch-size", "0"], ["--checkpoint", "x", "--tta", "rotate"]],
)
def test_usage_errors_exit_with_2(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_cli.main(args)
    assert exit_info.value.code == 2


def test_command_line_prints_no_traceback(bad_checkpoints):
    env = child_env()
    path = bad_checkpoints["truncated"]
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "evaluate.py"), "--checkpoint", str(path)]
        + ["--normalization", "none"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and str(path) in errors[0]
    assert result.stdout == ""


@pytest.mark.parametrize("kind", ["file", "under_a_file", "report_is_a_folder", "read_only"])
def test_an_unusable_output_fails_before_evaluating(kind, run_dir, tmp_path, monkeypatch, capsys):
    taken = tmp_path / "taken.txt"
    taken.write_text("not a folder")
    clash = tmp_path / "out" / "report.json"
    clash.mkdir(parents=True)
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    output, reason = {
        "file": (taken, "it is a file, expected a folder"),
        "under_a_file": (taken / "eval", f"{taken} is a file, expected a folder"),
        "report_is_a_folder": (clash.parent, f"{clash} is a folder, expected a file"),
        "read_only": (read_only / "eval", f"cannot create files in {read_only} (permission"),
    }[kind]

    def refuse(*args, **kwargs):
        if Path(kwargs["dir"]) == read_only:
            raise PermissionError(13, "Permission denied")
        return real_mkstemp(*args, **kwargs)

    def no_evaluation(*args, **kwargs):
        raise AssertionError("the evaluation started")

    real_mkstemp = tempfile.mkstemp
    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # a read-only folder (as root, chmod cannot)
    monkeypatch.setattr(evaluation.sources, "load_checkpoint", no_evaluation)
    monkeypatch.setattr(evaluation, "evaluate_model", no_evaluation)
    code, stderr = run_main(["--checkpoint", str(run_dir), "--output", str(output)], capsys)
    assert_one_error_line(code, stderr, f"{output}: cannot write the report there: {reason}")
    assert not (read_only / "eval").exists()


def test_every_tta_is_accepted_by_the_command_line_and_the_config():
    """evaluate.py takes its TTA choices from the config schema, the one list of them."""
    for tta in TTA_CHOICES:
        assert evaluate_cli.parse_args(["--checkpoint", "x", "--tta", tta]).tta == tta
        assert load_config(None, [f"train.test_tta={tta}"]).train.test_tta == tta


def test_the_data_is_looked_up_in_the_order_training_uses(
    tiny_cifar_archive, tmp_path, monkeypatch
):
    """--data-dir, then the run's data.path, then $CIFAR10_DIR: train.py's order."""
    from resnet_tf.config import Config
    from resnet_tf.evaluation.sources import load_images

    missing = tmp_path / "not-here"
    run_config = Config()
    run_config.data.path = str(tiny_cifar_archive)
    monkeypatch.setenv("CIFAR10_DIR", str(missing))
    assert load_images(None, "test", run_config).source == str(tiny_cifar_archive)
    with pytest.raises(DataError, match="not-here"):
        load_images(None, "test", None)  # no run: the environment variable
    run_config.data.path = str(missing)
    assert load_images(str(tiny_cifar_archive), "test", run_config).source == str(
        tiny_cifar_archive
    )
