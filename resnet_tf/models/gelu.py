"""GELU (tanh form) for training, its forward and backward each compiled by XLA into one pass.

Written with plain ops, the tanh GELU is about eight elementwise ops forward and, through
autodiff, twice as many backward; on a CPU each is a pass over the whole activation tensor, so
in the fast recipe's net they cost several times what a ReLU costs (docs/performance.md, "Where
a training step's time goes"). Here each direction is one XLA-fused loop with a hand-written
derivative, which makes the activation about as cheap as a ReLU while computing the same
function. Both compute in float32 whatever the tensors' type: XLA's CPU code for tanh and the
rest on bfloat16 values is several times slower than on float32 ones plus two casts, and
rounds after every op.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator

import tensorflow as tf

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
CUBIC = 0.044715


def _inner(x: tf.Tensor) -> tf.Tensor:
    return SQRT_2_OVER_PI * (x + CUBIC * x * x * x)


# reduce_retracing: one trace for every activation shape of a model (XLA still compiles one
# kernel per shape), so that a net's several shapes do not trigger TensorFlow's retracing warning.
@tf.function(jit_compile=True, reduce_retracing=True)
def _forward(x: tf.Tensor) -> tf.Tensor:
    x32 = tf.cast(x, tf.float32)
    return tf.cast(0.5 * x32 * (1.0 + tf.tanh(_inner(x32))), x.dtype)


@tf.function(jit_compile=True, reduce_retracing=True)
def _backward(x: tf.Tensor, upstream: tf.Tensor) -> tf.Tensor:
    """d/dx of 0.5 x (1 + tanh(u)), u = c (x + k x^3): recomputing tanh here is cheaper than
    keeping it from the forward pass (one tensor fewer to store and read back)."""
    x32, upstream32 = tf.cast(x, tf.float32), tf.cast(upstream, tf.float32)
    t = tf.tanh(_inner(x32))
    du_dx = SQRT_2_OVER_PI * (1.0 + 3.0 * CUBIC * x32 * x32)
    gradient = upstream32 * (0.5 * (1.0 + t) + 0.5 * x32 * (1.0 - t * t) * du_dx)
    return tf.cast(gradient, x.dtype)


@tf.custom_gradient
def fused_gelu(x: tf.Tensor):
    """The tanh GELU, as keras.activations.gelu(x, approximate=True), in one pass each way."""

    def gradient(upstream: tf.Tensor) -> tf.Tensor:
        return _backward(x, upstream)

    return _forward(x), gradient


_FUSED_IN_INFERENCE = contextvars.ContextVar("fused_gelu_in_inference", default=False)


@contextlib.contextmanager
def fused_gelu_in_inference() -> Iterator[None]:
    """Inference traced inside this block takes the fused GELU too.

    Inference otherwise uses Keras' own GELU, written with plain ops, because the export
    converters (LiteRT, ONNX) and TensorFlow Serving need those; code that runs the model in
    TensorFlow itself (the evaluation stage) opts in here, for the same speed-up as training."""
    token = _FUSED_IN_INFERENCE.set(True)
    try:
        yield
    finally:
        _FUSED_IN_INFERENCE.reset(token)


def inference_takes_fused_gelu() -> bool:
    """Whether the code tracing now is inside `fused_gelu_in_inference()`."""
    return _FUSED_IN_INFERENCE.get()
