"""A compact network for fast CIFAR-10 training: patch-whitening stem + three conv groups.

The shape follows the fastest known CIFAR-10 trainers (Page's "ResNet-9" work and Jordan's
airbench, see README "A fast recipe"): almost all compute sits in a few wide 3x3 convs at low
resolution, the first layer is a fixed 2x2 conv that whitens the pixel patches, so the first
trainable layer sees decorrelated inputs, and batch norm has no scale (only a shift), which
makes the short, high-lr schedules that such nets use stable. This is our own Keras
implementation of those ideas; it outputs logits.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from resnet_tf.config.choices import ACTIVATIONS, KERNEL_INITS
from resnet_tf.config.schema import ModelConfig
from resnet_tf.models.blocks import batch_norm, conv2d, conv_kernel_initializer
from resnet_tf.models.gelu import fused_gelu, inference_takes_fused_gelu
from resnet_tf.models.patch_whitening import PatchWhitening


@keras.saving.register_keras_serializable(package="resnet_tf")
class ConvGroup(keras.layers.Layer):
    """conv 3x3 -> max-pool 2 -> BN -> GELU -> conv 3x3 -> BN -> GELU.

    Pooling right after the first conv halves the work of everything after it.
    """

    def __init__(
        self,
        filters: int,
        bn_momentum: float = ModelConfig.bn_momentum,
        bn_epsilon: float = ModelConfig.bn_epsilon,
        activation: str = "gelu",
        identity_init: bool = ModelConfig.identity_init,
        kernel_init: str = ModelConfig.kernel_init,
        mid_filters: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_activation(activation)
        self.activation = activation
        self.identity_init = bool(identity_init)
        self.kernel_init = kernel_init
        self.filters = int(filters)
        # conv1's width: `filters`, or fewer in a pruned model (see resnet_tf/compress/).
        self.mid_filters = int(mid_filters) if mid_filters is not None else self.filters
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        self.conv1 = conv2d(
            self.mid_filters,
            3,
            name="conv1",
            dtype=self.dtype_policy,
            kernel_initializer=conv_initializer(kernel_init),
        )
        self.pool = keras.layers.MaxPooling2D(2, dtype=self.dtype_policy)
        self.bn1 = _shift_only_bn(self.bn_momentum, self.bn_epsilon, "bn1", self.dtype_policy)
        self.conv2 = conv2d(
            self.filters,
            3,
            name="conv2",
            dtype=self.dtype_policy,
            kernel_initializer=conv_initializer(kernel_init),
        )
        self.bn2 = _shift_only_bn(self.bn_momentum, self.bn_epsilon, "bn2", self.dtype_policy)

    def build(self, input_shape):
        self.conv1.build(input_shape)
        shape = self.pool.compute_output_shape(self.conv1.compute_output_shape(input_shape))
        self.bn1.build(shape)
        self.conv2.build(shape)
        self.bn2.build(shape)
        if self.identity_init:
            start_as_identity(self.conv1)
            start_as_identity(self.conv2)

    def call(self, inputs, training=None):
        x = self.bn1(self.pool(self.conv1(inputs)), training=training)
        x = self.conv2(activate(x, self.activation, training))
        return activate(self.bn2(x, training=training), self.activation, training)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        half = lambda size: None if size is None else size // 2  # noqa: E731
        return (batch, half(height), half(width), self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "bn_momentum": self.bn_momentum,
            "bn_epsilon": self.bn_epsilon,
            "activation": self.activation,
            "identity_init": self.identity_init,
            "kernel_init": self.kernel_init,
            "mid_filters": self.mid_filters,
        }


def start_as_identity(conv: keras.layers.Conv2D) -> None:
    """Make a conv's first min(in, out) filters pass their input channel through unchanged
    (a Dirac kernel), keeping the random init for the rest: the net starts close to a shallow
    one and trains faster early on (airbench's identity init)."""
    kernel = ops.convert_to_numpy(conv.kernel).copy()
    size, _, channels_in, channels_out = kernel.shape
    n = min(channels_in, channels_out)
    kernel[:, :, :, :n] = 0.0
    kernel[size // 2, size // 2, np.arange(n), np.arange(n)] = 1.0
    conv.kernel.assign(kernel)


def conv_initializer(kernel_init: str) -> keras.initializers.Initializer:
    """he_normal: the project's He fan_out normal. fan_in_uniform: uniform in
    +-1/sqrt(fan_in), PyTorch's default. Behind batch norm the scale of a conv's weights sets
    its effective step size (lr / |w|^2), so recipes tuned in PyTorch (airbench) expect the
    smaller fan_in_uniform weights: 1/sqrt(6) of he_normal's for a square conv."""
    if kernel_init not in KERNEL_INITS:
        raise ValueError(f"kernel_init must be one of {KERNEL_INITS}, got {kernel_init!r}")
    if kernel_init == "fan_in_uniform":
        return keras.initializers.VarianceScaling(1 / 3, mode="fan_in", distribution="uniform")
    return conv_kernel_initializer()


def _check_activation(name: str) -> None:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def activate(x, name: str, training=None):
    """GELU (tanh form) as airbench uses, or ReLU. Training uses the XLA-fused GELU
    (models/gelu.py), and so does inference inside `fused_gelu_in_inference()` (the evaluation
    stage); other inference uses Keras' own, which every export format converts. Both compute
    the same function."""
    if name == "relu":
        return keras.activations.relu(x)
    if training or inference_takes_fused_gelu():
        return fused_gelu(x)
    return keras.activations.gelu(x, approximate=True)


def _shift_only_bn(momentum: float, epsilon: float, name: str, dtype) -> keras.layers.Layer:
    layer = batch_norm(momentum, epsilon, name=name, dtype=dtype)
    layer.scale = False  # set before build, so no gamma weight is made
    return layer


@keras.saving.register_keras_serializable(package="resnet_tf")
class FastNet(keras.Model):
    """Patch whitening -> GELU (or ReLU) -> three ConvGroups -> global max-pool -> linear, times
    logit_scale.

    `adapt(images)` must run once on normalised training images before training (the model
    still trains without it, but the stem then outputs zeros plus its bias).
    """

    def __init__(
        self,
        widths: tuple[int, ...] | list[int] = (64, 256, 256),
        num_classes: int = 10,
        bn_momentum: float = ModelConfig.bn_momentum,
        bn_epsilon: float = ModelConfig.bn_epsilon,
        logit_scale: float = 1 / 9,
        activation: str = "gelu",
        identity_init: bool = ModelConfig.identity_init,
        kernel_init: str = ModelConfig.kernel_init,
        mid_widths: tuple[int, ...] | list[int] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_activation(activation)
        self.activation = activation
        self.identity_init = bool(identity_init)
        self.kernel_init = kernel_init
        self.widths = [int(w) for w in widths]
        # Each group's first conv width (None: the group's width); pruning narrows them.
        self.mid_widths = [int(w) for w in mid_widths] if mid_widths is not None else None
        if self.mid_widths is not None and len(self.mid_widths) != len(self.widths):
            raise ValueError(f"mid_widths: expected {len(self.widths)} widths, got {mid_widths!r}")
        self.num_classes = int(num_classes)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        self.logit_scale = float(logit_scale)
        self.whiten = PatchWhitening(name="whiten", dtype=self.dtype_policy)
        self.groups = [
            ConvGroup(
                w,
                bn_momentum,
                bn_epsilon,
                activation,
                identity_init,
                kernel_init,
                mid_filters=self.mid_widths[i] if self.mid_widths is not None else None,
                name=f"group{i + 1}",
                dtype=self.dtype_policy,
            )
            for i, w in enumerate(self.widths)
        ]
        self.pool = keras.layers.GlobalMaxPooling2D(dtype=self.dtype_policy)
        # float32 logits under mixed precision, as in ResNet.
        self.classifier = keras.layers.Dense(
            self.num_classes,
            use_bias=False,
            kernel_initializer=(
                conv_initializer(kernel_init)
                if kernel_init == "fan_in_uniform"
                else "glorot_uniform"
            ),
            name="classifier",
            dtype="float32",
        )

    def build(self, input_shape):
        self.whiten.build(input_shape)
        shape = self.whiten.compute_output_shape(input_shape)
        for group in self.groups:
            group.build(shape)
            shape = group.compute_output_shape(shape)
        self.classifier.build((shape[0], shape[-1]))

    def adapt(self, images: np.ndarray) -> None:
        self.whiten.adapt(images)

    def call(self, inputs, training=None):
        x = activate(self.whiten(inputs), self.activation, training)
        for group in self.groups:
            x = group(x, training=training)
        return self.classifier(self.pool(x)) * self.logit_scale

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "widths": list(self.widths),
                "num_classes": self.num_classes,
                "bn_momentum": self.bn_momentum,
                "bn_epsilon": self.bn_epsilon,
                "logit_scale": self.logit_scale,
                "activation": self.activation,
                "identity_init": self.identity_init,
                "kernel_init": self.kernel_init,
                "mid_widths": self.mid_widths,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
