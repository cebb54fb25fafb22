"""Training learns: a tiny model trained briefly on the real CIFAR-10 scores far above chance.

Every other end-to-end test trains on random pixels, where a net that predicts one class scores
exactly 10 %; here a broken loss, optimizer, label order or augmentation would stay near 10 %.
The threshold sits well under what this run reaches over seeds (docs/results.md, "The test
suite") and far over chance.
"""

from __future__ import annotations

import json

import train as train_cli
from tests.helpers import REPO_ROOT

LEARNING_RUN = [
    "model.width_multiplier=0.25",
    "data.subset=4000",
    "data.val_size=400",
    "train.epochs=2",
    "train.batch_size=100",
    "train.optimizer.lr=0.2",
    "train.schedule.warmup_epochs=0.5",
    "train.test_tta=none",
    "train.checkpoint_every_minutes=0",
]
CHANCE = 0.10
LEARNED = 0.25


def test_a_tiny_model_learns_real_cifar10_well_above_chance(real_cifar_path, tmp_path):
    sets = [a for s in LEARNING_RUN for a in ("--set", s)]
    args = ["--config", str(REPO_ROOT / "configs" / "fast.yaml"), "--data-dir"]
    args += [str(real_cifar_path), "--output-dir", str(tmp_path), "--name", "learns", *sets]
    assert train_cli.main(args) == 0
    metrics = json.loads((tmp_path / "learns" / "metrics.json").read_text())
    assert metrics["test_images"] == 10_000
    assert metrics["test_accuracy"] > LEARNED > 2 * CHANCE, metrics
    assert metrics["best_val_accuracy"] > LEARNED, metrics
