"""Conv2D whose kernel gradient, in bfloat16 on a CPU, is one matmul per kernel tap.

oneDNN's bfloat16 backward-filter kernel runs well below its forward kernel where the feature map
is small and the channels many (ResNet-18's last two stages, FastNet's last two groups). The same
sums written as one plain matmul per tap of the kernel (input shifted by the tap, against the
output gradient) are faster there, and slower on larger maps with fewer channels, so only layers
with at least `TAP_GRADIENT_MIN_CHANNELS` input channels take them. The forward pass and the input
gradient stay oneDNN's, and so does everything in float32, where its backward-filter is as fast as
the taps or faster. docs/performance.md has the measurements.
"""

from __future__ import annotations

import keras
import tensorflow as tf

TAP_GRADIENT_MIN_CHANNELS = 256
# The name scope of the taps' ops, by which a profile counts them as the backward-filter's.
TAP_GRADIENT_SCOPE = "kernel_gradient_by_taps"


def _padding(size: int, out: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """(pad before, pad after) along an axis of `size` with `out` outputs, as TensorFlow pads."""
    if padding == "valid":
        return 0, 0
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def kernel_gradient_by_taps(
    inputs: tf.Tensor,
    output_gradient: tf.Tensor,
    kernel_size: tuple[int, int],
    stride: int,
    padding: str = "same",
) -> tf.Tensor:
    """The gradient of a conv's kernel (kh, kw, in, out): for each tap (i, j), the input seen by
    that tap at every output position, flattened, times the flattened output gradient."""
    _, height, width, channels = inputs.shape
    _, out_h, out_w, _ = output_gradient.shape
    kh, kw = kernel_size
    top, bottom = _padding(height, out_h, kh, stride, padding)
    left, right = _padding(width, out_w, kw, stride, padding)
    with tf.name_scope(TAP_GRADIENT_SCOPE):
        padded = tf.pad(inputs, [[0, 0], [top, bottom], [left, right], [0, 0]])
        gradient = tf.reshape(output_gradient, [-1, output_gradient.shape[-1]])
        rows, cols = stride * (out_h - 1) + 1, stride * (out_w - 1) + 1
        taps = []
        for i in range(kh):
            for j in range(kw):
                seen = padded[:, i : i + rows : stride, j : j + cols : stride]
                flat = tf.reshape(seen, [-1, channels])
                taps.append(tf.matmul(flat, gradient, transpose_a=True))
        return tf.reshape(tf.stack(taps), [kh, kw, channels, gradient.shape[-1]])


def conv_with_tap_gradient(
    inputs: tf.Tensor, kernel: tf.Tensor, stride: int, padding: str
) -> tf.Tensor:
    """tf.nn.conv2d, with the kernel's gradient from `kernel_gradient_by_taps`."""
    # A tensor, not the variable: a variable read inside custom_gradient needs its own gradient.
    kernel = tf.convert_to_tensor(kernel)
    strides = [1, stride, stride, 1]

    @tf.custom_gradient
    def conv(inputs, kernel):
        def gradient(output_gradient):
            input_gradient = tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(inputs),
                filter=kernel,
                out_backprop=output_gradient,
                strides=strides,
                padding=padding.upper(),
            )
            kernel_gradient = kernel_gradient_by_taps(
                inputs, output_gradient, kernel.shape[:2], stride, padding
            )
            return input_gradient, kernel_gradient

        return tf.nn.conv2d(inputs, kernel, strides, padding.upper()), gradient

    return conv(inputs, kernel)


@keras.saving.register_keras_serializable(package="resnet_tf")
class Conv2D(keras.layers.Conv2D):
    """keras.layers.Conv2D (same weights, config and outputs) that trains faster in bfloat16 on a
    CPU; see the module docstring."""

    def uses_tap_gradient(self, inputs: tf.Tensor, kernel: tf.Tensor) -> bool:
        return (
            inputs.dtype == tf.bfloat16
            and self.data_format == "channels_last"
            and self.groups == 1
            and tuple(self.dilation_rate) == (1, 1)
            and self.strides[0] == self.strides[1]
            and tuple(kernel.shape[:2]) != (1, 1)
            and None not in inputs.shape[1:]
            and inputs.shape[-1] >= TAP_GRADIENT_MIN_CHANNELS
            and not tf.config.list_logical_devices("GPU")
        )

    def convolution_op(self, inputs: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        if self.uses_tap_gradient(inputs, kernel):
            return conv_with_tap_gradient(inputs, kernel, self.strides[0], self.padding)
        return super().convolution_op(inputs, kernel)
