"""The package's shape, as README "Layout" describes it, checked from the source alone.

Data flows config -> data -> models -> training -> runs -> evaluation -> deploy / compress; each
stage may import only the stages it builds on, so these rules keep the folders telling the truth.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT
from tests.helpers.tiny_runs import child_env

PACKAGE = REPO_ROOT / "resnet_tf"

# Stage -> the stages it may import (besides itself). errors.py imports nothing at all.
MAY_IMPORT = {
    "errors": set(),
    # TensorFlow's quiet start-up and the device line: what the package runs before all else.
    "startup": set(),
    "config": {"errors"},
    "data": {"errors", "config"},
    "models": {"errors", "config"},
    "runs": {"errors", "config"},
    "training": {"errors", "config", "data", "models", "runs"},
    "evaluation": {"errors", "config", "data", "models", "runs", "startup"},
    "deploy": {"errors", "config", "data", "models", "runs", "training", "evaluation", "startup"},
    "compress": {"errors", "config", "data", "models", "runs", "training", "evaluation"},
    "experiment": {
        "errors",
        "config",
        "data",
        "models",
        "runs",
        "training",
        "evaluation",
        "startup",
    },
    # The measuring tool times every stage, so it sits after them all.
    "bench": {
        "errors",
        "config",
        "data",
        "models",
        "runs",
        "training",
        "evaluation",
        "deploy",
        "compress",
    },
    "__init__": {"models", "training", "startup"},  # registration of the custom Keras objects
}
MAX_LINES = 310
# The names of the files inside a run folder; only resnet_tf/runs/ may build paths from them.
RUN_FOLDER_NAMES = {
    "config.yaml",
    "history.csv",
    "metrics.json",
    "checkpoints",
    "best.keras",
    "last.keras",
    "plots",
    "accuracy_loss.png",
    "tb",
}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def stage_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_modules(tree: ast.AST) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every resnet_tf import, at any depth (late imports too)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("resnet_tf"):
            names = [alias.name for alias in node.names]
            if node.module == "resnet_tf":  # from resnet_tf import data, training
                found += [(f"resnet_tf.{name}", []) for name in names]
            else:
                found.append((node.module, names))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("resnet_tf")]
    return found


def name_of(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


def test_each_stage_imports_only_the_stages_before_it():
    wrong = []
    for path in modules():
        stage = stage_of(path)
        tree = ast.parse(path.read_text())
        for module, _ in imported_modules(tree):
            other = module.split(".")[1] if "." in module else module
            if other != stage and other not in MAY_IMPORT[stage]:
                wrong.append(f"{name_of(path)} imports {module}")
        if stage == "errors" and any(
            isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree)
        ):
            wrong.append("errors.py imports something")
    assert wrong == []


def test_no_module_reads_another_modules_private_names():
    wrong = [
        f"{name_of(path)} imports {name} from {module}"
        for path in modules()
        for module, names in imported_modules(ast.parse(path.read_text()))
        for name in names
        if name.startswith("_")
    ]
    assert wrong == []


def test_modules_stay_small():
    sizes = {name_of(path): len(path.read_text().splitlines()) for path in modules()}
    assert {name: lines for name, lines in sizes.items() if lines > MAX_LINES} == {}


def test_only_runs_knows_the_run_folder_file_names():
    wrong = {}
    for path in modules():
        if stage_of(path) == "runs":
            continue
        constants = {
            node.value
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
        if constants & RUN_FOLDER_NAMES:
            wrong[name_of(path)] = constants & RUN_FOLDER_NAMES
    assert wrong == {}


def test_every_user_error_derives_from_the_one_base_class():
    from resnet_tf import errors

    classes = [c for c in vars(errors).values() if isinstance(c, type)]
    assert errors.ResnetTfError in classes and len(classes) >= 6
    assert all(issubclass(c, errors.ResnetTfError) for c in classes)
    for path in modules():  # and no other module defines an exception of its own
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(base, "id", getattr(base, "attr", "")) for base in node.bases}
                assert not bases & {"Exception", "ValueError", "RuntimeError"}, (
                    f"{path.name}: {node.name}"
                )


def test_importing_the_package_sets_up_only_onednn_and_registration():
    script = (
        "import os, sys\n"
        "import resnet_tf, keras\n"
        "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))\n"
        "print(keras.saving.get_registered_object('resnet_tf>ResNet') is not None)\n"
        "print(keras.saving.get_registered_object('resnet_tf>SGD') is not None)\n"
    )
    env = {k: v for k, v in child_env().items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.split() == ["1", "True", "True"], out.stderr[-2000:]
    # Nothing else at import: figures use matplotlib's object API, never a global backend.
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module != "matplotlib.pyplot", path.name
            elif isinstance(node, ast.Import):
                assert "matplotlib.pyplot" not in [a.name for a in node.names], path.name
            elif isinstance(node, ast.Attribute) and node.attr == "use":
                assert getattr(node.value, "id", "") != "matplotlib", path.name
