"""Residual blocks: BasicBlock (2 x 3x3 conv) and Bottleneck (1x1-3x3-1x1).

Both blocks decide in ``build`` whether the shortcut must change shape (stride
or channel count differs); if it must, the ``shortcut`` argument picks how:

- ``"projection"``: 1x1 conv (no bias) + BatchNorm, as in torchvision ("option B").
- ``"zero_pad"``: He et al. 2015 CIFAR "option A": take every second pixel and
  zero-pad the channels, so the shortcut has no parameters.
- ``"conv"``: 1x1 conv with bias and no BatchNorm, as in the seed tutorial net.

All tensors are channels-last (NHWC).
"""

from __future__ import annotations

import keras
from keras import ops

from resnet_tf.config.schema import ModelConfig
from resnet_tf.models.batch_norm import FusedBatchNormalization
from resnet_tf.models.conv import Conv2D

SHORTCUT_TYPES = ("projection", "zero_pad", "conv")


def conv_kernel_initializer() -> keras.initializers.Initializer:
    """He-normal init with fan_out, i.e. PyTorch's kaiming_normal_(mode="fan_out").

    torchvision initialises ResNet convs this way; Keras' "he_normal" uses fan_in
    and a truncated normal instead. A fresh instance per layer keeps configs
    independent.
    """
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_out", distribution="untruncated_normal"
    )


def conv2d(
    filters: int,
    kernel_size: int,
    strides: int = 1,
    use_bias: bool = False,
    padding: str = "same",
    name: str | None = None,
    dtype=None,
    kernel_initializer: keras.initializers.Initializer | None = None,
) -> Conv2D:
    """A Conv2D with this project's defaults (He fan_out init unless given, no bias)."""
    return Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=kernel_initializer or conv_kernel_initializer(),
        name=name,
        dtype=dtype,
    )


def batch_norm(
    momentum: float, epsilon: float, zero_gamma: bool = False, name: str | None = None, dtype=None
) -> keras.layers.BatchNormalization:
    """BatchNorm with gamma 1 / beta 0, or gamma 0 to start a residual branch at zero."""
    return FusedBatchNormalization(
        momentum=momentum,
        epsilon=epsilon,
        gamma_initializer="zeros" if zero_gamma else "ones",
        beta_initializer="zeros",
        name=name,
        dtype=dtype,
    )


