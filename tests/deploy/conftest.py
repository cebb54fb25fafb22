"""The deploy tests' checkpoints and exports: made once per session, in the background.

tests/conftest.py starts tests/deploy/tiny_exports.py when deploy tests are collected; these
fixtures wait for it (or start it, if it was not started).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy import tiny_exports


@pytest.fixture(scope="session")
def tiny_deploy_set(pytestconfig, tmp_path_factory) -> dict:
    """{"archive", "checkpoints", "exported"} from tiny_exports.make_all."""
    started = getattr(pytestconfig, "tiny_exports", None)
    if started is None:
        folder = tmp_path_factory.mktemp("tiny_exports")
        started = (tiny_exports.start(folder), folder)
    return tiny_exports.wait(*started)


@pytest.fixture(scope="session")
def tiny_checkpoints(tiny_deploy_set) -> dict[str, Path]:
    """family -> a .keras checkpoint outside any run folder (normalization cifar10)."""
    return tiny_deploy_set["checkpoints"]


@pytest.fixture(scope="session")
def exported(tiny_deploy_set) -> dict[tuple[str, str], object]:
    """(family, format) -> deploy.ExportResult, every family in every format."""
    return tiny_deploy_set["exported"]
