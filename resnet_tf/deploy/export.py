"""Export a checkpoint to one format, check the file against the checkpoint, then put it in place.

The steps, each failing with one DeployError line before anything is left behind:
  1. resolve the checkpoint (a run folder means its best.keras), its normalization and the
     output path (an existing one is refused unless `overwrite`, and replaced only if it is an
     export of the same format: output.py);
  2. build the serving model (serving.py) and export it with Keras' `Model.export` into a
     temporary folder beside the output (INT8: calibrated on images of the *training* split);
  3. load that file with its own runtime and compare it with the checkpoint on test images: a
     float format must give the same top-1 on every one (up to exact ties) and probabilities
     within its tolerance; INT8 reports its agreement;
  4. rename it to the output path.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resnet_tf import data as data_lib
from resnet_tf.deploy import serving
from resnet_tf.deploy.agreement import Agreement, check_agreement, compare
from resnet_tf.deploy.formats import (
    ExportFormat,
    export_format,
    is_exported_model,
    runtime_missing,
)
from resnet_tf.deploy.output import move_into_place, output_path, size_of, work_folder
from resnet_tf.deploy.runtimes import KerasClassifier, load_exported
from resnet_tf.errors import DeployError
from resnet_tf.evaluation import sources
from resnet_tf.runs.records import unfinished
from resnet_tf.startup import runtime_notes_quieted

DEFAULT_CHECK_IMAGES = 500
DEFAULT_CALIBRATION_IMAGES = 300
CALIBRATION_BATCH = 50
# The ops ONNX Runtime runs on int8: those that carry the multiply-adds, and ReLU and pooling,
# which are exact on int8 values. Everything else (the tanh GELU's Mul, Add, Pow and Tanh, the
# residual Add, the output's scaling and softmax) stays float32 between a DequantizeLinear and
# the next QuantizeLinear: quantized, the GELU's intermediate x**3 would be rounded to 256 levels.
ONNX_INT8_OPS = (
    "Conv", "MatMul", "Gemm", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool"
)


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
    unfinished: str | None = None  # why the checkpoint's run is not finished, if it is not

    def summary(self) -> str:
        check = self.check
        note = (
            f"note: exported from an unfinished run ({self.unfinished})\n"
            if self.unfinished
            else ""
        )
        return note + (
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
    if is_exported_model(checkpoint):
        raise DeployError(
            f"{checkpoint}: an exported model; export.py exports a trained checkpoint: give "
            "the .keras file or the run folder it was exported from"
        )
    found = sources.resolve_checkpoint(checkpoint)
    normalization = sources.resolve_normalization(found, normalization)
    folder = found.run.export if found.run is not None else found.path.parent
    target = output_path(
        fmt, fmt.default_path(folder, found.path.stem), output, overwrite, found.path
    )
    _require_runtime(fmt, target)
    model = serving.float32_copy(sources.load_checkpoint(found.path))

    test = sources.load_images(data_dir, "test", found.config)
    check_x, check_y = test.images[:check_images], test.labels[:check_images]
    calibration = None
    if fmt.tolerance is None:
        calibration = calibration_set(data_dir, found, calibration_images, seed)

    with work_folder(target) as work:
        temporary = work / target.name
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
        move_into_place(temporary, target, overwrite)
    return ExportResult(
        path=target,
        format=fmt.name,
        checkpoint=found.path,
        normalization=normalization,
        size_bytes=size_of(target),
        seconds=time.perf_counter() - started,
        calibration_images=0 if calibration is None else len(calibration),
        check=agreement,
        unfinished=unfinished(found.run) if found.run is not None else None,
    )


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


def _has_logits(fmt: ExportFormat) -> bool:
    return fmt.name in ("saved_model", "onnx", "onnx_int8")


def _require_runtime(fmt: ExportFormat, target: Path) -> None:
    """Fail before the long work when the runtime that checks the file is missing."""
    import importlib.util

    needed = [fmt.runtime] + (["tf2onnx"] if fmt.name.startswith("onnx") else [])
    for name in needed:
        if importlib.util.find_spec(name) is None:
            raise runtime_missing(name, target)


def _write(fmt: ExportFormat, model, path: Path, calibration, checkpoint: Path) -> None:
    import tensorflow as tf

    builtins = tf.lite.OpsSet.TFLITE_BUILTINS  # never Flex ops: the interpreter lacks them
    options: dict = {}
    if fmt.name == "saved_model":
        keras_format = "tf_saved_model"
    elif fmt.name == "onnx_int8":
        float_path = path.with_name(f"float_{path.name}")
        _write(export_format("onnx"), model, float_path, None, checkpoint)
        quantize_onnx(float_path, path, calibration, checkpoint)
        return
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
        with warnings.catch_warnings(), runtime_notes_quieted():
            warnings.simplefilter("ignore")  # the ONNX path warns about numpy 2 aliases
            model.export(str(path), format=keras_format, verbose=False, **options)
    except Exception as error:
        text = " ".join(str(error).split())
        raise DeployError(f"{checkpoint}: cannot export as {fmt.name}: {text[:300]}") from None


def quantize_onnx(float_path: Path, path: Path, calibration: np.ndarray, checkpoint: Path) -> None:
    """ONNX Runtime's static INT8 quantization of a float ONNX file: int8 weights per output
    channel, uint8 activations with ranges measured on the calibration images (min-max), written
    as QuantizeLinear/DequantizeLinear pairs around the ONNX_INT8_OPS, which ONNX Runtime fuses
    into integer kernels (VNNI or AMX where the CPU has them)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class CalibrationImages(CalibrationDataReader):
        def __init__(self) -> None:
            batches = range(0, len(calibration), CALIBRATION_BATCH)
            self.batches = iter(
                [{serving.INPUT_NAME: calibration[i : i + CALIBRATION_BATCH]} for i in batches]
            )

        def get_next(self) -> dict | None:
            return next(self.batches, None)

    prepared = path.with_name(f"prepared_{path.name}")
    logging.disable(logging.WARNING)  # the quantizer's notes on the shift-only batch norms
    try:
        quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(path),
            CalibrationImages(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(ONNX_INT8_OPS),
        )
    except Exception as error:  # onnxruntime raises many types for a graph it cannot quantize
        text = " ".join(str(error).split())
        raise DeployError(f"{checkpoint}: cannot quantize as onnx_int8: {text[:300]}") from None
    finally:
        logging.disable(logging.NOTSET)
