"""Export a checkpoint to one format, check the file against the checkpoint, then put it in place.

The steps, each failing with one DeployError line before anything is left behind:
  1. resolve the checkpoint (a run folder means its best.keras), its normalization and the
     output path (an existing one is refused unless `overwrite`);
  2. build the serving model (serving.py) and export it with Keras' `Model.export` to a
     temporary name beside the output (INT8: calibrated on images of the *training* split);
  3. load that file with its own runtime and compare it with the checkpoint on test images: a
     float format must give the same top-1 on every one (up to exact ties) and probabilities
     within its tolerance; INT8 reports its agreement;
  4. rename it to the output path.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resnet_tf import data as data_lib
from resnet_tf.deploy import serving
from resnet_tf.deploy.agreement import Agreement, check_agreement, compare
from resnet_tf.deploy.formats import ExportFormat, export_format, runtime_missing
from resnet_tf.deploy.runtimes import KerasClassifier, load_exported
from resnet_tf.errors import DeployError
from resnet_tf.evaluation import sources

DEFAULT_CHECK_IMAGES = 500
DEFAULT_CALIBRATION_IMAGES = 300


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    checkpoint: Path
    normalization: str
    size_bytes: int
    seconds: float
    calibration_images: int  # 0 for the float formats
    check: Agreement

    def summary(self) -> str:
        check = self.check
        return (
            f"{self.path} ({self.format}, {self.size_bytes / 2**20:.2f} MiB, "
            f"{self.seconds:.1f} s): on {check.images} test images top-1 agreement with the "
            f"checkpoint {check.top1_agreement:.2%}, max |probability difference| "
            f"{check.max_probability_difference:.2g}, top-1 {check.exported_accuracy:.2%} "
            f"(checkpoint {check.reference_accuracy:.2%})"
        )


def export_checkpoint(
    checkpoint: str | os.PathLike,
    format: str,
    output: str | os.PathLike | None = None,
    *,
    data_dir: str | None = None,
    normalization: str | None = None,
    calibration_images: int = DEFAULT_CALIBRATION_IMAGES,
    check_images: int = DEFAULT_CHECK_IMAGES,
    overwrite: bool = False,
    seed: int = 0,
) -> ExportResult:
    """Export `checkpoint` (a .keras file or a run folder) as `format`; see the module doc."""
    started = time.perf_counter()
    fmt = export_format(format)
    if check_images < 1 or calibration_images < 1:
        raise DeployError(
            "--check-images and --calibration-images must be at least 1, found "
            f"{check_images} and {calibration_images}"
        )
    found = sources.resolve_checkpoint(checkpoint)
    normalization = sources.resolve_normalization(found, normalization)
    target = output_path(fmt, found, output, overwrite)
    _require_runtime(fmt, target)
    model = serving.float32_copy(sources.load_checkpoint(found.path))

    test = sources.load_images(data_dir, "test", found.config)
    check_x, check_y = test.images[:check_images], test.labels[:check_images]
    calibration = None
    if fmt.tolerance is None:
        calibration = calibration_set(data_dir, found, calibration_images, seed)

    temporary = target.with_name(f".{target.name}.tmp{os.getpid()}{_suffix(fmt)}")
    try:
        _write(
            fmt,
            serving.serving_model(model, normalization, with_logits=_has_logits(fmt)),
            temporary,
            calibration,
            found.path,
        )
        agreement = compare(
            KerasClassifier(model, normalization, found.path),
            load_exported(temporary),
            check_x,
            check_y,
            tolerance=fmt.tolerance or 0.0,
        )
        check_agreement(fmt, agreement, found.path)
        _move_into_place(temporary, target, overwrite)
    finally:
        _remove(temporary)
    return ExportResult(
        path=target,
        format=fmt.name,
        checkpoint=found.path,
        normalization=normalization,
        size_bytes=size_of(target),
        seconds=time.perf_counter() - started,
        calibration_images=0 if calibration is None else len(calibration),
        check=agreement,
    )


def output_path(
    fmt: ExportFormat, found: sources.Checkpoint, output: str | os.PathLike | None, overwrite: bool
) -> Path:
    """The file (or SavedModel folder) to write, checked before any long work."""
    if output is None:
        folder = found.run.export if found.run is not None else found.path.parent
        target = fmt.default_path(folder, found.path.stem)
    else:
        target = Path(output).expanduser()
    target = Path(os.path.abspath(target))
    suffix = _suffix(fmt)
    if target.suffix.lower() != suffix and (
        suffix or target.suffix.lower() in (".tflite", ".onnx", ".keras")
    ):
        expected = f"a path ending in {suffix}" if suffix else "a folder name (no file suffix)"
        raise DeployError(f"--output {target}: format {fmt.name} needs {expected}")
    if target.exists() and not overwrite:
        raise DeployError(f"{target}: exists; choose another --output or pass --overwrite")
    if target.exists() and target.is_dir() != fmt.is_folder:
        kind = "a folder" if target.is_dir() else "a file"
        raise DeployError(f"{target}: is {kind}; --overwrite replaces only a {fmt.name} export")
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DeployError(f"{parent}: cannot create the output folder ({error.strerror})") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DeployError(f"{parent}: output folder is not writable")
    return target


def calibration_set(
    data_dir: str | None, found: sources.Checkpoint, count: int, seed: int
) -> np.ndarray:
    """`count` uint8 images drawn at random from the run's training split (never validation
    or test images; the whole training set for a checkpoint outside a run)."""
    source = sources.load_images(data_dir, "train", found.config)
    if source.kind == "image_folder" and not (Path(source.source) / "train").is_dir():
        raise DeployError(
            f"{source.source}: INT8 calibration needs training images, a train/ folder of "
            "class folders; found none"
        )
    images, labels = source.images, source.labels
    if found.config is not None and source.kind == "cifar10":
        data = found.config.data
        splits = data_lib.make_splits(
            images,
            labels,
            subset=data.subset,
            val_size=data.val_size,
            seed=found.config.runtime.seed,
        )
        images = splits.x_train
    if count > len(images):
        raise DeployError(
            f"--calibration-images {count}: the training split of {source.source} has only "
            f"{len(images)} images"
        )
    chosen = np.random.default_rng(seed).choice(len(images), size=count, replace=False)
    return images[np.sort(chosen)]


def size_of(path: Path) -> int:
    """Bytes of a file, or of every file in a folder (a SavedModel)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _suffix(fmt: ExportFormat) -> str:
    return "" if fmt.is_folder else "." + fmt.file_suffix.rsplit(".", 1)[1]


