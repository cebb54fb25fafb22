"""What several test modules share: the tiny training run, and a child process's environment."""

from __future__ import annotations

import os

from tests.helpers import REPO_ROOT

# The tiny training run several test modules compare against: resnet20 on the tiny archive, 160
# training images (40 held out), batch 32, cosine, deterministic, 2 epochs.
TINY_RUN = [
    "model.name=resnet20",
    "data.val_size=40",
    "train.batch_size=32",
    "train.schedule.name=cosine",
    "runtime.deterministic=true",
]


# Set after TINY_RUN where a test's assertions do not depend on the model: the same data, batches
# and schedule with the quarter-width FastNet, which builds and traces in about a third of
# resnet20's time (~10 s less per training process on 2 cores). Not for comparisons of loss
# figures: on the tiny archive this net's loss stays near ln(10) whatever the training does.
QUICK_MODEL = ["model.name=fastnet_relu", "model.width_multiplier=0.25"]


def tiny_run_args(archive, out, name, epochs=2, extra=()) -> list[str]:
    """train.py arguments for TINY_RUN (plus `extra` overrides) into out/name."""
    sets = [*TINY_RUN, f"train.epochs={epochs}", *extra]
    return [
        "--config",
        str(REPO_ROOT / "configs" / "quick.yaml"),
        "--data-dir",
        str(archive),
        "--output-dir",
        str(out),
        "--name",
        name,
        *[a for s in sets for a in ("--set", s)],
    ]


# configs/fast.yaml shrunk: a quarter-width FastNet on 160 tiny-archive images, 2 epochs.
TINY_FAST = ["model.width_multiplier=0.25", "data.subset=200", "data.val_size=40", "train.epochs=2"]


def tiny_fast_config(archive, out, name, extra=()):
    """The resolved config of TINY_FAST (plus `extra` overrides) into out/name."""
    from resnet_tf import experiment  # late: it imports TensorFlow

    fast = str(REPO_ROOT / "configs" / "fast.yaml")
    return experiment.resolve_config(fast, [*TINY_FAST, *extra], str(archive), str(out), name)


def child_env(extra: dict | None = None) -> dict:
    """The environment for a Python child process that imports this repository."""
    quiet = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO_ROOT)}
    return {**os.environ, **quiet, **(extra or {})}


def save_bottleneck_teacher(path, widths=(8, 16)):
    """An untrained ResNet of Bottleneck blocks, one per stage (the smallest of its kind), saved
    as a distillation teacher at `path`."""
    import keras  # late: it imports TensorFlow

    from resnet_tf.models import ResNet

    keras.utils.set_random_seed(1)
    teacher = ResNet("bottleneck", (1, 1), widths, name="bottleneck_teacher")
    teacher.build((None, 32, 32, 3))
    teacher.save(path)
    return path
