"""TensorFlow Serving's REST API, as far as one image classifier needs it: paths, request
bodies and the JSON of each answer, shaped as TF Serving shapes them (docs/serving.md).

Pure functions of bytes and arrays, so that the web layer (app.py) only routes and counts.
The one input is `images`, uint8 [N, 32, 32, 3]: a row request (`instances`) lists the images,
a columnar one (`inputs`) gives the whole tensor. An image may also be an encoded file as TF
Serving sends binary data, `{"b64": "..."}`; it is decoded and resized as predict.py reads a
file (`data.decode_image`), in `decode_instances`. Bodies are parsed by orjson: parsing the
3,072 numbers of an image is most of a request's cost, and orjson does it about twice as fast
as the standard library. Every refusal is a RequestError with the
status TF Serving gives it (400 bad input, 404 no such model or version).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

import numpy as np
import orjson

from resnet_tf.data import decode_image
from resnet_tf.deploy.serving import IMAGE_SHAPE, INPUT_NAME
from resnet_tf.errors import DataError, RequestError

SIGNATURE = "serving_default"
B64 = "b64"
# TF Serving matches its paths ignoring case; a model name has no / or :.
_MODEL = r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
PREDICT_PATH = re.compile(_MODEL + r":(?P<verb>[^/:]+)", re.IGNORECASE)
STATUS_PATH = re.compile(_MODEL, re.IGNORECASE)
METADATA_PATH = re.compile(_MODEL + r"/metadata", re.IGNORECASE)


@dataclass(frozen=True)
class PredictRequest:
    """A parsed :predict body: `parts` in order, each an array [n, 32, 32, 3] of uint8 or one
    encoded image (bytes) with `sources[i]` naming where it came from in the body."""

    columnar: bool
    parts: list[np.ndarray | bytes]
    sources: list[str]

    @property
    def instances(self) -> int:
        return sum(1 if isinstance(p, bytes) else len(p) for p in self.parts)

    @property
    def has_encoded_images(self) -> bool:
        return any(isinstance(p, bytes) for p in self.parts)


def check_model(match: re.Match, served_name: str, version: str) -> None:
    """A 404 unless the path names the served model (and its version, if it names one)."""
    name = match["name"]
    if name != served_name:
        raise RequestError(404, f"model '{name}' not found: this server serves '{served_name}'")
    if match["version"] is not None and match["version"] != version:
        raise RequestError(
            404,
            f"version {match['version']!r} of model '{name}' not found: it has version {version}",
        )
    if match["label"] is not None:
        raise RequestError(
            404, f"version label '{match['label']}' of model '{name}' not found: it has no labels"
        )


def parse_predict(body: bytes, max_batch_size: int) -> PredictRequest:
    """A :predict body -> its images, or a 400 saying what is wrong and where."""
    try:
        document = orjson.loads(body)  # strict JSON (no NaN), ints of at most 64 bits
    except orjson.JSONDecodeError as error:
        raise RequestError(400, f"the body is not valid JSON ({first_words(error)})") from None
    if not isinstance(document, dict):
        raise RequestError(
            400, f"expected a JSON object with 'instances' or 'inputs', found {kind(document)}"
        )
    signature = document.get("signature_name", SIGNATURE)
    if signature not in (SIGNATURE, ""):
        raise RequestError(400, f"signature_name: only '{SIGNATURE}' exists, found {signature!r}")
    unknown = sorted(set(document) - {"signature_name", "instances", "inputs"})
    if unknown:
        raise RequestError(400, f"unknown key {unknown[0]!r}: expected 'instances' or 'inputs'")
    if ("instances" in document) == ("inputs" in document):
        raise RequestError(400, "expected exactly one of 'instances' (rows) or 'inputs' (columns)")
    columnar = "inputs" in document
    if columnar:
        request = PredictRequest(True, *_columns(document["inputs"]))
    else:
        request = PredictRequest(False, *_rows(document["instances"]))
    if request.instances == 0:
        raise RequestError(400, "the batch is empty: send at least one image")
    if request.instances > max_batch_size:
        raise RequestError(
            400,
            f"{request.instances} images in one request, over --max-batch-size {max_batch_size}: "
            "split it into smaller requests",
        )
    return request


def _rows(instances) -> tuple[list, list[str]]:
    if not isinstance(instances, list):
        raise RequestError(400, f"instances: expected a list of images, found {kind(instances)}")
    if not instances:
        return [], []
    if all(isinstance(item, list) for item in instances):  # the common case, in one array
        return [pixel_array(instances, "instances")], ["instances"]
    parts, sources = [], []
    for index, item in enumerate(instances):
        where = f"instances[{index}]"
        if isinstance(item, dict) and set(item) == {INPUT_NAME}:
            item, where = item[INPUT_NAME], f"{where}.{INPUT_NAME}"
        parts.append(_one_image(item, where))
        sources.append(where)
    return parts, sources


def _columns(inputs) -> tuple[list, list[str]]:
    where = "inputs"
    if isinstance(inputs, dict) and not is_b64(inputs):
        unknown = sorted(set(inputs) - {INPUT_NAME})
        if unknown or INPUT_NAME not in inputs:
            raise RequestError(
                400, f"inputs: expected the one input '{INPUT_NAME}', found {sorted(inputs)}"
            )
        inputs, where = inputs[INPUT_NAME], f"inputs.{INPUT_NAME}"
    if not isinstance(inputs, list):
        raise RequestError(400, f"{where}: expected a list of images, found {kind(inputs)}")
    if not inputs:
        return [], []
    if any(isinstance(item, dict) for item in inputs):
        items = [(item, f"{where}[{i}]") for i, item in enumerate(inputs)]
        return [_one_image(item, source) for item, source in items], [s for _, s in items]
    return [pixel_array(inputs, where)], [where]


def _one_image(item, where: str) -> np.ndarray | bytes:
    if is_b64(item):
        return b64_bytes(item[B64], where)
    if isinstance(item, list):
        return pixel_array([item], where)
    if isinstance(item, dict):
        raise RequestError(
            400,
            f'{where}: expected an image (32x32x3 numbers or {{"b64": ...}}), '
            f"found keys {sorted(item)}",
        )
    raise RequestError(400, f"{where}: expected an image, found {kind(item)}")


def is_b64(item) -> bool:
    return isinstance(item, dict) and set(item) == {B64}


def b64_bytes(text, where: str) -> bytes:
    if not isinstance(text, str):
        raise RequestError(400, f"{where}.b64: expected a base64 string, found {kind(text)}")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise RequestError(400, f"{where}.b64: not valid base64 ({first_words(error)})") from None


def pixel_array(value: list, where: str) -> np.ndarray:
    """Nested lists of whole numbers 0-255 -> uint8 [n, 32, 32, 3], or a 400 naming `where`."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):  # ragged lists
        raise RequestError(
            400,
            f"{where}: expected images of {shape_text(IMAGE_SHAPE)} numbers, found ragged lists",
        ) from None
    if array.size and array.dtype.kind not in "iu":
        found = {"f": "fractions", "b": "true/false", "U": "strings"}.get(
            array.dtype.kind, "other values"
        )
        raise RequestError(
            400, f"{where}: expected whole numbers 0-255 (uint8 pixels), found {found}"
        )
    if array.ndim != 4 or array.shape[1:] != IMAGE_SHAPE:
        found = shape_text(array.shape[1:]) if array.ndim >= 1 else "a single number"
        raise RequestError(
            400,
            f"{where}: expected images of shape {shape_text(IMAGE_SHAPE)} (height, width, RGB), "
            f"found {found}",
        )
    if array.size and (array.min() < 0 or array.max() > 255):
        raise RequestError(
            400, f"{where}: expected pixel values 0-255, found {array.min()} to {array.max()}"
        )
    return array.astype(np.uint8)


