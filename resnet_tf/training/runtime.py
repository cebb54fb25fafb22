"""The process's TensorFlow settings for a run, made once and in the order TensorFlow needs.

Thread pools can only be set before TensorFlow starts running (a strategy or the first op
starts it), so they come first; then the distribution strategy; then seeds, op determinism and
the precision policy, before any model or dataset exists.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from resnet_tf.config import Config, RuntimeConfig
from resnet_tf.errors import TrainingError
from resnet_tf.training import distribute
from resnet_tf.training.distribute import Distribution
from resnet_tf.training.precision import check_precision, resolve_precision


def set_up(config: Config, *, distributed: bool = True) -> Distribution:
    """Everything a run needs of the process; `distributed=False` keeps one device (a dry run
    or a benchmark builds no strategy)."""
    set_thread_pools(config.runtime)
    if distributed:
        dist = distribute.set_up(config.runtime.distribution, config.train.batch_size)
    else:
        dist = Distribution(strategy=None)
    set_seed_and_precision(config.runtime)
    return dist


def set_thread_pools(runtime: RuntimeConfig) -> None:
    """TensorFlow's thread pools; an error once TensorFlow runs with different ones."""
    threads = tf.config.threading
    try:
        if runtime.intra_op_threads != threads.get_intra_op_parallelism_threads():
            threads.set_intra_op_parallelism_threads(runtime.intra_op_threads)
        if runtime.inter_op_threads != threads.get_inter_op_parallelism_threads():
            threads.set_inter_op_parallelism_threads(runtime.inter_op_threads)
    except RuntimeError:
        raise TrainingError(
            "runtime.intra_op_threads/inter_op_threads: TensorFlow is already running in this "
            "process and cannot change its thread pools; set them in a new process"
        ) from None


def set_seed_and_precision(runtime: RuntimeConfig) -> None:
    """Seeds, op determinism and the precision policy."""
    keras.utils.set_random_seed(runtime.seed)
    if runtime.deterministic:
        tf.config.experimental.enable_op_determinism()
    else:  # it is process-wide: undo an earlier run's setting (tests, notebooks)
        from tensorflow.python.framework import config as tf_config

        tf_config.disable_op_determinism()
    policy = resolve_precision(runtime.mixed_precision)
    check_precision(policy)
    keras.mixed_precision.set_global_policy(policy)
