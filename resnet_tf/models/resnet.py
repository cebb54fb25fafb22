"""The ResNet model: a stem, stages of residual blocks, global average pool, logits."""

from __future__ import annotations

import keras
from keras import ops

from resnet_tf.config.schema import ModelConfig
from resnet_tf.models.blocks import SHORTCUT_TYPES, BasicBlock, Bottleneck, batch_norm, conv2d

BLOCK_TYPES = {"basic": BasicBlock, "bottleneck": Bottleneck}
STEM_TYPES = ("cifar", "imagenet", "seed")


@keras.saving.register_keras_serializable(package="resnet_tf")
class ResNet(keras.Model):
    """A subclassed ResNet that outputs logits (no softmax).

    Stems (all followed by BN + ReLU):
      - ``"cifar"``: 3x3 conv, stride 1, no bias, no pooling (keeps 32x32).
      - ``"imagenet"``: 7x7/2 conv, no bias, then 3x3/2 max-pool (32 -> 8).
      - ``"seed"``: 3x3 'valid' conv with bias, then 2x2/1 max-pool (32 -> 29),
        as in the seed tutorial network.

    Stage ``i`` has ``stage_blocks[i]`` blocks of width ``stage_widths[i]``; every
    stage but the first starts with a stride-2 block. The stem has
    ``stage_widths[0]`` channels. The classifier Dense is float32 so the logits
    stay float32 under a mixed-precision policy.
    """

    def __init__(
        self,
        block_type: str = "basic",
        stage_blocks: tuple[int, ...] | list[int] = (2, 2, 2, 2),
        stage_widths: tuple[int, ...] | list[int] = (64, 128, 256, 512),
        num_classes: int = 10,
        stem: str = "cifar",
        shortcut: str = "projection",
        conv_bias: bool = False,
        zero_init_residual: bool = ModelConfig.zero_init_residual,
        bn_momentum: float = ModelConfig.bn_momentum,
        bn_epsilon: float = ModelConfig.bn_epsilon,
        block_inner_widths: list[list[int]] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if block_type not in BLOCK_TYPES:
            raise ValueError(f"block_type must be one of {tuple(BLOCK_TYPES)}, got {block_type!r}")
        if stem not in STEM_TYPES:
            raise ValueError(f"stem must be one of {STEM_TYPES}, got {stem!r}")
        if shortcut not in SHORTCUT_TYPES:
            raise ValueError(f"shortcut must be one of {SHORTCUT_TYPES}, got {shortcut!r}")
        if len(stage_blocks) != len(stage_widths) or not stage_blocks:
            raise ValueError("stage_blocks and stage_widths must be non-empty and equally long")
        self.block_type = block_type
        self.stage_blocks = [int(n) for n in stage_blocks]
        self.stage_widths = [int(w) for w in stage_widths]
        self.num_classes = int(num_classes)
        self.stem = stem
        self.shortcut = shortcut
        self.conv_bias = bool(conv_bias)
        self.zero_init_residual = bool(zero_init_residual)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        # Per block, the widths inside its residual branch (None: the stage width); pruning
        # narrows them, see resnet_tf/compress/.
        total_blocks = sum(self.stage_blocks)
        self.block_inner_widths = (
            [[int(w) for w in widths] for widths in block_inner_widths]
            if block_inner_widths is not None
            else None
        )
        if self.block_inner_widths is not None and len(self.block_inner_widths) != total_blocks:
            raise ValueError(f"block_inner_widths: expected one list per block ({total_blocks})")

        stem_width = self.stage_widths[0]
        if stem == "cifar":
            self.stem_conv = conv2d(stem_width, 3, name="stem_conv", dtype=self.dtype_policy)
            self.stem_pool = None
        elif stem == "imagenet":
            self.stem_conv = conv2d(
                stem_width, 7, strides=2, name="stem_conv", dtype=self.dtype_policy
            )
            self.stem_pool = keras.layers.MaxPooling2D(
                3, strides=2, padding="same", name="stem_pool", dtype=self.dtype_policy
            )
        else:  # "seed"
            self.stem_conv = conv2d(
                stem_width,
                3,
                use_bias=True,
                padding="valid",
                name="stem_conv",
                dtype=self.dtype_policy,
            )
            self.stem_pool = keras.layers.MaxPooling2D(
                2, strides=1, name="stem_pool", dtype=self.dtype_policy
            )
        self.stem_bn = batch_norm(
            self.bn_momentum, self.bn_epsilon, name="stem_bn", dtype=self.dtype_policy
        )

        block_class = BLOCK_TYPES[block_type]
        self.blocks = []
        for stage_index, (num_blocks, width) in enumerate(
            zip(self.stage_blocks, self.stage_widths)
        ):
            for block_index in range(num_blocks):
                first_in_later_stage = stage_index > 0 and block_index == 0
                inner = (
                    self.block_inner_widths[len(self.blocks)]
                    if self.block_inner_widths is not None
                    else None
                )
                self.blocks.append(
                    block_class(
                        width,
                        strides=2 if first_in_later_stage else 1,
                        inner_widths=inner,
                        shortcut=shortcut,
                        conv_bias=self.conv_bias,
                        zero_init_residual=self.zero_init_residual,
                        bn_momentum=self.bn_momentum,
                        bn_epsilon=self.bn_epsilon,
                        name=f"stage{stage_index + 1}_block{block_index + 1}",
                        dtype=self.dtype_policy,
                    )
                )
        self.global_pool = keras.layers.GlobalAveragePooling2D(
            name="global_pool", dtype=self.dtype_policy
        )
        # Sublayers take the model's own policy (not the global one at construction), so a model
        # saved under mixed precision reloads as it was; the logits stay float32 in any case.
        self.classifier = keras.layers.Dense(num_classes, dtype="float32", name="logits")

    def build(self, input_shape):
        """Create every weight now by tracing ``call`` on a symbolic input.

        A subclassed model otherwise gets weights only on its first real call,
        so count_params() and weight loading would fail before that.
        """
        self.call(keras.KerasTensor(tuple(input_shape)))

    def call(self, inputs, training=None):
        x = self.stem_conv(inputs)
        x = self.stem_bn(x, training=training)
        x = ops.relu(x)
        if self.stem_pool is not None:
            x = self.stem_pool(x)
        for block in self.blocks:
            x = block(x, training=training)
        x = self.global_pool(x)
        return self.classifier(x)

    def stage_output_shapes(
        self, input_shape: tuple[int, ...] = (32, 32, 3)
    ) -> list[tuple[str, tuple]]:
        """(name, shape) after the stem, each stage and the classifier, for one image.

        Computed from layer shape arithmetic, so it needs no forward pass.
        """
        shape = (None, *input_shape)
        shape = self.stem_conv.compute_output_shape(shape)
        if self.stem_pool is not None:
            shape = self.stem_pool.compute_output_shape(shape)
        result = [("stem", shape[1:])]
        first = 0
        for stage_index, num_blocks in enumerate(self.stage_blocks):
            for block in self.blocks[first : first + num_blocks]:
                shape = block.compute_output_shape(shape)
            first += num_blocks
            result.append((f"stage{stage_index + 1}", shape[1:]))
        result.append(("logits", (self.num_classes,)))
        return result

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "block_type": self.block_type,
                "stage_blocks": list(self.stage_blocks),
                "stage_widths": list(self.stage_widths),
                "num_classes": self.num_classes,
                "stem": self.stem,
                "shortcut": self.shortcut,
                "conv_bias": self.conv_bias,
                "zero_init_residual": self.zero_init_residual,
                "bn_momentum": self.bn_momentum,
                "bn_epsilon": self.bn_epsilon,
                "block_inner_widths": self.block_inner_widths,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