def decode_instances(request: PredictRequest) -> np.ndarray:
    """All the request's images as uint8 [N, 32, 32, 3]; encoded ones decoded as predict.py
    decodes a file (a 400 names one that cannot be: not an image, or too many pixels)."""
    arrays = []
    for part, source in zip(request.parts, request.sources):
        if isinstance(part, bytes):
            try:
                part = decode_image(part, source)[None]
            except DataError as error:
                raise RequestError(400, str(error)) from None
        arrays.append(part)
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def predict_response(outputs: dict[str, np.ndarray], columnar: bool) -> dict:
    """TF Serving's answer: rows -> {"predictions": [...]} (a list per image, or an object per
    image keyed by output name when the signature has several outputs); columns ->
    {"outputs": ...} (the tensor, or an object of tensors)."""
    names = sorted(outputs)
    if columnar:
        if len(names) == 1:
            return {"outputs": outputs[names[0]].tolist()}
        return {"outputs": {name: outputs[name].tolist() for name in names}}
    if len(names) == 1:
        return {"predictions": outputs[names[0]].tolist()}
    columns = {name: outputs[name].tolist() for name in names}
    count = len(columns[names[0]])
    return {"predictions": [{name: columns[name][i] for name in names} for i in range(count)]}


def status_response(version: str, state: str) -> dict:
    """GetModelStatusResponse as JSON: AVAILABLE while serving, UNLOADING once draining."""
    return {
        "model_version_status": [
            {
                "version": version,
                "state": state,
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def metadata_response(name: str, version: str, outputs: dict[str, tuple[str, tuple]]) -> dict:
    """GetModelMetadataResponse as JSON: the serving_default signature; `outputs` maps each
    output name to its (dtype, shape without the batch dimension)."""

    def tensor(key: str, dtype: str, shape: tuple) -> dict:
        dims = [{"size": str(size), "name": ""} for size in (-1, *shape)]
        return {"dtype": dtype, "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": key}

    signature = {
        "inputs": {INPUT_NAME: tensor(INPUT_NAME, "DT_UINT8", IMAGE_SHAPE)},
        "outputs": {
            key: tensor(key, dtype, shape) for key, (dtype, shape) in sorted(outputs.items())
        },
        "method_name": "tensorflow/serving/predict",
    }
    return {
        "model_spec": {"name": name, "signature_name": "", "version": version},
        "metadata": {"signature_def": {"signature_def": {SIGNATURE: signature}}},
    }


def tf_dtype(array: np.ndarray) -> str:
    """TF Serving's name of an array's type, e.g. DT_FLOAT."""
    names = {"float32": "FLOAT", "float64": "DOUBLE", "float16": "HALF", "int64": "INT64"}
    name = names.get(array.dtype.name, array.dtype.name.upper())
    return f"DT_{name}"


def kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false"}.get(
        type(value), "null" if value is None else "a number"
    )


def shape_text(shape: tuple) -> str:
    return "x".join(str(size) for size in shape) if shape else "no dimensions"


def first_words(error: Exception, limit: int = 120) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:limit]
