"""Models a run starts from or learns from: `model.init_from` and `train.distill.teacher`.

Both name a .keras checkpoint or a run folder (its best.keras); a problem with either is one
ConfigError naming the key, the file and what is wrong with it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import keras

from resnet_tf.config import Config
from resnet_tf.errors import ConfigError, ModelFileError, RunDirError
from resnet_tf.models.saved import check_classifier, load_model_file
from resnet_tf.runs.run_dir import saved_model_of


def resolve_saved_model(path: str, key: str) -> Path:
    """The absolute path of the .keras file `path` means (a run folder: its best.keras)."""
    try:
        return saved_model_of(path).resolve()
    except RunDirError as error:
        raise ConfigError(f"{key}: {error}") from None


def load_saved_classifier(path: str, key: str, num_classes: int) -> keras.Model:
    """The saved model at `path`, checked to map 32x32 RGB images to `num_classes` logits."""
    file = resolve_saved_model(path, key)
    try:
        model = load_model_file(file)
        check_classifier(model, file, num_classes)
    except ModelFileError as error:
        raise ConfigError(f"{key}: {error}") from None
    return model


def file_sha256(path: Path) -> str:
    """The file's SHA-256, hex: what a run records to know its teacher again on resume."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pin_saved_models(config: Config) -> Config:
    """The config a new run records: `model.init_from` and the teacher as absolute file paths
    (so resume and evaluation work from any directory) and the teacher's SHA-256."""
    model, distill = config.model, config.train.distill
    if model.init_from is not None:
        model = dataclasses.replace(
            model, init_from=str(resolve_saved_model(model.init_from, "model.init_from"))
        )
    if distill.teacher is not None:
        teacher = resolve_saved_model(distill.teacher, "train.distill.teacher")
        if not teacher.is_file():
            raise ConfigError(f"train.distill.teacher: {teacher}: model file not found")
        digest = file_sha256(teacher)
        if distill.teacher_sha256 not in (None, digest):
            raise ConfigError(
                f"train.distill.teacher_sha256: {teacher} has SHA-256 {digest}, "
                f"but the config expects {distill.teacher_sha256}"
            )
        distill = dataclasses.replace(distill, teacher=str(teacher), teacher_sha256=digest)
    train = dataclasses.replace(config.train, distill=distill)
    return dataclasses.replace(config, model=model, train=train)


def check_teacher_unchanged(config: Config) -> None:
    """On resume: the teacher file must be the one the run started with (its SHA-256)."""
    distill = config.train.distill
    if distill.teacher is None:
        return
    teacher = Path(distill.teacher)
    if not teacher.is_file():
        raise ConfigError(
            f"train.distill.teacher: {teacher}: the run's teacher is gone; put it back to resume"
        )
    digest = file_sha256(teacher)
    if digest != distill.teacher_sha256:
        raise ConfigError(
            f"train.distill.teacher: {teacher} changed since the run started (SHA-256 {digest}, "
            f"recorded {distill.teacher_sha256}); a different teacher would change the run: "
            "restore the file or start a new run"
        )
