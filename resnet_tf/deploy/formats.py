"""The export formats: their names, file names, runtimes and how closely each must agree.

One table, so export.py's --format choices, the default file names, the check at export time
and the loader that tells a file's format all read the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from resnet_tf.errors import DeployError

REQUIREMENTS_FILE = "requirements-export.txt"


@dataclass(frozen=True)
class ExportFormat:
    name: str
    file_suffix: str  # what the default file name ends with after the checkpoint's stem
    description: str
    runtime: str  # the package that runs it (and its import name)
    # Float formats must give the .keras model's top-1 and probabilities within this much;
    # None for INT8, whose agreement is measured and reported instead.
    tolerance: float | None

    @property
    def is_folder(self) -> bool:
        return self.name == "saved_model"

    def default_path(self, folder: Path, stem: str) -> Path:
        return folder / f"{stem}{self.file_suffix}"


EXPORT_FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat(
            "saved_model",
            "_saved_model",
            "TensorFlow SavedModel folder with a serving_default signature",
            "tensorflow",
            1e-4,
        ),
        ExportFormat("litert", "_fp32.tflite", "LiteRT (TFLite) float32", "ai_edge_litert", 1e-4),
        ExportFormat(
            "litert_fp16", "_fp16.tflite", "LiteRT with float16 weights", "ai_edge_litert", 1e-2
        ),
        ExportFormat(
            "litert_int8",
            "_int8.tflite",
            "LiteRT full-integer INT8 (uint8 input, integer-only ops)",
            "ai_edge_litert",
            None,
        ),
        ExportFormat("onnx", ".onnx", "ONNX (opset 15)", "onnxruntime", 1e-4),
        ExportFormat(
            "onnx_int8",
            "_int8.onnx",
            "ONNX with static INT8 quantization (QDQ, per-channel weights) for ONNX Runtime",
            "onnxruntime",
            None,
        ),
    )
}

# What a model path can be, for predict.py and evaluate.py: the trained model or an export.
KERAS = "keras"


def export_format(name: str) -> ExportFormat:
    """The format called `name`; an unknown name is a user error listing the choices."""
    if name not in EXPORT_FORMATS:
        raise DeployError(f"--format: expected one of {', '.join(EXPORT_FORMATS)}, found {name!r}")
    return EXPORT_FORMATS[name]


def is_exported_model(path: str | Path) -> bool:
    """Whether `path` looks like an exported model (SavedModel folder, .tflite, .onnx)."""
    path = Path(path)
    if path.is_dir():
        return (path / "saved_model.pb").is_file()
    return path.suffix.lower() in (".tflite", ".onnx")


def runtime_missing(runtime: str, path: str | Path) -> DeployError:
    """The error for a runtime package that is not installed."""
    return DeployError(
        f"{path}: needs the Python package '{runtime.replace('_', '-')}', which is not "
        f"installed; pip install -r {REQUIREMENTS_FILE}"
    )
