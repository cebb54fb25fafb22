"""The deploy tests' checkpoints and exports: made once per session, in the background.

tests/conftest.py starts tests/deploy/tiny_exports.py when deploy tests are collected (under
pytest-xdist, the controller starts it for all workers); these fixtures wait for it, or start it
if it was not started.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy import tiny_exports


@pytest.fixture(scope="session")
def tiny_deploy_set(pytestconfig, tmp_path_factory) -> dict:
    """{"archive", "checkpoints", "exported"} from tiny_exports.make_all."""
    started = getattr(pytestconfig, "tiny_exports", None)
    if started is not None:
        return tiny_exports.wait(*started)
    shared = getattr(pytestconfig, "workerinput", {}).get("tiny_exports_folder")
    if shared is not None:  # an xdist worker: the controller started them
        return tiny_exports.wait_for_folder(Path(shared))
    folder = tmp_path_factory.mktemp("tiny_exports")
    return tiny_exports.wait(tiny_exports.start(folder), folder)


@pytest.fixture(scope="session")
def tiny_checkpoints(tiny_deploy_set) -> dict[str, Path]:
    """family -> a .keras checkpoint outside any run folder (normalization cifar10)."""
    return tiny_deploy_set["checkpoints"]


@pytest.fixture(scope="session")
def exported(tiny_deploy_set) -> dict[tuple[str, str], object]:
    """(family, format) -> deploy.ExportResult, every family in every format."""
    return tiny_deploy_set["exported"]


@pytest.fixture(scope="session")
def int8_model(exported) -> Path:
    """The tiny FastNet as LiteRT INT8, one output ('probabilities'): what the server tests
    serve (it loads fastest)."""
    return exported[("fastnet", "litert_int8")].path
