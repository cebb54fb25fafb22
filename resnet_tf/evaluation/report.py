"""The evaluation report: one dict of numbers (report.json), the same for people (report.md),
and the few lines a terminal shows.

The dict is built once from the logits, so the three forms can never disagree.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np

from resnet_tf.errors import EvaluationError
from resnet_tf.evaluation import metrics
from resnet_tf.evaluation.tta import TTA_METHODS
from resnet_tf.runs.files import atomic_write_text, write_json

MISTAKES_SHOWN = 24
REPORT_FILES = ("report.json", "report.md")


def build_report(
    *,
    checkpoint: Path,
    run_config: Path | None,
    source: str,
    model_format: str = "keras",
    kind: str,
    split: str,
    normalization: str,
    batch_size: int,
    labels: np.ndarray,
    class_names: list[str],
    logits: np.ndarray,
    seconds: float,
    tta: str,
    tta_logits: np.ndarray | None,
    tta_seconds: float,
    figures: dict[str, str],
    tta_fraction: float = 1.0,
    output_dir: Path,
) -> dict:
    """Every number of report.json, in its order; `tta_logits` is None without TTA."""
    labels = labels.astype(np.int64)
    exported = model_format != "keras"
    predictions = logits.argmax(axis=1)
    matrix = metrics.confusion_matrix(labels, predictions, len(class_names))
    report = {
        "checkpoint": str(checkpoint),
        "format": model_format,
        "run_config": str(run_config) if run_config else None,
        "data": {"source": source, "kind": kind, "split": split},
        # An exported model takes raw pixels and normalizes them itself.
        "normalization": "inside the model" if exported else normalization,
        "normalization_from": "the exported model"
        if exported
        else ("run config" if run_config else "--normalization"),
        "images": int(len(labels)),
        "batch_size": batch_size,
        **metrics.headline_metrics(logits, labels),
        "ece_bins": metrics.ECE_BINS,
        "seconds": round(seconds, 3),
        "images_per_s": round(len(labels) / seconds, 1),
        "per_class": metrics.per_class_metrics(matrix, class_names),
        "most_confused": metrics.most_confused_pairs(matrix, class_names),
        "class_names": class_names,
        "confusion_matrix": matrix.tolist(),
        "tta": None,
    }
    if tta_logits is not None:
        report["tta"] = {
            "name": tta,
            "method": TTA_METHODS[tta]
            + ("" if tta_fraction >= 1 else f", on the {tta_fraction:.0%} least confident images"),
            "fraction": tta_fraction,
            **metrics.headline_metrics(tta_logits, labels),
            "images_per_s": round(len(labels) / tta_seconds, 1),
        }
    confidence = metrics.softmax(logits).max(axis=1)
    mistakes = np.flatnonzero(predictions != labels)
    mistakes = mistakes[np.argsort(-confidence[mistakes], kind="stable")][:MISTAKES_SHOWN]
    report["confident_mistakes"] = [
        {
            "index": int(i),
            "true": class_names[labels[i]],
            "predicted": class_names[predictions[i]],
            "confidence": float(confidence[i]),
        }
        for i in mistakes
    ]
    report["figures"] = figures
    report["output_dir"] = str(output_dir)
    return report


def write_report(report: dict) -> None:
    """report.json and report.md in the report's output folder, each written atomically."""
    output_dir = Path(report["output_dir"])
    json_file, markdown_file = REPORT_FILES
    write_json(output_dir / json_file, report)
    atomic_write_text(output_dir / markdown_file, format_markdown(report))


