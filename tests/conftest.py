"""Shared fixtures: a private cache dir, the real CIFAR-10 archive and a tiny fake one."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT
from tests.helpers.cifar_archives import write_cifar_archive
from tests.helpers.tiny_runs import tiny_run_args

REAL_ARCHIVE = REPO_ROOT.parent / "shared" / "datasets" / "cifar-10-python.tar.gz"

# Set before TensorFlow is imported anywhere, so its start-up chatter stays quiet.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# As the package sets it when it is imported first: the numerics of the commands users run.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


@pytest.fixture(scope="session", autouse=True)
def session_cache_dir():
    """Keep the decoded-array cache in a temp dir, never in the user's ~/.cache."""
    with tempfile.TemporaryDirectory(prefix="resnet_tf_cache_") as cache_dir:
        old_value = os.environ.get("RESNET_TF_CACHE_DIR")
        os.environ["RESNET_TF_CACHE_DIR"] = cache_dir
        yield Path(cache_dir)
        if old_value is None:
            os.environ.pop("RESNET_TF_CACHE_DIR", None)
        else:
            os.environ["RESNET_TF_CACHE_DIR"] = old_value


@pytest.fixture(scope="module", autouse=True)
def fresh_keras_state():
    """Each test module starts from a cleared Keras session and a collected heap: a process that
    still holds every earlier module's models, graphs and functions runs model code slower the
    longer the suite has run (a model conversion at the end of the suite took 4x its time)."""
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


@pytest.fixture(scope="session")
def real_cifar_path() -> Path:
    """Absolute path of the real cifar-10-python.tar.gz: ../shared/datasets beside the checkout
    (as CI has it), else $CIFAR10_DIR (the archive, or the folder holding it)."""
    found = real_archive()
    if found is None:
        pytest.fail(
            f"these tests need the real CIFAR-10: put cifar-10-python.tar.gz in "
            f"{REAL_ARCHIVE.parent}, or set CIFAR10_DIR to it or its folder",
            pytrace=False,
        )
    return found


def real_archive() -> Path | None:
    candidates = [REAL_ARCHIVE]
    if os.environ.get("CIFAR10_DIR"):
        given = Path(os.environ["CIFAR10_DIR"]).expanduser()
        candidates += [given, given / REAL_ARCHIVE.name]
    return next((path.resolve() for path in candidates if path.is_file()), None)


@pytest.fixture(scope="session")
def real_cifar(real_cifar_path):
    """The real dataset, decoded once per session: ((x_train, y_train), (x_test, y_test))."""
    from resnet_tf.data import load_cifar10

    return load_cifar10(real_cifar_path)


@pytest.fixture(scope="session")
def tiny_cifar_archive(tmp_path_factory) -> Path:
    """A real-format archive with 40 images per training batch (200 train) and 40 test images."""
    folder = tmp_path_factory.mktemp("tiny_cifar")
    return write_cifar_archive(
        folder / "cifar-10-python.tar.gz", n_train_per_batch=40, n_test=40, seed=0
    )


@pytest.fixture(scope="session")
def finished_run(tiny_cifar_archive, tmp_path_factory, worker_id) -> Path:
    """TINY_RUN trained for 2 epochs by train.py's main(), once per session; read-only. Under
    pytest-xdist the first worker to ask trains it in the folder all workers share and the
    others wait for it: one training instead of one per worker."""
    import train as train_cli

    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        shared = shared.parent  # the session's folder, above each worker's own
    out, done = shared / "finished_run", shared / "finished_run.done"
    try:
        out.mkdir()  # atomic: exactly one process gets to train
    except FileExistsError:
        return wait_for(done, out / "two-epochs")
    code = "raised"  # what the waiting workers read if main() raises
    try:
        code = str(train_cli.main(tiny_run_args(tiny_cifar_archive, out, "two-epochs")))
    finally:
        done.write_text(code)
    assert code == "0"
    return out / "two-epochs"


def wait_for(done: Path, run: Path, timeout_s: float = 900) -> Path:
    deadline = time.monotonic() + timeout_s
    while not done.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"finished_run: another worker did not finish {run} in {timeout_s} s")
        time.sleep(0.5)
    if done.read_text() != "0":
        pytest.fail(f"finished_run: the worker that trained {run} failed")
    return run


def pytest_collection_modifyitems(config, items):
    """Run the deploy tests last, and start their exports (tests/deploy/tiny_exports.py) in the
    background as soon as they are known to be needed, so the exports overlap the other tests.
    Under pytest-xdist (pytest.ini's `-n 2`) the controller starts them, once, for all workers."""
    deploy = [item for item in items if item.nodeid.startswith("tests/deploy/")]
    if not deploy:
        return
    items[:] = [item for item in items if item not in deploy] + deploy
    if not hasattr(config, "workerinput"):  # one process: no xdist worker
        from tests.deploy import tiny_exports

        folder = Path(tempfile.mkdtemp(prefix="resnet_tf_tiny_exports_"))
        config.tiny_exports = (tiny_exports.start(folder), folder)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist controller: tell every worker where the shared exports will be."""
    if not hasattr(node.config, "tiny_exports_folder"):
        node.config.tiny_exports_folder = tempfile.mkdtemp(prefix="resnet_tf_tiny_exports_")
    node.workerinput["tiny_exports_folder"] = node.config.tiny_exports_folder


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    """xdist controller: start the exports once the first worker has collected a deploy test."""
    config = node.config
    if getattr(config, "tiny_exports", None) is None and any(
        nodeid.startswith("tests/deploy/") for nodeid in ids
    ):
        from tests.deploy import tiny_exports

        folder = Path(config.tiny_exports_folder)
        config.tiny_exports = (tiny_exports.start(folder), folder)


def pytest_unconfigure(config):
    started = getattr(config, "tiny_exports", None)
    if started is not None:
        import shutil

        process, folder = started
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def ctrl_c_raises():
    """SIGINT as in a terminal: a process started in the background by a non-interactive shell
    (as CI may start the tests) inherits SIGINT ignored, and Python then leaves it so."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
