"""What an evaluation reads: the checkpoint (and its run, if any), its normalization, the images.

Each input is checked here, before any long work, and every problem is one EvaluationError
(or the DataError / RunDirError of the module that found it) naming the path and what was wrong.
Where the run's files lie is asked of resnet_tf.runs, never spelled here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from resnet_tf import data as data_lib
from resnet_tf.config import Config
from resnet_tf.errors import EvaluationError, ModelFileError
from resnet_tf.models.saved import check_classifier, load_model_file
from resnet_tf.runs.records import read_config
from resnet_tf.runs.run_dir import RunPaths, eval_dir_of, run_of_checkpoint, saved_model_of

CIFAR_SPLITS = ("test", "train")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file and, when it lies in a run folder, that run and its config."""

    path: Path
    run: RunPaths | None = None
    config: Config | None = None

    @property
    def default_output_dir(self) -> Path:
        """<run>/eval for a run's checkpoint (eval-<name>/ beside a pruned one), else eval/
        beside the checkpoint."""
        return (
            eval_dir_of(self.path, self.run) if self.run is not None else self.path.parent / "eval"
        )


class LabelledImages(NamedTuple):
    images: np.ndarray  # uint8 NHWC, 32x32 RGB
    labels: np.ndarray
    source: str  # what was read, for the report
    kind: str  # "cifar10" or "image_folder"


def resolve_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """The checkpoint file and its run; a run folder means its best checkpoint."""
    file = saved_model_of(path)
    if not file.exists():
        raise EvaluationError(f"{file}: checkpoint not found")
    run = run_of_checkpoint(file)
    return Checkpoint(file, run, read_config(run) if run is not None else None)


def load_checkpoint(path: Path) -> keras.Model:
    """Load a whole saved model and check it maps 32x32 RGB images to 10 CIFAR-10 logits."""
    try:
        model = load_model_file(path)
        check_classifier(model, path, data_lib.NUM_CLASSES)
    except ModelFileError as error:
        raise EvaluationError(str(error)) from None
    return model


def resolve_normalization(checkpoint: Checkpoint, given: str | None) -> str:
    """The normalization the model was trained with: from its run's config, never guessed."""
    if checkpoint.run is None or checkpoint.config is None:
        if given is None:
            raise EvaluationError(
                f"{checkpoint.path}: not inside a run folder (no ../../config.yaml), so the "
                "normalization it was trained with is unknown; pass --normalization "
                "cifar10, imagenet or none"
            )
        return given
    trained_with = checkpoint.config.data.normalization
    if given is not None and given != trained_with:
        raise EvaluationError(
            f"{checkpoint.run.config}: the model was trained with normalization "
            f"'{trained_with}', but --normalization {given} was given; drop the option"
        )
    return trained_with


def load_images(data_dir: str | None, split: str, run_config: Config | None) -> LabelledImages:
    """CIFAR-10 or a folder of class folders, with their labels.

    The source is looked up as training looks it up: --data-dir, else the run config's
    data.path, else $CIFAR10_DIR (then Keras' download, in load_cifar10).
    """
    source = data_dir or (run_config.data.path if run_config is not None else None)
    source = source or os.environ.get(data_lib.DATA_DIR_ENV) or None
    if source is not None:
        source = os.path.abspath(Path(source).expanduser())
    if source is not None and not data_lib.is_cifar10_source(source):
        images, labels = data_lib.load_image_folder(source, split)
        return LabelledImages(images, labels, str(source), "image_folder")
    if split not in CIFAR_SPLITS:
        raise EvaluationError(
            f"--split {split}: CIFAR-10 has the splits {', '.join(CIFAR_SPLITS)} only"
        )
    (x_train, y_train), (x_test, y_test) = data_lib.load_cifar10(source)
    images, labels = (x_test, y_test) if split == "test" else (x_train, y_train)
    return LabelledImages(images, labels, str(source or "keras.datasets.cifar10"), "cifar10")