def check_output_dir(output_dir: Path, files: list[str]) -> None:
    """Refuse a report folder that cannot take `files`, before any evaluation runs (a failure
    at the end would throw the whole evaluation away).

    The folder may not exist yet (it is made with its parents): then its nearest existing
    parent must be a folder where files can be created, which is tried, not guessed from the
    mode bits (root may write anywhere except on a read-only file system).
    """
    where = f"{output_dir}: cannot write the report there"
    if output_dir.exists() and not output_dir.is_dir():
        raise EvaluationError(f"{where}: it is a file, expected a folder")
    for name in files:
        if (output_dir / name).is_dir():
            raise EvaluationError(f"{where}: {output_dir / name} is a folder, expected a file")
    existing = output_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise EvaluationError(f"{where}: {existing} is a file, expected a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".resnet_tf_probe.", suffix=".tmp")
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise EvaluationError(f"{where}: cannot create files in {existing} ({reason})") from None
    os.close(fd)
    os.unlink(probe)


def _pct(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2%}"


def format_for_terminal(report: dict) -> str:
    """The few lines printed to the terminal."""
    lines = [
        f"{report['checkpoint']} ({report.get('format', 'keras')}) on "
        f"{report['data']['kind']} {report['data']['split']}: "
        f"{report['images']:,} images, {report['images_per_s']:,.0f} images/s "
        f"(normalization {report['normalization']})",
        f"  top-1 {_pct(report['top1_accuracy'])}  top-5 {_pct(report['top5_accuracy'])}  "
        f"loss {report['mean_loss']:.4f}  ECE {report['ece']:.4f}",
    ]
    if report["tta"]:
        tta = report["tta"]
        lines.append(
            f"  with {tta['name']} TTA: top-1 {_pct(tta['top1_accuracy'])}  "
            f"top-5 {_pct(tta['top5_accuracy'])}  loss {tta['mean_loss']:.4f}  "
            f"ECE {tta['ece']:.4f}"
        )
    lines.append(f"  report: {Path(report['output_dir']) / 'report.md'} (+ report.json, figures)")
    return "\n".join(lines)


def format_markdown(report: dict) -> str:
    """report.md: the same numbers as report.json, for people."""
    data = report["data"]
    lines = [
        f"# Evaluation of `{report['checkpoint']}`",
        "",
        f"- model format: {report.get('format', 'keras')}",
        f"- data: {data['kind']} `{data['source']}`, split `{data['split']}`, "
        f"{report['images']:,} images",
        f"- normalization: {report['normalization']} (from {report['normalization_from']})",
        f"- speed: {report['images_per_s']:,.1f} images/s "
        f"({report['seconds']:.2f} s, batch size {report['batch_size']})",
        "",
        "| metric | without TTA |"
        + (f" with {report['tta']['name']} TTA |" if report["tta"] else ""),
        "|---|---|" + ("---|" if report["tta"] else ""),
    ]
    for key, label, as_pct in (
        ("top1_accuracy", "top-1 accuracy", True),
        ("top5_accuracy", "top-5 accuracy", True),
        ("mean_loss", "mean loss", False),
        ("ece", f"ECE ({report['ece_bins']} bins)", False),
    ):
        values = [report[key]] + ([report["tta"][key]] if report["tta"] else [])
        cells = [_pct(v) if as_pct else f"{v:.4f}" for v in values]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Per class",
        "",
        "Accuracy is the share of the class's images classified correctly (= recall); "
        "precision is n/a for a class the model never predicted.",
        "",
        "| class | images | accuracy | precision | recall |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in report["per_class"]:
        lines.append(
            f"| {row['class']} | {row['images']} | {_pct(row['accuracy'])} | "
            f"{_pct(row['precision'])} | {_pct(row['recall'])} |"
        )
    lines += ["", "## Most confused (true -> predicted)", ""]
    if report["most_confused"]:
        lines += ["| true | predicted | images | share of true class |", "|---|---|---:|---:|"]
        for pair in report["most_confused"]:
            lines.append(
                f"| {pair['true']} | {pair['predicted']} | {pair['count']} | "
                f"{_pct(pair['share_of_true_class'])} |"
            )
    else:
        lines.append("No misclassified images.")
    figures = report.get("figures", {})
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{name}]({file})" for name, file in figures.items()]
    return "\n".join(lines) + "\n"
