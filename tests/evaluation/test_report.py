"""The report of made-up logits: its dict, its markdown and its figures, without a model."""

import json

import numpy as np

from resnet_tf.evaluation import figures
from resnet_tf.evaluation.report import (
    build_report,
    format_for_terminal,
    format_markdown,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CLASSES = ["a", "b", "c"]


def made_up_report(tmp_path, logits, labels, tta_logits=None):
    return build_report(
        checkpoint=tmp_path / "m.keras",
        run_config=None,
        source="somewhere",
        kind="image_folder",
        split="test",
        normalization="none",
        batch_size=2,
        labels=labels,
        class_names=CLASSES,
        logits=logits,
        seconds=0.5,
        tta="none" if tta_logits is None else "flip",
        tta_logits=tta_logits,
        tta_seconds=1.0,
        figures=dict(figures.FIGURE_FILES),
        output_dir=tmp_path / "eval",
    )


def test_report_keys_numbers_and_text(tmp_path):
    logits = np.array([[3.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0], [3.0, 0, 0]], np.float32)
    labels = np.array([0, 1, 2, 2])
    report = made_up_report(tmp_path, logits, labels, tta_logits=logits)
    assert list(report)[:9] == [
        "checkpoint", "format", "run_config", "data", "normalization", "normalization_from",
        "images", "batch_size", "top1_accuracy",
    ]  # fmt: skip
    assert report["format"] == "keras"
    assert list(report)[-4:] == ["tta", "confident_mistakes", "figures", "output_dir"]
    assert report["top1_accuracy"] == 0.75 and report["images_per_s"] == 8.0
    assert report["normalization_from"] == "--normalization" and report["run_config"] is None
    assert report["tta"]["name"] == "flip" and report["tta"]["images_per_s"] == 4.0
    assert report["confusion_matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert [(m["index"], m["true"], m["predicted"]) for m in report["confident_mistakes"]] == [
        (3, "c", "a")
    ]
    assert "| top-1 accuracy | 75.00% | 75.00% |" in format_markdown(report)
    assert "with flip TTA: top-1 75.00%" in format_for_terminal(report)

    images = np.zeros((4, 32, 32, 3), np.uint8)
    figures.draw_report_figures(report, images, tmp_path / "eval")
    write_report(report)
    for name in figures.FIGURE_FILES.values():
        assert (tmp_path / "eval" / name).read_bytes().startswith(PNG_MAGIC), name
    assert json.loads((tmp_path / "eval" / "report.json").read_text())["images"] == 4
    assert (tmp_path / "eval" / "report.md").read_text() == format_markdown(report)


def test_a_report_without_mistakes_says_so_and_draws_one_blank_row(tmp_path):
    """No mistakes: the text says so, and the figure is one row holding no image at all."""
    from matplotlib.image import imread

    logits = np.eye(3, dtype=np.float32)
    report = made_up_report(tmp_path, logits, np.arange(3))
    assert report["tta"] is None and report["confident_mistakes"] == []
    assert "No misclassified images." in format_markdown(report)
    black = np.zeros((3, 32, 32, 3), np.uint8)  # would show as dark squares if drawn
    figures.draw_report_figures(report, black, tmp_path / "out")
    pixels = imread(tmp_path / "out" / "confident_mistakes.png")[..., :3]
    assert pixels.shape[:2] == (280, 1200)  # one row of six at 100 dpi
    dark = (pixels.mean(axis=-1) < 0.2).mean()
    assert dark < 0.01, dark  # only the title and the note's text
    report["confident_mistakes"] = [
        {"index": i, "true": "a", "predicted": "b", "confidence": 0.9} for i in range(3)
    ]
    figures.draw_report_figures(report, black, tmp_path / "drawn")
    pixels = imread(tmp_path / "drawn" / "confident_mistakes.png")[..., :3]
    assert (pixels.mean(axis=-1) < 0.2).mean() > 0.05  # the same call draws images it is given