class _ResidualBlock(keras.layers.Layer):
    """Shared shortcut handling and config for BasicBlock and Bottleneck."""

    expansion = 1
    inner_convs = 1  # convs of the residual branch before its last one

    def __init__(
        self,
        filters: int,
        strides: int = 1,
        shortcut: str = "projection",
        conv_bias: bool = False,
        zero_init_residual: bool = ModelConfig.zero_init_residual,
        bn_momentum: float = ModelConfig.bn_momentum,
        bn_epsilon: float = ModelConfig.bn_epsilon,
        inner_widths: list[int] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if shortcut not in SHORTCUT_TYPES:
            raise ValueError(f"shortcut must be one of {SHORTCUT_TYPES}, got {shortcut!r}")
        if strides not in (1, 2):
            raise ValueError(f"strides must be 1 or 2, got {strides!r}")
        self.filters = int(filters)
        self.strides = int(strides)
        self.shortcut = shortcut
        self.conv_bias = bool(conv_bias)
        self.zero_init_residual = bool(zero_init_residual)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        self.out_channels = self.filters * self.expansion
        # The output widths of the branch's convs before the last (BasicBlock: conv1;
        # Bottleneck: conv1, conv2): `filters` each, fewer in a pruned model. The last conv's
        # width is out_channels, which the addition ties to the shortcut.
        inner = self.inner_convs
        self.inner_widths = [int(w) for w in inner_widths or [self.filters] * inner]
        if len(self.inner_widths) != inner or min(self.inner_widths) < 1:
            raise ValueError(f"inner_widths: expected {inner} widths >= 1, got {inner_widths!r}")
        # Filled in by build(), once the input channel count is known.
        self.shortcut_conv = None
        self.shortcut_bn = None
        self.pad_channels = (0, 0)

    def build(self, input_shape):
        """Create the shortcut (it depends on the input channels) and all weights."""
        self._build_shortcut(input_shape)
        shape = input_shape
        for layer in self._residual_branch():
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        if self.shortcut_conv is not None:
            self.shortcut_conv.build(input_shape)
        if self.shortcut_bn is not None:
            self.shortcut_bn.build(shape)

    def _residual_branch(self) -> list[keras.layers.Layer]:
        """The conv and BN layers of the residual branch, in call order."""
        raise NotImplementedError

    def _build_shortcut(self, input_shape):
        in_channels = input_shape[-1]
        if self.strides == 1 and in_channels == self.out_channels:
            return  # identity shortcut
        if self.shortcut == "zero_pad":
            extra = self.out_channels - in_channels
            if extra < 0:
                raise ValueError(
                    "zero_pad shortcut cannot reduce channels "
                    f"({in_channels} -> {self.out_channels})"
                )
            # Split the zeros around the input channels, like the reference code.
            self.pad_channels = (extra // 2, extra - extra // 2)
        else:
            use_bias = self.shortcut == "conv"
            self.shortcut_conv = conv2d(
                self.out_channels,
                1,
                strides=self.strides,
                use_bias=use_bias,
                name="shortcut_conv",
                dtype=self.dtype_policy,
            )
            if self.shortcut == "projection":
                self.shortcut_bn = batch_norm(
                    self.bn_momentum, self.bn_epsilon, name="shortcut_bn", dtype=self.dtype_policy
                )

    def _shortcut(self, inputs, training):
        if self.shortcut_conv is not None:
            x = self.shortcut_conv(inputs)
            if self.shortcut_bn is not None:
                x = self.shortcut_bn(x, training=training)
            return x
        if self.pad_channels != (0, 0) or self.strides != 1:
            x = inputs[:, :: self.strides, :: self.strides, :]
            return ops.pad(x, [[0, 0], [0, 0], [0, 0], list(self.pad_channels)])
        return inputs

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        if self.strides != 1:
            height = None if height is None else (height + 1) // 2
            width = None if width is None else (width + 1) // 2
        return (batch, height, width, self.out_channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "strides": self.strides,
                "shortcut": self.shortcut,
                "conv_bias": self.conv_bias,
                "zero_init_residual": self.zero_init_residual,
                "bn_momentum": self.bn_momentum,
                "bn_epsilon": self.bn_epsilon,
                "inner_widths": list(self.inner_widths),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="resnet_tf")
class BasicBlock(_ResidualBlock):
    """Two 3x3 convs (ResNet-18/34, CIFAR ResNets): conv-BN-ReLU-conv-BN, add, ReLU.

    The stride sits in the first conv. ``conv_bias=True`` gives the convs biases
    (only the seed tutorial net wants that; BN makes them redundant).
    """

    expansion = 1

    def __init__(self, filters: int, strides: int = 1, **kwargs):
        super().__init__(filters, strides, **kwargs)
        self.conv1 = conv2d(
            self.inner_widths[0],
            3,
            strides=strides,
            use_bias=self.conv_bias,
            name="conv1",
            dtype=self.dtype_policy,
        )
        self.bn1 = batch_norm(
            self.bn_momentum, self.bn_epsilon, name="bn1", dtype=self.dtype_policy
        )
        self.conv2 = conv2d(
            filters, 3, use_bias=self.conv_bias, name="conv2", dtype=self.dtype_policy
        )
        self.bn2 = batch_norm(
            self.bn_momentum,
            self.bn_epsilon,
            zero_gamma=self.zero_init_residual,
            name="bn2",
            dtype=self.dtype_policy,
        )

    def _residual_branch(self):
        return [self.conv1, self.bn1, self.conv2, self.bn2]

    def call(self, inputs, training=None):
        x = self.conv1(inputs)
        x = self.bn1(x, training=training)
        x = ops.relu(x)
        x = self.conv2(x)
        x = self.bn2(x, training=training)
        return ops.relu(x + self._shortcut(inputs, training))


@keras.saving.register_keras_serializable(package="resnet_tf")
class Bottleneck(_ResidualBlock):
    """1x1 reduce, 3x3, 1x1 expand (x4) block of ResNet-50/101/152.

    The stride sits in the 3x3 conv ("ResNet v1.5", as torchvision does), which
    is slightly more accurate than striding the first 1x1 conv.
    """

    expansion = 4
    inner_convs = 2

    def __init__(self, filters: int, strides: int = 1, **kwargs):
        super().__init__(filters, strides, **kwargs)
        self.conv1 = conv2d(
            self.inner_widths[0], 1, use_bias=self.conv_bias, name="conv1", dtype=self.dtype_policy
        )
        self.bn1 = batch_norm(
            self.bn_momentum, self.bn_epsilon, name="bn1", dtype=self.dtype_policy
        )
        self.conv2 = conv2d(
            self.inner_widths[1],
            3,
            strides=strides,
            use_bias=self.conv_bias,
            name="conv2",
            dtype=self.dtype_policy,
        )
        self.bn2 = batch_norm(
            self.bn_momentum, self.bn_epsilon, name="bn2", dtype=self.dtype_policy
        )
        self.conv3 = conv2d(
            self.out_channels, 1, use_bias=self.conv_bias, name="conv3", dtype=self.dtype_policy
        )
        self.bn3 = batch_norm(
            self.bn_momentum,
            self.bn_epsilon,
            zero_gamma=self.zero_init_residual,
            name="bn3",
            dtype=self.dtype_policy,
        )

    def _residual_branch(self):
        return [self.conv1, self.bn1, self.conv2, self.bn2, self.conv3, self.bn3]

    def call(self, inputs, training=None):
        x = self.conv1(inputs)
        x = self.bn1(x, training=training)
        x = ops.relu(x)
        x = self.conv2(x)
        x = self.bn2(x, training=training)
        x = ops.relu(x)
        x = self.conv3(x)
        x = self.bn3(x, training=training)
        return ops.relu(x + self._shortcut(inputs, training))
