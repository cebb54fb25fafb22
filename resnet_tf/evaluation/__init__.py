"""Evaluation of a trained model: the front door of evaluate.py and of training's test score.

evaluate_checkpoint: checkpoint -> images -> logits -> report.json, report.md and figures.
evaluate_model:      the same for a model already loaded (deploy's exported models come here).
score_checkpoint:    a saved model's accuracy and loss on given images (training's test score).

Both compute logits through the one path of `tta.predict`, so evaluate.py's figures and the
test score in metrics.json agree exactly for the same checkpoint, images, TTA and batch size.
The modules: metrics (numpy), tta (logits), sources (inputs), report (text), figures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from resnet_tf import data as data_lib
from resnet_tf.config.choices import TTA_CHOICES
from resnet_tf.errors import EvaluationError
from resnet_tf.evaluation import sources
from resnet_tf.evaluation.metrics import accuracy_and_loss
from resnet_tf.evaluation.report import (
    REPORT_FILES,
    build_report,
    check_output_dir,
    format_for_terminal,
    write_report,
)
from resnet_tf.evaluation.tta import (
    predict,
    traced_inference,
    tta_level,
    with_views_where_unsure,
)
from resnet_tf.startup import device_line

__all__ = [
    "check_options",
    "check_report_folder",
    "evaluate_checkpoint",
    "evaluate_model",
    "format_for_terminal",
    "score_checkpoint",
    "sources",
]


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    *,
    data_dir: str | None = None,
    split: str = "test",
    normalization: str | None = None,
    output_dir: str | os.PathLike | None = None,
    batch_size: int = 500,
    tta: str = "none",
    tta_fraction: float = 1.0,
) -> dict:
    """Evaluate a checkpoint, write report.json, report.md and the figures; return the report.

    Every input is checked before the first forward pass, so a bad one fails in seconds.
    """
    check_options(batch_size, tta, tta_fraction)
    found = sources.resolve_checkpoint(checkpoint)
    output_dir = Path(output_dir) if output_dir is not None else found.default_output_dir
    check_report_folder(output_dir)
    normalization = sources.resolve_normalization(found, normalization)
    model = traced_inference(sources.load_checkpoint(found.path))
    data = sources.load_images(data_dir, split, found.config)
    print(device_line("evaluation"), flush=True)
    return evaluate_model(
        model,
        checkpoint=found.path,
        run_config=found.run.config if found.run is not None else None,
        data=data,
        split=split,
        normalization=normalization,
        output_dir=output_dir,
        batch_size=batch_size,
        tta=tta,
        tta_fraction=tta_fraction,
    )


def check_options(batch_size: int, tta: str, tta_fraction: float = 1.0) -> None:
    """The options an evaluation takes besides its inputs, checked before anything loads."""
    if batch_size <= 0:
        raise EvaluationError(f"--batch-size must be positive, found {batch_size}")
    if tta not in TTA_CHOICES:
        raise EvaluationError(f"--tta must be one of {', '.join(TTA_CHOICES)}, found {tta!r}")
    if not 0 < tta_fraction <= 1:
        raise EvaluationError(f"--tta-fraction must be in (0, 1], found {tta_fraction}")
    if tta_fraction != 1 and tta == "none":
        raise EvaluationError(
            f"--tta-fraction: the share of images given the --tta views, but --tta is none, "
            f"found {tta_fraction}; add --tta flip or flip_translate"
        )


def check_report_folder(output_dir: Path) -> None:
    """An EvaluationError now if report.json, report.md or a figure could not be written there."""
    from resnet_tf.evaluation.figures import FIGURE_FILES

    check_output_dir(output_dir, [*REPORT_FILES, *FIGURE_FILES.values()])


def evaluate_model(
    model: Callable,
    *,
    checkpoint: Path,
    run_config: Path | None,
    data: sources.LabelledImages,
    split: str,
    normalization: str,
    output_dir: Path,
    batch_size: int,
    tta: str,
    tta_fraction: float = 1.0,
    model_format: str = "keras",
) -> dict:
    """The report of any model called as `model(images, training=False) -> logits` on images
    normalized as `normalization` says; written to output_dir and returned.

    An exported model (resnet_tf.deploy) comes here too, with normalization "none" and its own
    `model_format`: it normalizes inside, and the report says so.
    """
    from resnet_tf.evaluation import figures  # matplotlib only when a report is drawn

    dataset = data_lib.make_eval_dataset(
        data.images, data.labels, batch_size=batch_size, normalization=normalization
    )
    logits, seconds = predict(model, dataset)
    tta_logits, tta_seconds = None, 0.0
    if tta != "none":
        # The views other than the image itself; its logits are reused, as is their time.
        tta_logits, view_seconds, _ = views_logits(
            model, data.images, data.labels, logits, normalization, batch_size, tta, tta_fraction
        )
        tta_seconds = seconds + view_seconds
    report = build_report(
        checkpoint=checkpoint,
        run_config=run_config,
        model_format=model_format,
        source=data.source,
        kind=data.kind,
        split=split,
        normalization=normalization,
        batch_size=batch_size,
        labels=data.labels,
        class_names=list(data_lib.CLASS_NAMES),
        logits=logits,
        seconds=seconds,
        tta=tta,
        tta_fraction=tta_fraction,
        tta_logits=tta_logits,
        tta_seconds=tta_seconds,
        figures=dict(figures.FIGURE_FILES),
        output_dir=output_dir,
    )
    figures.draw_report_figures(report, data.images, output_dir)
    write_report(report)
    return report


def score_checkpoint(
    path: str | os.PathLike,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    normalization: str,
    tta: str,
    batch_size: int,
    tta_fraction: float = 1.0,
) -> dict[str, float]:
    """accuracy, loss, images, seconds (of the forward passes) and tta_images (those given
    the TTA views) of a saved model.

    The checkpoint is loaded as a user would (plain keras.models.load_model), so the score is
    what anyone gets from the file, and scored through the same TTA path as evaluate.py.
    """
    tta_level(tta)  # an unknown TTA fails before the model loads
    model = traced_inference(keras.models.load_model(path))
    dataset = data_lib.make_eval_dataset(
        images, labels, batch_size=batch_size, normalization=normalization
    )
    logits, seconds = predict(model, dataset)
    tta_images = 0
    if tta != "none":
        logits, view_seconds, tta_images = views_logits(
            model, images, labels, logits, normalization, batch_size, tta, tta_fraction
        )
        seconds += view_seconds
    return {**accuracy_and_loss(logits, labels), "seconds": seconds, "tta_images": tta_images}


def views_logits(
    model: Callable,
    images: np.ndarray,
    labels: np.ndarray,
    plain: np.ndarray,
    normalization: str,
    batch_size: int,
    tta: str,
    fraction: float,
) -> tuple[np.ndarray, float, int]:
    """(logits, seconds, images given the views) at TTA level `tta`: every image's views, or
    with fraction < 1 those of the least confident images only (the rest keep their `plain`
    logits, the views' time then counts only theirs)."""

    def views_of(indices: np.ndarray | slice) -> np.ndarray:
        dataset = data_lib.make_eval_dataset(
            images[indices], labels[indices], batch_size=batch_size, normalization=normalization
        )
        return predict(model, dataset, tta, plain=plain[indices])[0]

    started = time.perf_counter()
    if fraction >= 1:
        logits, count = views_of(slice(None)), len(plain)  # a view of the arrays, no copy
    else:
        logits, count = with_views_where_unsure(plain, fraction, views_of)
    return logits, time.perf_counter() - started, count