def _has_logits(fmt: ExportFormat) -> bool:
    return fmt.name in ("saved_model", "onnx")


def _require_runtime(fmt: ExportFormat, target: Path) -> None:
    """Fail before the long work when the runtime that checks the file is missing."""
    import importlib.util

    needed = [fmt.runtime] + (["tf2onnx"] if fmt.name == "onnx" else [])
    for name in needed:
        if importlib.util.find_spec(name) is None:
            raise runtime_missing(name, target)


def _write(fmt: ExportFormat, model, path: Path, calibration, checkpoint: Path) -> None:
    import tensorflow as tf

    builtins = tf.lite.OpsSet.TFLITE_BUILTINS  # never Flex ops: the interpreter lacks them
    options: dict = {}
    if fmt.name == "saved_model":
        keras_format = "tf_saved_model"
    elif fmt.name == "onnx":
        keras_format = "onnx"
    else:
        keras_format = "litert"
        options["target_spec"] = {"supported_ops": [builtins]}
        if fmt.name == "litert_fp16":
            options["optimizations"] = [tf.lite.Optimize.DEFAULT]
            options["target_spec"]["supported_types"] = [tf.float16]
        elif fmt.name == "litert_int8":

            def representative_images():
                for image in calibration:
                    yield [image[None]]

            options.update(
                optimizations=[tf.lite.Optimize.DEFAULT],
                representative_dataset=representative_images,
                # Integer-only: an op without an int8 kernel fails the export, no float fallback.
                target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
                inference_input_type=tf.uint8,
                inference_output_type=tf.float32,
            )
    model(np.zeros((1, *serving.IMAGE_SHAPE), np.uint8))  # Keras' ONNX path wants a called model
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the ONNX path warns about numpy 2 aliases
            model.export(str(path), format=keras_format, verbose=False, **options)
    except Exception as error:
        text = " ".join(str(error).split())
        raise DeployError(f"{checkpoint}: cannot export as {fmt.name}: {text[:300]}") from None


def _move_into_place(temporary: Path, target: Path, overwrite: bool) -> None:
    """Rename the checked file to its name; without `overwrite`, never over one that appeared
    meanwhile (a second export to the same name): a file is hard-linked, which fails if the
    name exists, and a folder is renamed, which fails onto a non-empty one."""
    if overwrite and target.exists():
        _remove(target)
    try:
        if temporary.is_dir():
            os.rename(temporary, target)
        else:
            _link_or_rename(temporary, target)
    except FileExistsError:
        raise DeployError(f"{target}: appeared while exporting; nothing replaced") from None
    except OSError as error:
        if target.exists():
            raise DeployError(f"{target}: appeared while exporting; nothing replaced") from None
        raise DeployError(f"{target}: cannot write ({error.strerror})") from None


def _link_or_rename(temporary: Path, target: Path) -> None:
    try:
        os.link(temporary, target)
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        if target.exists():  # a file system without hard links: check, then rename
            raise FileExistsError(target) from None
        os.replace(temporary, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
