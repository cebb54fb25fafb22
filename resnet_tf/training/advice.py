"""What a user reads when training cannot go on for want of memory or disk: what happened,
what is safe in the run folder, and the command that goes on from there."""

from __future__ import annotations

from resnet_tf.config import TrainConfig
from resnet_tf.errors import DiskFullError
from resnet_tf.runs.run_dir import RunPaths


def out_of_memory_advice(train: TrainConfig, paths: RunPaths) -> str:
    """One line for an out-of-memory error: the same effective batch in half the memory, and
    that the run folder keeps its last completed epoch."""
    batch, steps = train.batch_size, train.accumulation_steps
    if batch > 1:
        fix = (
            f"try --set train.batch_size={batch // 2} --set train.accumulation_steps={steps * 2} "
            f"in a new run (the same effective batch of {batch * steps:,}, "
            f"with about half the activation memory)"
        )
    else:
        fix = "one image per batch does not fit: try a narrower model (model.width_multiplier)"
    return (
        f"out of memory training with train.batch_size {batch}: {fix}; {paths.root} keeps its "
        f"last completed epoch and resumes with python train.py --resume {paths.root} where "
        "memory allows"
    )


def disk_full_advice(error: DiskFullError, paths: RunPaths, saved_epoch: int) -> str:
    """One line for a file the run could not write: which, what is safe, how to go on."""
    if saved_epoch:
        safe = f"{paths.last} (epoch {saved_epoch}) is intact"
    else:
        safe = "no epoch was saved yet"
    return (
        f"{error}; {safe}: free some space, then continue with "
        f"python train.py --resume {paths.root}"
    )
