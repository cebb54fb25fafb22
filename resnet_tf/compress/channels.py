"""Which channels of a model can be removed, and what reads them: one ChannelGroup each.

A group is the output channels of one conv ("producer"), the batch norm right after it, and the
layers that read those channels ("consumers": the next conv, or the classifier). Removing
channel c means deleting filter c of the producer, entry c of the norm's four vectors, and
input slice c of each consumer; nothing else in the model sees the channel.

- ResNets (BasicBlock, Bottleneck, the option-A CIFAR nets): the convs inside each residual
  branch except its last one. A block's output is added to its shortcut, so every block of a
  stage, the stage's projection and (in stage 1) the stem share the stage's output channels;
  those stay whole, as in Li et al. 2017.
- FastNet: every conv of every group (no additions tie them). The patch-whitening stem stays
  whole: it is fixed (not trained), fitted to the data's pixel statistics, and cheap.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import keras

from resnet_tf.errors import CompressError
from resnet_tf.models.fastnet import FastNet
from resnet_tf.models.resnet import ResNet


@dataclass(frozen=True)
class ChannelGroup:
    stage: int  # 0-based stage (ResNet stage, FastNet group): --amount may differ per stage
    producer: keras.layers.Conv2D
    norm: keras.layers.BatchNormalization
    consumers: tuple[keras.layers.Layer, ...]
    config_key: tuple  # where the width lives in the model's config: (key, index, ...)

    @property
    def name(self) -> str:
        return self.producer.path

    @property
    def width(self) -> int:
        return int(self.producer.filters)


def channel_groups(model: keras.Model) -> list[ChannelGroup]:
    """The model's removable channel groups, in forward order."""
    if isinstance(model, ResNet):
        return _resnet_groups(model)
    if isinstance(model, FastNet):
        return _fastnet_groups(model)
    raise CompressError(
        f"pruning knows the ResNet and FastNet models of resnet_tf, found a "
        f"{type(model).__name__} ({model.name!r})"
    )


def stage_count(model: keras.Model) -> int:
    return len(model.stage_blocks) if isinstance(model, ResNet) else len(model.widths)


def _resnet_groups(model: ResNet) -> list[ChannelGroup]:
    groups = []
    stages = [stage for stage, count in enumerate(model.stage_blocks) for _ in range(count)]
    for index, (block, stage) in enumerate(zip(model.blocks, stages)):
        convs = [block.conv1, block.conv2] + ([block.conv3] if hasattr(block, "conv3") else [])
        norms = [block.bn1, block.bn2]
        for inner in range(len(convs) - 1):
            key = ("block_inner_widths", index, inner)
            groups.append(ChannelGroup(stage, convs[inner], norms[inner], (convs[inner + 1],), key))
    return groups


def _fastnet_groups(model: FastNet) -> list[ChannelGroup]:
    groups = []
    for index, group in enumerate(model.groups):
        following = model.groups[index + 1].conv1 if index + 1 < len(model.groups) else None
        groups.append(
            ChannelGroup(index, group.conv1, group.bn1, (group.conv2,), ("mid_widths", index))
        )
        groups.append(
            ChannelGroup(
                index, group.conv2, group.bn2, (following or model.classifier,), ("widths", index)
            )
        )
    return groups


def narrower_config(model: keras.Model, widths: dict[tuple, int]) -> dict:
    """The model's config with the widths of the groups at `widths`' config keys replaced."""
    config = copy.deepcopy(model.get_config())
    if isinstance(model, ResNet) and config.get("block_inner_widths") is None:
        config["block_inner_widths"] = [list(block.inner_widths) for block in model.blocks]
    if isinstance(model, FastNet) and config.get("mid_widths") is None:
        config["mid_widths"] = [group.mid_filters for group in model.groups]
    for key, width in widths.items():
        node = config
        for part in key[:-1]:
            node = node[part]
        node[key[-1]] = int(width)
    return config
