"""Run any model a user holds: a checkpoint or run folder, a SavedModel, a .tflite, a .onnx file.

Each loader returns a `Classifier`: uint8 [N, 32, 32, 3] pixels in, float32 outputs out, the
same call whatever runs underneath. Exported files run on their own runtime (TensorFlow's
SavedModel loader, the ai-edge-litert interpreter, onnxruntime), exactly as a user without
resnet_tf would run them; the runtime packages are imported only when such a file is loaded.

This is the one loader of every command and the server, so its checks are everyone's: a model
file is a regular file (a SavedModel a folder of them) within the model file limit; a
SavedModel's ops are checked against an allow-list before anything in it runs
(saved_model_ops.py); and the probabilities a model returns, at load and on every batch, must
be probabilities (finite, in [0, 1], each image's summing to 1), else one DeployError line.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from resnet_tf.config.limits import (
    MAX_MODEL_FILE_BYTES,
    PROBABILITY_SUM_TOLERANCE,
    check_file,
    folder_size,
)
from resnet_tf.deploy.formats import KERAS, is_exported_model, runtime_missing
from resnet_tf.deploy.saved_model_ops import check_saved_model_ops
from resnet_tf.deploy.serving import IMAGE_SHAPE, INPUT_NAME, LOGITS, PROBABILITIES
from resnet_tf.errors import DeployError
from resnet_tf.models.saved import first_line
from resnet_tf.startup import runtime_notes_quieted


def _threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


class Classifier:
    """uint8 images -> {"probabilities": [N, classes]} and, where the format has them, logits."""

    format: str
    path: Path

    def outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """The model's outputs for `images`, its probabilities checked (check_probabilities)."""
        out = self.run(images)
        check_probabilities(self.path, out.get(PROBABILITIES))
        return out

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """The runtime's outputs, unchecked."""
        raise NotImplementedError

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return self.outputs(images)[PROBABILITIES]

    def logits(self, images: np.ndarray) -> np.ndarray:
        """The logits, or log-probabilities where the format returns probabilities only
        (LiteRT): the same softmax, so the same top-1, confidence and loss."""
        out = self.outputs(images)
        if LOGITS in out:
            return out[LOGITS]
        return np.log(np.maximum(out[PROBABILITIES], np.finfo(np.float32).tiny))


class KerasClassifier(Classifier):
    """A .keras checkpoint with its run's normalization applied outside, as in training."""

    def __init__(self, model, normalization: str, path: Path):
        self.model, self.normalization, self.path = model, normalization, path
        self.format = KERAS

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        import tensorflow as tf

        from resnet_tf.data import normalize_images

        logits = self.model(normalize_images(images, self.normalization), training=False)
        logits = tf.cast(logits, tf.float32)
        return {LOGITS: logits.numpy(), PROBABILITIES: tf.nn.softmax(logits).numpy()}


class SavedModelClassifier(Classifier):
    format = "saved_model"

    def __init__(self, path: Path, trust: bool = False):
        import tensorflow as tf

        self.path = path
        folder_size(path, MAX_MODEL_FILE_BYTES, "a SavedModel", DeployError)
        if not trust:
            check_saved_model_ops(path)
        try:
            self.signature = tf.saved_model.load(str(path)).signatures["serving_default"]
        except Exception as error:  # TensorFlow raises many types for a bad folder
            raise DeployError(
                f"{path}: cannot load as a SavedModel with a serving_default signature "
                f"({first_line(error)})"
            ) from None

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        import tensorflow as tf

        out = self.signature(**{INPUT_NAME: tf.constant(images, tf.uint8)})
        return {name: value.numpy() for name, value in out.items()}


class LiteRTClassifier(Classifier):
    def __init__(self, path: Path, threads: int | None = None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise runtime_missing("ai_edge_litert", path) from None
        self.path = path
        try:
            with runtime_notes_quieted():
                self.interpreter = Interpreter(
                    model_path=str(path), num_threads=threads or _threads()
                )
                self.runner = self.interpreter.get_signature_runner("serving_default")
                with contextlib.suppress(Exception):  # its errors: the interface check's
                    self.runner(**{INPUT_NAME: np.zeros((1, *IMAGE_SHAPE), np.uint8)})
        except Exception as error:
            raise DeployError(
                f"{path}: cannot load as a LiteRT model ({first_line(error)})"
            ) from None
        dtypes = {np.dtype(detail["dtype"]) for detail in self.interpreter.get_tensor_details()}
        self.format = (
            "litert_int8"
            if np.dtype(np.int8) in dtypes
            else "litert_fp16"
            if np.dtype(np.float16) in dtypes
            else "litert"
        )

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return dict(self.runner(**{INPUT_NAME: np.ascontiguousarray(images, np.uint8)}))


# What an INT8 ONNX graph holds: QDQ pairs, or the integer operators they become.
QUANTIZED_ONNX_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "ConvInteger"}


