"""evaluate.py on an exported model: the same report as for a checkpoint, from its own runtime.

The evaluation stage calls a model as `model(images, training=False) -> logits` on normalized
images. An exported model takes raw pixels and normalizes inside, so it is evaluated on images
with normalization "none" (pixels / 255), which `PixelModel` turns back into the exact uint8
pixels: flips and reflected shifts (the TTA views) move pixels and commute with the per-channel
normalization, so every TTA level means the same as for the checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from resnet_tf import evaluation
from resnet_tf.deploy.runtimes import Classifier, load_exported
from resnet_tf.errors import DeployError
from resnet_tf.runs.records import read_config
from resnet_tf.runs.run_dir import run_of_export


class PixelModel:
    """An exported model called as evaluation calls a Keras model."""

    def __init__(self, classifier: Classifier):
        self.classifier = classifier

    def __call__(self, images, training: bool = False) -> np.ndarray:
        pixels = np.clip(np.round(np.asarray(images) * 255.0), 0, 255).astype(np.uint8)
        return self.classifier.logits(pixels)


def default_output_dir(path: Path) -> Path:
    """eval-<name>/ beside the exported model, so each format's report has its own folder."""
    name = path.name if path.is_dir() else path.stem
    return path.parent / f"eval-{name}"


def evaluate_exported(
    path: str | os.PathLike,
    *,
    data_dir: str | None = None,
    split: str = "test",
    normalization: str | None = None,
    output_dir: str | os.PathLike | None = None,
    batch_size: int = 500,
    tta: str = "none",
    tta_fraction: float = 1.0,
    trust_saved_model: bool = False,
) -> dict:
    """evaluate.py's report (report.json, report.md, figures) of an exported model; a
    SavedModel whose ops are outside the allow-list only with `trust_saved_model`."""
    evaluation.check_options(batch_size, tta, tta_fraction)
    path = Path(os.path.abspath(Path(path).expanduser()))
    if normalization is not None:
        raise DeployError(
            f"{path}: an exported model normalizes its input itself; drop --normalization"
        )
    output_dir = Path(output_dir) if output_dir is not None else default_output_dir(path)
    evaluation.check_report_folder(output_dir)
    classifier = load_exported(path, trust_saved_model=trust_saved_model)
    run = run_of_export(path)
    return evaluation.evaluate_model(
        PixelModel(classifier),
        checkpoint=path,
        run_config=run.config if run is not None else None,
        data=evaluation.sources.load_images(
            data_dir, split, read_config(run) if run is not None else None
        ),
        split=split,
        normalization="none",
        output_dir=output_dir,
        batch_size=batch_size,
        tta=tta,
        tta_fraction=tta_fraction,
        model_format=classifier.format,
    )
