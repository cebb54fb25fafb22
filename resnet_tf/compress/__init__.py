"""Compression of a trained model into a smaller one: structured channel pruning.

channels.py     which channels of each model family can be removed, and what reads them
prune.py        prune_model: rank filters (L1), build the narrower model, copy kept weights
pruning_run.py  prune_checkpoint: prune.py's checkpoint -> <run>/pruned/*.keras (+ .json)

Fine-tuning the result is an ordinary training run (`model.init_from`); distillation, the other
way to a small model, is a training option (resnet_tf/training/distillation.py).
"""

from resnet_tf.compress.prune import CRITERIA, prune_model
from resnet_tf.compress.pruning_run import PruneResult, parse_amounts, prune_checkpoint

__all__ = ["CRITERIA", "PruneResult", "parse_amounts", "prune_checkpoint", "prune_model"]
