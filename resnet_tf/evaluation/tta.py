"""The one way logits are computed: evaluate.py and training's final test score both come here.

A plain loop of `model(batch, training=False)` over a finite dataset, as a user would write it,
so a score never depends on Keras' predict machinery; a Keras model is first traced into one
TensorFlow graph (`traced_inference`), as `model.predict` would also do. Each test-time
augmentation (TTA) level is one function from a batch of normalized images to its logits, as
airbench's `infer` does; `TTA_LEVELS` names them with the choices of config.choices.TTA_CHOICES.

The views' logits are summed in float32 in one fixed order (the image, its mirror, then the
moved views), so evaluate.py and the test score average the same logits the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import keras
import numpy as np
import tensorflow as tf

from resnet_tf.config.choices import TTA_CHOICES
from resnet_tf.errors import EvaluationError
from resnet_tf.models.gelu import fused_gelu_in_inference

TTA_METHODS = {
    "flip": "flip (mean of the logits of the image and its mirror)",
    "flip_translate": "flip_translate (weighted mean of the logits of 6 views: the image and "
    "its mirror 1/4 each, both moved 1 px down-right and up-left 1/8 each)",
}


def mirror_images(images: tf.Tensor) -> tf.Tensor:
    """Left-right mirror of a batch of NHWC images (flip test-time augmentation)."""
    return tf.reverse(images, axis=[2])


def shift_images(images: tf.Tensor, offset: int) -> tf.Tensor:
    """A batch of NHWC images moved by one pixel diagonally, the edge reflected in: offset 0
    moves the content down and right, offset 2 up and left (1 would leave it in place)."""
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    return padded[:, offset : offset + height, offset : offset + width, :]


def traced_inference(model: keras.Model) -> Callable[..., tf.Tensor]:
    """`model(images, training=False)` traced once into a TensorFlow graph.

    Called eagerly, a model runs op by op; traced, TensorFlow's graph optimizer fuses each
    convolution with the batch norm and activation after it, so the same forward pass runs
    faster (README "Evaluation"). The last, smaller batch relaxes the trace to any batch size
    rather than adding a trace per shape. FastNet's GELU is traced in its fused form, as in
    training (models/gelu.py): the plain one, kept for exports, runs slower (docs/performance.md).
    """
    forward = tf.function(lambda images: model(images, training=False), reduce_retracing=True)

    def call(images, training: bool = False) -> tf.Tensor:
        if training:
            raise ValueError("traced_inference: the traced model only runs in inference")
        with fused_gelu_in_inference():  # in force while the call traces
            return forward(images)

    return call


def logits_none(
    model: keras.Model, images: tf.Tensor, plain: np.ndarray | None = None
) -> np.ndarray:
    """The logits of the images themselves (float32); `plain`, if given, already are."""
    if plain is not None:
        return plain
    return np.asarray(model(images, training=False), dtype=np.float32)


def logits_flip(
    model: keras.Model, images: tf.Tensor, plain: np.ndarray | None = None
) -> np.ndarray:
    """Mean of the logits of each image and its mirror.

    `plain` (the batch's logits without TTA, when the caller has them) saves one forward pass.
    """
    return _weighted_sum(
        [
            (0.5, logits_none(model, images, plain)),
            (0.5, logits_none(model, mirror_images(images))),
        ]
    )


def logits_flip_translate(
    model: keras.Model, images: tf.Tensor, plain: np.ndarray | None = None
) -> np.ndarray:
    """Weighted mean of 6 views: the image and its mirror 1/4 each, both moved 1 px down-right
    and up-left 1/8 each.

    It follows the training augmentation (flip + small reflected translations) and gives the
    unmoved views half the weight: they show the whole image.
    """
    terms = [
        (0.25, logits_none(model, images, plain)),
        (0.25, logits_none(model, mirror_images(images))),
    ]
    for offset in (0, 2):
        moved = shift_images(images, offset)
        terms += [
            (0.125, logits_none(model, moved)),
            (0.125, logits_none(model, mirror_images(moved))),
        ]
    return _weighted_sum(terms)


def _weighted_sum(terms: list[tuple[float, np.ndarray]]) -> np.ndarray:
    total = np.zeros_like(terms[0][1])
    for weight, logits in terms:
        total += weight * logits
    return total


# (model, batch of normalized images, the batch's logits without TTA or None) -> logits
TtaLevel = Callable[..., np.ndarray]

TTA_LEVELS: dict[str, TtaLevel] = {
    "none": logits_none,
    "flip": logits_flip,
    "flip_translate": logits_flip_translate,
}


def tta_level(tta: str) -> TtaLevel:
    """The function of one TTA level; an unknown name is a user error naming the choices."""
    if tta not in TTA_LEVELS:
        raise EvaluationError(f"tta must be one of {', '.join(TTA_CHOICES)}, found {tta!r}")
    return TTA_LEVELS[tta]


def least_confident(logits: np.ndarray, fraction: float) -> np.ndarray:
    """Indices (ascending) of the ceil(fraction * n) images whose most likely class has the
    lowest softmax probability: where extra views can still change the answer (hiverge's
    CIFAR-10 record spends its TTA on the least confident 20 %)."""
    count = min(len(logits), int(np.ceil(fraction * len(logits))))
    shifted = logits - logits.max(axis=1, keepdims=True)
    top = 1.0 / np.exp(shifted).sum(axis=1)  # softmax of the top class (its shifted logit is 0)
    return np.sort(np.argsort(top, kind="stable")[:count])


def with_views_where_unsure(
    plain: np.ndarray, fraction: float, views_of: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, int]:
    """(logits, images given the views): `plain` with the least confident `fraction` of its
    rows replaced by views_of(their indices)."""
    chosen = least_confident(plain, fraction)
    logits = plain.copy()
    if len(chosen):
        logits[chosen] = views_of(chosen)
    return logits, len(chosen)


def predict(
    model: keras.Model,
    batches: Iterable,
    tta: str = "none",
    *,
    plain: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """(logits float32, seconds) of every image in `batches` at one TTA level.

    `batches` yields batches of normalized images, or (images, labels) pairs as
    data.make_eval_dataset does. `plain` are the logits of the same images without TTA, from
    an earlier predict(..., "none"): they are reused, not recomputed, and the seconds then
    count only the other views.
    """
    level = tta_level(tta)
    outputs = []
    done = 0
    started = time.perf_counter()
    for batch in batches:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        count = int(images.shape[0])
        known = None if plain is None else plain[done : done + count]
        outputs.append(level(model, images, known))
        done += count
    return np.concatenate(outputs), time.perf_counter() - started