class OnnxClassifier(Classifier):
    format = "onnx"

    def __init__(self, path: Path, threads: int | None = None):
        try:
            import onnxruntime
        except ImportError:
            raise runtime_missing("onnxruntime", path) from None
        self.path = path
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or _threads()
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:
            raise DeployError(
                f"{path}: cannot load as an ONNX model ({first_line(error)})"
            ) from None
        self.names = [output.name for output in self.session.get_outputs()]
        if _is_quantized_onnx(path):
            self.format = "onnx_int8"

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        values = self.session.run(self.names, {INPUT_NAME: np.asarray(images, np.uint8)})
        return dict(zip(self.names, values))


def _is_quantized_onnx(path: Path) -> bool:
    """Whether an ONNX file that ONNX Runtime has loaded holds quantized (integer) ops."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return any(node.op_type in QUANTIZED_ONNX_OPS for node in graph.node)


def load_exported(
    path: str | os.PathLike, threads: int | None = None, *, trust_saved_model: bool = False
) -> Classifier:
    """An exported model, checked to map uint8 32x32 RGB images to CIFAR-10 probabilities.
    `trust_saved_model`: load a SavedModel whose ops are outside the allow-list."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DeployError(f"{path}: model not found")
    if path.is_dir():
        classifier: Classifier = SavedModelClassifier(path, trust_saved_model)
    elif path.suffix.lower() in (".tflite", ".onnx"):
        check_file(path, MAX_MODEL_FILE_BYTES, "a model", DeployError)
        if path.suffix.lower() == ".tflite":
            classifier = LiteRTClassifier(path, threads)
        else:
            classifier = OnnxClassifier(path, threads)
    else:
        raise DeployError(f"{path}: expected a SavedModel folder, a .tflite or an .onnx file")
    _check_interface(classifier)
    return classifier


def load_classifier(
    path: str | os.PathLike,
    normalization: str | None = None,
    threads: int | None = None,
    *,
    trust_saved_model: bool = False,
) -> Classifier:
    """Any model a user holds: a run folder or .keras checkpoint (normalized as its run says,
    or by `normalization` outside a run) or an exported model (normalization inside it)."""
    if is_exported_model(path):
        if normalization is not None:
            raise DeployError(
                f"{path}: an exported model normalizes its input itself; drop --normalization"
            )
        return load_exported(path, threads, trust_saved_model=trust_saved_model)
    from resnet_tf.evaluation import sources

    found = sources.resolve_checkpoint(path)
    normalization = sources.resolve_normalization(found, normalization)
    classifier = KerasClassifier(sources.load_checkpoint(found.path), normalization, found.path)
    classifier.outputs(np.zeros((1, 32, 32, 3), np.uint8))  # its probabilities checked at load
    return classifier


def check_probabilities(path: Path, probabilities) -> None:
    """A DeployError unless `probabilities` are finite, in [0, 1] and each row sums to 1
    (within PROBABILITY_SUM_TOLERANCE): a model's NaN or -500 % is never printed or scored."""
    if probabilities is None:
        return  # the interface check names a missing output
    values = np.asarray(probabilities, np.float64)
    if values.ndim != 2 or values.size == 0:
        return
    sums = values.sum(axis=1)
    if not np.isfinite(values).all():
        found = "NaN or infinite values"
    elif values.min() < 0 or values.max() > 1 + 1e-6:
        found = f"values from {values.min():.4g} to {values.max():.4g}"
    elif np.abs(sums - 1).max() > PROBABILITY_SUM_TOLERANCE:
        found = f"an image's summing to {sums[np.argmax(np.abs(sums - 1))]:.4g}"
    else:
        return
    raise DeployError(
        f"{path}: the model's '{PROBABILITIES}' are not probabilities ({found}); expected "
        "finite values in [0, 1] summing to 1 for each image"
    )


def _check_interface(classifier: Classifier) -> None:
    """One all-black image through the model: the interface every exported model has, and
    probabilities that are probabilities."""
    from resnet_tf.data import NUM_CLASSES

    try:
        out = classifier.run(np.zeros((1, 32, 32, 3), np.uint8))
    except Exception as error:
        raise DeployError(
            f"{classifier.path}: does not take uint8 [N, 32, 32, 3] '{INPUT_NAME}' as an "
            f"exported resnet_tf model does ({first_line(error)})"
        ) from None
    shape = tuple(np.shape(out.get(PROBABILITIES)))
    if shape != (1, NUM_CLASSES):
        raise DeployError(
            f"{classifier.path}: expected a '{PROBABILITIES}' output of shape (N, {NUM_CLASSES}), "
            f"found {sorted(out)} with shape {shape}"
        )
    check_probabilities(classifier.path, out[PROBABILITIES])
