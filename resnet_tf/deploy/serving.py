"""The model that gets exported: raw uint8 pixels in, class probabilities (and logits) out.

A trained checkpoint expects images normalized as its run's `data.normalization` says, outside
the model. What we ship must not: the serving model puts that normalization inside the graph as
one Rescaling layer (x * 1/(255 std) - mean/std per channel, numbers rather than captured
tensors, which the ONNX converter would turn into extra inputs), calls the trained model in
inference mode and adds a softmax. Its input is named `images`, its outputs `logits` and
`probabilities`, so every format gets the same names.
"""

from __future__ import annotations

import keras
import numpy as np

from resnet_tf.data import mean_and_std

INPUT_NAME = "images"
LOGITS = "logits"
PROBABILITIES = "probabilities"
IMAGE_SHAPE = (32, 32, 3)


def pixel_scale_and_offset(normalization: str) -> tuple[list[float], list[float]]:
    """Per-channel (scale, offset) with scale * pixel + offset = the normalized input."""
    mean, std = mean_and_std(normalization)  # "none": 0 and 1
    scale = [float(np.float32(1.0 / (255.0 * s))) for s in std]
    offset = [float(np.float32(-m / s)) for m, s in zip(mean, std)]
    return scale, offset


def float32_copy(model: keras.Model) -> keras.Model:
    """The model computing in float32: a mixed-precision checkpoint rebuilt with its weights.

    The LiteRT converter has no bfloat16 convolution and ONNX Runtime rejects bfloat16 inputs
    to Conv, so every export starts from float32 (a float32 model is returned as it is).
    """
    if model.dtype_policy.name == "float32":
        return model
    clone = model.__class__.from_config({**model.get_config(), "dtype": "float32"})
    clone.build((None, *IMAGE_SHAPE))
    clone.set_weights(model.get_weights())
    return clone


def serving_model(
    model: keras.Model, normalization: str, *, with_logits: bool = True
) -> keras.Model:
    """uint8 [N, 32, 32, 3] `images` -> {"logits", "probabilities"} (or probabilities only).

    LiteRT exports only the probabilities: one output keeps its signature simple, and a
    quantized file would otherwise carry a second dequantized head.
    """
    scale, offset = pixel_scale_and_offset(normalization)
    images = keras.Input(IMAGE_SHAPE, dtype="uint8", name=INPUT_NAME)
    normalized = keras.layers.Rescaling(scale=scale, offset=offset, name="normalization")(images)
    logits = model(normalized, training=False)
    probabilities = keras.layers.Softmax(name=PROBABILITIES, dtype="float32")(logits)
    outputs = {PROBABILITIES: probabilities}
    if with_logits:
        outputs = {LOGITS: keras.layers.Identity(name=LOGITS)(logits), **outputs}
    return keras.Model(images, outputs, name=f"{model.name}_serving")
