"""Tiny checkpoints of each model family, exported in every format, made in the background.

The families are those whose layers an exporter could trip on: BasicBlock with projection
shortcuts (the ImageNet-style zoo), Bottleneck, the option-A CIFAR ResNet (zero-padded
shortcuts) and FastNet (patch-whitening stem, GELU). Each is one block per stage at a few
channels: the graph holds every kind of op its family has, and converts in seconds. Each is
trained briefly on the tiny archive first, so that its outputs are far from uniform: an
untrained net's near-even probabilities would let a broken INT8 export pass any comparison.

Twenty exports take about a minute of mostly one-core work (tracing, writing SavedModels),
while the rest of the suite leaves a core idle much of the time. So tests/conftest.py (under
pytest-xdist, the controller) starts this module as a low-priority process as soon as deploy
tests are collected (`python -m tests.deploy.tiny_exports FOLDER`), and the `exported` fixture
waits for its results.pickle.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FAMILIES = ("basic", "bottleneck", "option_a", "fastnet")
FORMATS = ("saved_model", "litert", "litert_fp16", "litert_int8", "onnx", "onnx_int8")
INT8_FORMATS = ("litert_int8", "onnx_int8")
# What an INT8 export of these briefly trained nets must reach against its checkpoint, with a
# margin over what they measured; a broken quantization misses it by far (test_export.py shows
# that a wrong model does).
INT8_AGREEMENT = 0.8
INT8_PROBABILITY = 0.15
CALIBRATION_IMAGES = 64  # the tiny archive has 200 training images
RESULTS = "results.pickle"
FAILED = "failed"  # written when make_all raises
TIMEOUT_SECONDS = 900


def build_tiny(family: str):
    import keras

    from resnet_tf.models.fastnet import FastNet
    from resnet_tf.models.resnet import ResNet

    keras.utils.set_random_seed(FAMILIES.index(family))  # the same nets every session
    if family == "fastnet":
        model = FastNet(widths=[8, 16, 16], activation="gelu", name="tiny_fastnet")
        model.build((None, 32, 32, 3))
        model.adapt(np.random.default_rng(0).normal(size=(64, 32, 32, 3)).astype(np.float32))
        return model
    block, stem, shortcut = {
        "basic": ("basic", "imagenet", "projection"),
        "bottleneck": ("bottleneck", "cifar", "projection"),
        "option_a": ("basic", "cifar", "zero_pad"),
    }[family]
    model = ResNet(
        block_type=block,
        stage_blocks=(1, 1),
        stage_widths=(8, 16),
        stem=stem,
        shortcut=shortcut,
        name=f"tiny_{family}",
    )
    model.build((None, 32, 32, 3))
    return model


def randomize_batch_norm(model, seed: int = 0) -> None:
    """Give every batch norm non-trivial statistics, as training would (a fresh one is the
    identity, which would hide a converter that drops or mis-folds it)."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        name = weight.path
        if name.endswith(("moving_mean", "beta")):
            weight.assign(rng.normal(0.0, 0.1, weight.shape).astype(np.float32))
        elif name.endswith(("moving_variance", "gamma")):
            weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype(np.float32))


def train_briefly(model, archive: Path, epochs: int = 20) -> None:
    """Fit the tiny net to the tiny archive's 200 training images (random pixels, so it
    memorizes them): its outputs become decisive, as a trained model's are."""
    import keras

    from resnet_tf.data import load_cifar10, normalize_images

    (x, y), _ = load_cifar10(archive)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(normalize_images(x, "cifar10"), y, batch_size=50, epochs=epochs, verbose=0)


def make_all(folder: Path) -> dict:
    """Checkpoints (family -> .keras, normalization cifar10, outside any run folder), the tiny
    archive they were checked on, and (family, format) -> deploy.ExportResult."""
    from resnet_tf import deploy
    from tests.helpers.cifar_archives import write_cifar_archive

    # The same archive as the tiny_cifar_archive fixture (same sizes and seed).
    archive = write_cifar_archive(
        folder / "cifar-10-python.tar.gz", n_train_per_batch=40, n_test=40, seed=0
    )
    checkpoints = {}
    for family in FAMILIES:
        model = build_tiny(family)
        randomize_batch_norm(model)
        train_briefly(model, archive)
        checkpoints[family] = folder / f"{family}.keras"
        model.save(checkpoints[family])
    exported = {
        (family, fmt): deploy.export_checkpoint(
            checkpoint,
            fmt,
            data_dir=str(archive),
            normalization="cifar10",
            calibration_images=CALIBRATION_IMAGES,
        )
        for family, checkpoint in checkpoints.items()
        for fmt in FORMATS
    }
    return {"archive": archive, "checkpoints": checkpoints, "exported": exported}


def start(folder: Path) -> subprocess.Popen:
    """Run make_all in a niced child process, writing FOLDER/results.pickle."""
    from tests.helpers import REPO_ROOT

    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "RESNET_TF_CACHE_DIR": str(folder / "cache"),  # never the user's ~/.cache
    }
    log = open(folder / "log.txt", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.deploy.tiny_exports", str(folder)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: os.nice(5),  # the foreground tests come first
    )


def wait(process: subprocess.Popen, folder: Path) -> dict:
    """The results of a started process, or a failure with the tail of its log."""
    started = time.monotonic()
    code = process.wait(timeout=TIMEOUT_SECONDS)
    results = folder / RESULTS
    if code != 0 or not results.is_file():
        tail = (folder / "log.txt").read_text()[-3000:]
        raise RuntimeError(f"tiny exports failed (exit {code}):\n{tail}")
    with open(results, "rb") as f:
        made = pickle.load(f)
    made["waited_seconds"] = time.monotonic() - started
    return made


def wait_for_folder(folder: Path) -> dict:
    """The results of a process started by another one (the xdist controller): poll its folder."""
    started = time.monotonic()
    while not (folder / RESULTS).is_file():
        if (folder / FAILED).is_file() or time.monotonic() - started > TIMEOUT_SECONDS:
            log = folder / "log.txt"
            tail = log.read_text()[-3000:] if log.is_file() else "(no log)"
            raise RuntimeError(f"tiny exports failed or timed out:\n{tail}")
        time.sleep(0.5)
    with open(folder / RESULTS, "rb") as f:
        made = pickle.load(f)
    made["waited_seconds"] = time.monotonic() - started
    return made


def main(folder: str) -> int:
    folder_path = Path(folder)
    try:
        made = make_all(folder_path)
    except BaseException:
        (folder_path / FAILED).touch()
        raise
    temporary = folder_path / f".{RESULTS}.tmp"
    with open(temporary, "wb") as f:
        pickle.dump(made, f)
    os.replace(temporary, folder_path / RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
