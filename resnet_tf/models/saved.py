"""Loading a whole saved model (.keras): the one place that turns a bad file into one line.

Training's `model.init_from` and `train.distill.teacher`, pruning and evaluation all read
checkpoints through `load_model_file`, so a truncated, weights-only or foreign file gets the
same clear message everywhere.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras
import numpy as np

from resnet_tf.errors import ModelFileError

INPUT_SHAPE = (32, 32, 3)


def load_model_file(path: Path) -> keras.Model:
    """The model saved in `path`, uncompiled; a ModelFileError names the file and the reason.

    Keras' safe mode stays on: a file holding Python code (a Lambda layer) is refused.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: model file not found")
    if path.name.endswith(".weights.h5"):
        raise ModelFileError(
            f"{path}: a weights-only file; a whole model saved as .keras is needed "
            "(e.g. outputs/<run>/checkpoints/best.keras)"
        )
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path}: not a .keras model archive (not a zip file: truncated, corrupt or "
            "another kind of file)"
        )
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for bad files
        raise ModelFileError(
            f"{path}: cannot load as a Keras model ({first_line(error)})"
        ) from None


def check_classifier(model: keras.Model, path: Path, num_classes: int) -> None:
    """Refuse a model that does not map 32x32 RGB images to `num_classes` logits."""
    try:
        outputs = model(np.zeros((1, *INPUT_SHAPE), np.float32), training=False)
    except Exception as error:
        raise ModelFileError(
            f"{path}: the model does not take 32x32 RGB images ({first_line(error)})"
        ) from None
    shape = tuple(getattr(outputs, "shape", ()))
    if shape != (1, num_classes):
        found = shape[-1] if len(shape) == 2 else f"output shape {shape}"
        raise ModelFileError(f"{path}: expected a model with {num_classes} outputs, found {found}")


def first_line(error: BaseException) -> str:
    """The first line of an error's message, at most 200 characters, for a one-line error."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line if len(line) <= 200 else line[:197] + "..."
