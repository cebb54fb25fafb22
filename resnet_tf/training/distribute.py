"""Data-parallel training with tf.distribute: one device, several GPUs, or several machines.

`runtime.distribution` picks the strategy; `train.batch_size` is always the global batch, which
Keras splits evenly over the replicas (per-replica batch = batch_size / replicas). Each replica
normalizes with its own batch statistics (BatchNormalization is not synchronized), as in the
usual data-parallel ResNet recipes.

Multi-worker training is configured the standard way, by the TF_CONFIG environment variable on
every machine. Every worker runs the same training; only the chief (task "chief", or "worker" 0
when the cluster has no chief) writes the run folder. The others write their (identical)
checkpoints to a private temporary folder, since TensorFlow's collectives need every worker to
take part in each save, and delete it at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from resnet_tf.errors import DistributionError

# Testing and trying it out without GPUs: split the CPU into this many logical devices, so that
# `mirrored` has several replicas. Read here only, before TensorFlow initializes its devices.
CPU_DEVICES_ENV = "RESNET_TF_CPU_DEVICES"


@dataclass
class Distribution:
    strategy: tf.distribute.Strategy | None  # None: TensorFlow's default (one device)
    replicas: int = 1
    workers: int = 1
    worker_index: int = 0
    is_chief: bool = True

    def scope(self) -> Any:
        """Model, optimizer and weights must be made inside it to be mirrored."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def describe(self, batch_size: int) -> str:
        if self.strategy is None:
            return "one device"
        kind = type(self.strategy).__name__
        return (
            f"{kind}: {self.replicas} replicas on {self.workers} worker(s), "
            f"global batch {batch_size} = {batch_size // self.replicas} per replica"
        )


def set_worker_index(index: int) -> None:
    """--worker-index N: make this process task ("worker", N) of the cluster in TF_CONFIG."""
    tf_config = _read_tf_config()
    workers = tf_config.get("cluster", {}).get("worker", [])
    if not 0 <= index < len(workers):
        raise DistributionError(
            f"--worker-index {index}: TF_CONFIG lists {len(workers)} workers "
            f"(valid indices 0-{len(workers) - 1})"
        )
    tf_config["task"] = {"type": "worker", "index": index}
    os.environ["TF_CONFIG"] = json.dumps(tf_config)


def _read_tf_config() -> dict:
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise DistributionError(
            "runtime.distribution: multi_worker needs TF_CONFIG, e.g. "
            '\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}}\', on every worker'
        )
    try:
        tf_config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DistributionError(f"TF_CONFIG: invalid JSON: {exc}") from None
    if not isinstance(tf_config, dict) or not tf_config.get("cluster"):
        raise DistributionError('TF_CONFIG: expected {"cluster": {"worker": [...]}, ...}')
    return tf_config


def set_up(kind: str, batch_size: int) -> Distribution:
    """The strategy for `runtime.distribution`; call before TensorFlow touches any device."""
    cpu_devices = int(os.environ.get(CPU_DEVICES_ENV, "0") or 0)
    if cpu_devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(cpu_devices)]
        )
    gpus = tf.config.list_physical_devices("GPU")
    if kind == "none" or (kind == "auto" and len(gpus) < 2):
        return Distribution(strategy=None)
    if kind in ("auto", "mirrored"):
        # Without GPUs MirroredStrategy would use CPU:0 only; name the (logical) CPUs instead.
        devices = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
        dist = Distribution(strategy, replicas=strategy.num_replicas_in_sync)
    else:
        tf_config = _read_tf_config()
        task = tf_config.get("task") or {}
        if "type" not in task or "index" not in task:
            raise DistributionError(
                "TF_CONFIG has no task for this process; add "
                '"task": {"type": "worker", "index": N} or pass --worker-index N'
            )
        cluster = tf_config["cluster"]
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        is_chief = task["type"] == "chief" or (
            task["type"] == "worker" and task["index"] == 0 and "chief" not in cluster
        )
        dist = Distribution(
            strategy,
            replicas=strategy.num_replicas_in_sync,
            workers=sum(len(v) for k, v in cluster.items() if k in ("chief", "worker")),
            worker_index=int(task["index"]),
            is_chief=is_chief,
        )
    if batch_size % dist.replicas:
        raise DistributionError(
            f"train.batch_size: the global batch ({batch_size}) must divide evenly over the "
            f"{dist.replicas} replicas"
        )
    return dist


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Every worker builds the same batches in the same order and keeps its share of each."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
