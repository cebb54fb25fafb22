"""Model size figures: parameter counts and multiply-accumulates (MACs) per image.

MACs count only Conv2D and Dense layers (output positions x kernel size), the
usual convention in papers; BN, ReLU, additions and pooling are ignored.
"""

from __future__ import annotations

import math

import keras
import numpy as np


def count_trainable_params(model: keras.Model) -> int:
    """Trainable weights only, the figure papers quote (BN moving stats excluded)."""
    return int(sum(math.prod(weight.shape) for weight in model.trainable_weights))


def _all_layers(model: keras.Layer) -> list[keras.Layer]:
    # Keras has no public recursive walk; _flatten_layers is the one it uses itself.
    return list(model._flatten_layers(include_self=False, recursive=True))


def _layer_macs(layer: keras.Layer, output_shape: tuple) -> int:
    """Conv2D: H_out*W_out*k_h*k_w*C_in/groups*C_out; Dense: in*out per position."""
    positions = math.prod(output_shape[1:-1])
    return int(positions * math.prod(layer.kernel.shape))


def layer_macs(
    model: keras.Model, input_shape: tuple[int, ...] = (32, 32, 3)
) -> list[tuple[keras.Layer, int]]:
    """(layer, MACs for a single image) of every Conv2D/Dense/PatchWhitening call, in call order.

    Runs one batch-1 inference pass with each such layer temporarily wrapped
    to record its output shape, so it works for any model whose convs are
    Keras layers, whatever the stem or padding.
    """
    from resnet_tf.models.patch_whitening import PatchWhitening

    counted_types = (keras.layers.Conv2D, keras.layers.Dense, PatchWhitening)
    layers = [layer for layer in _all_layers(model) if isinstance(layer, counted_types)]
    calls: list[tuple[keras.Layer, int]] = []

    def recording(layer, original_call):
        def call(*args, **kwargs):
            outputs = original_call(*args, **kwargs)
            calls.append((layer, _layer_macs(layer, tuple(outputs.shape))))
            return outputs

        return call

    for layer in layers:
        layer.call = recording(layer, layer.call)
    try:
        model(np.zeros((1, *input_shape), dtype="float32"), training=False)
    finally:
        for layer in layers:
            del layer.call  # drop the instance attribute, the class method shows again
    return calls


def count_macs(model: keras.Model, input_shape: tuple[int, ...] = (32, 32, 3)) -> int:
    """Multiply-accumulates of one forward pass for a single image of ``input_shape``."""
    return sum(macs for _, macs in layer_macs(model, input_shape))


def _format_count(value: float) -> str:
    if value >= 1e9:
        return f"{value / 1e9:.2f} G"
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    return f"{value / 1e3:.1f} K"


def describe_model(model: keras.Model, input_shape: tuple[int, ...] = (32, 32, 3)) -> str:
    """A few lines: name, parameter counts, MACs per image and per-stage output shapes."""
    trainable = count_trainable_params(model)
    total = model.count_params()
    macs = count_macs(model, input_shape)
    lines = [
        f"{model.name}  (input {'x'.join(map(str, input_shape))})",
        f"  params:      {total:,} total, {trainable:,} trainable ({_format_count(trainable)})",
        f"  MACs/image:  {macs:,} ({macs / 1e6:,.1f} M = {macs / 1e9:.3f} G)",
    ]
    if hasattr(model, "stage_output_shapes"):
        lines.append("  output shapes:")
        for stage_name, shape in model.stage_output_shapes(input_shape):
            lines.append(f"    {stage_name:<8} {tuple(shape)}")
    return "\n".join(lines)
