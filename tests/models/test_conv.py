"""Tests for resnet_tf.models.conv: the kernel gradient by taps and the Conv2D that uses it."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from resnet_tf.models.blocks import conv2d
from resnet_tf.models.conv import (
    TAP_GRADIENT_MIN_CHANNELS,
    Conv2D,
    conv_with_tap_gradient,
    kernel_gradient_by_taps,
)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding"),
    [
        (6, 3, 1, "same"),
        (7, 3, 2, "same"),
        (8, 3, 2, "same"),
        (7, 5, 1, "same"),
        (7, 3, 1, "valid"),
    ],
)
def test_kernel_gradient_by_taps_is_tensorflows_filter_gradient(size, kernel, stride, padding):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((3, size, size, 4)), tf.float32)
    out = -(-size // stride) if padding == "same" else (size - kernel) // stride + 1
    dy = tf.constant(rng.standard_normal((3, out, out, 5)), tf.float32)
    expected = tf.raw_ops.Conv2DBackpropFilter(
        input=x,
        filter_sizes=[kernel, kernel, 4, 5],
        out_backprop=dy,
        strides=[1, stride, stride, 1],
        padding=padding.upper(),
    )
    got = kernel_gradient_by_taps(x, dy, (kernel, kernel), stride, padding)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-4)


def test_conv_with_tap_gradient_has_the_outputs_and_gradients_of_the_plain_conv():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal((2, 5, 5, 6)), tf.float32)
    w = tf.Variable(rng.standard_normal((3, 3, 6, 7)), dtype=tf.float32)
    dy = tf.constant(rng.standard_normal((2, 3, 3, 7)), tf.float32)
    results = []
    for conv in (
        lambda x, w: conv_with_tap_gradient(x, w, 2, "same"),
        lambda x, w: tf.nn.conv2d(x, w, 2, "SAME"),
    ):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = conv(x, w)
            loss = tf.reduce_sum(y * dy)
        results.append([y, *tape.gradient(loss, [x, w])])
    for ours, plain in zip(*results):
        np.testing.assert_allclose(ours.numpy(), plain.numpy(), rtol=1e-5, atol=1e-4)


def test_conv2d_takes_the_tap_gradient_only_for_bfloat16_with_many_channels():
    layer = conv2d(8, 3)
    assert isinstance(layer, Conv2D) and isinstance(layer, keras.layers.Conv2D)
    layer.build((None, 4, 4, TAP_GRADIENT_MIN_CHANNELS))
    many = tf.zeros((1, 4, 4, TAP_GRADIENT_MIN_CHANNELS), tf.bfloat16)
    assert layer.uses_tap_gradient(many, layer.kernel)
    assert not layer.uses_tap_gradient(tf.cast(many, tf.float32), layer.kernel)
    few = tf.zeros((1, 4, 4, TAP_GRADIENT_MIN_CHANNELS // 2), tf.bfloat16)
    assert not layer.uses_tap_gradient(few, layer.kernel)
    pointwise = conv2d(8, 1)
    pointwise.build(many.shape)
    assert not pointwise.uses_tap_gradient(many, pointwise.kernel)


def test_bfloat16_conv2d_trains_like_keras_conv2d_through_the_taps():
    """Same weights in both layers: outputs equal, and both gradients agree to bfloat16's
    rounding; the traced backward pass holds the taps' matmuls instead of a filter gradient."""
    rng = np.random.default_rng(2)
    channels = TAP_GRADIENT_MIN_CHANNELS
    x = tf.constant(rng.standard_normal((2, 4, 4, channels)), tf.float32)
    dy = tf.constant(rng.standard_normal((2, 4, 4, 8)), tf.float32)
    ours = Conv2D(8, 3, padding="same", use_bias=False, dtype="mixed_bfloat16")
    plain = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, dtype="mixed_bfloat16")
    ours.build(x.shape)
    plain.build(x.shape)
    plain.kernel.assign(ours.kernel)

    @tf.function
    def step(layer, x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * dy)
        return (y, *tape.gradient(loss, [x, layer.kernel]))

    got, expected = step(ours, x), step(plain, x)
    assert got[0].dtype == tf.bfloat16
    np.testing.assert_array_equal(got[0].numpy(), expected[0].numpy())
    for a, b in zip(got[1:], expected[1:]):
        scale = np.abs(b.numpy()).max()
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=scale * 2**-7)

    graph = step.get_concrete_function(ours, x).graph.as_graph_def()
    op_types = {node.op for f in graph.library.function for node in f.node_def}
    op_types |= {node.op for node in graph.node}
    assert "Conv2DBackpropFilter" not in op_types
    assert "Conv2DBackpropInput" in op_types
