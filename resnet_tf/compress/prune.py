"""Structured pruning: remove whole filters, ranked by the L1 norm of their weights, and build
the narrower model they leave, with the kept weights copied exactly.

Li et al. 2017 ("Pruning filters for efficient ConvNets"): a filter whose weights are small
contributes little, so the filters with the smallest sum of |weights| go first. The result is
a smaller architecture (fewer parameters and multiply-accumulates), not a mask: it runs faster
and saves as an ordinary .keras model.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from resnet_tf.compress.channels import ChannelGroup, channel_groups, narrower_config
from resnet_tf.errors import CompressError
from resnet_tf.models.saved import INPUT_SHAPE

CRITERIA = ("l1",)


@dataclass(frozen=True)
class GroupCut:
    """What pruning did to one channel group: its name, stage, and the channels kept."""

    name: str
    stage: int
    width: int
    kept: tuple[int, ...]


def check_criterion(criterion: str) -> None:
    """Refuse a ranking we do not have, before any model is loaded."""
    if criterion not in CRITERIA:
        raise CompressError(
            f"--criterion: expected one of {', '.join(CRITERIA)}, found {criterion!r}"
        )


def filter_scores(group: ChannelGroup, criterion: str = "l1") -> np.ndarray:
    """One score per output channel of the group's producer; the lowest are removed first."""
    check_criterion(criterion)
    kernel = ops.convert_to_numpy(group.producer.kernel).astype(np.float64)
    return np.abs(kernel).sum(axis=(0, 1, 2))


def channels_to_keep(scores: np.ndarray, amount: float) -> np.ndarray:
    """Indices (ascending) of the channels left after removing round(amount * width) of the
    lowest-scoring ones; at least one channel always stays. Ties keep the earlier channel."""
    width = len(scores)
    removed = min(math.floor(amount * width + 0.5), width - 1)
    order = np.argsort(-scores, kind="stable")  # best first; equal scores in channel order
    return np.sort(order[: width - removed])


def prune_model(
    model: keras.Model, amounts: list[float], criterion: str = "l1"
) -> tuple[keras.Model, list[GroupCut]]:
    """A narrower copy of `model`: each group of stage s loses the fraction amounts[s] of its
    channels (a single amount applies to every stage). `model` itself is left unchanged."""
    groups = channel_groups(model)
    stages = 1 + max(group.stage for group in groups)
    if len(amounts) == 1:
        amounts = amounts * stages
    if len(amounts) != stages:
        raise CompressError(
            f"--amount: expected one fraction, or one per stage ({stages} for {model.name}), "
            f"found {len(amounts)}"
        )
    cuts = []
    for group in groups:
        kept = channels_to_keep(filter_scores(group, criterion), amounts[group.stage])
        cuts.append(GroupCut(group.name, group.stage, group.width, tuple(int(i) for i in kept)))
    config = narrower_config(model, {g.config_key: len(c.kept) for g, c in zip(groups, cuts)})
    narrow = type(model).from_config(config)
    narrow.build((None, *INPUT_SHAPE))
    copy_kept_weights(model, narrow, groups, cuts)
    return narrow, cuts


def copy_kept_weights(
    source: keras.Model, target: keras.Model, groups: list[ChannelGroup], cuts: list[GroupCut]
) -> None:
    """Copy every weight of `source` into the narrower `target` (same layer paths), keeping
    only the kept channels: a producer's filters and biases, its norm's four vectors, and
    each consumer's input slices."""
    slices: dict[str, list[tuple[int, tuple[int, ...]]]] = defaultdict(list)
    for group, cut in zip(groups, cuts):
        for weight in group.producer.weights:  # kernel (h, w, in, out), bias (out,)
            slices[weight.path].append((weight.ndim - 1, cut.kept))
        for weight in group.norm.weights:  # gamma, beta, moving mean and variance
            slices[weight.path].append((0, cut.kept))
        for consumer in group.consumers:  # conv kernel (h, w, in, out), dense kernel (in, out)
            slices[consumer.kernel.path].append((consumer.kernel.ndim - 2, cut.kept))
    by_path = {weight.path: weight for weight in source.weights}
    for weight in target.weights:
        if weight.path not in by_path:
            raise CompressError(f"{source.name}: no weight {weight.path} to copy (a bug)")
        value = ops.convert_to_numpy(by_path[weight.path])
        for axis, kept in slices.get(weight.path, ()):
            value = np.take(value, kept, axis=axis)
        if value.shape != tuple(weight.shape):
            raise CompressError(
                f"{weight.path}: pruned to {value.shape}, the narrower model has "
                f"{tuple(weight.shape)} (a bug)"
            )
        weight.assign(value)
