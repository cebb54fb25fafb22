"""The run folder's records other than the history: config.yaml and metrics.json, typed."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import yaml

from resnet_tf.config import Config, load_config
from resnet_tf.errors import RunDirError
from resnet_tf.runs.files import atomic_write_text, write_json
from resnet_tf.runs.run_dir import RunPaths


@dataclass
class RunMetrics:
    """metrics.json: how a run went. Test fields stay None (and out of the file) until scored."""

    # trained (every epoch, the test score not yet recorded) | completed (and scored) |
    # interrupted | diverged
    status: str
    model: str
    epochs_completed: int
    epochs_planned: int
    best_val_accuracy: float | None
    best_epoch: int | None
    final_val_accuracy: float | None
    final_train_accuracy: float | None
    train_seconds: float  # summed over the epochs, so it stays right across resumed sessions
    session_wall_seconds: float
    train_images_per_s: float | None
    command_wall_seconds: float | None = None  # the whole command: start-up to the test score
    test_accuracy: float | None = None
    test_loss: float | None = None
    test_tta: str | None = None
    test_tta_images: int | None = None  # those given the TTA views (train.test_tta_fraction)
    test_images: int | None = None
    test_seconds: float | None = None

    @property
    def is_scored(self) -> bool:
        return self.test_accuracy is not None

    def to_dict(self) -> dict:
        """As written to metrics.json: unset optional fields are left out, as before scoring."""
        return {
            key: value
            for key, value in dataclasses.asdict(self).items()
            if value is not None or key in _ALWAYS_WRITTEN
        }

    @classmethod
    def from_dict(cls, data: dict) -> RunMetrics:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


_ALWAYS_WRITTEN = {
    f.name for f in dataclasses.fields(RunMetrics) if f.default is dataclasses.MISSING
}


def write_metrics(paths: RunPaths, metrics: RunMetrics) -> None:
    write_json(paths.metrics, metrics.to_dict())


def read_metrics(paths: RunPaths) -> RunMetrics:
    try:
        data = json.loads(paths.metrics.read_text())
    except FileNotFoundError:
        raise RunDirError(
            f"{paths.root}: not a finished run folder ({paths.metrics.name} is missing)"
        ) from None
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{paths.metrics}: cannot read the run's metrics ({exc})") from None
    if not isinstance(data, dict):
        raise RunDirError(
            f"{paths.metrics}: expected a JSON object of the run's metrics, found a "
            f"{type(data).__name__}"
        )
    _check_types(paths, data)
    try:
        return RunMetrics.from_dict(data)
    except TypeError:
        raise RunDirError(
            f"{paths.metrics}: expected a run's metrics, found {str(data)[:80]!r}"
        ) from None


def _check_types(paths: RunPaths, data: dict) -> None:
    """Each known key holds what RunMetrics says (a number, a string; None where optional)."""
    for field in dataclasses.fields(RunMetrics):
        if field.name not in data:
            continue
        value, kind = data[field.name], str(field.type)
        if value is None and "None" in kind:
            continue
        if kind.startswith("str"):
            ok = isinstance(value, str)
        else:
            numbers = (int,) if kind.startswith("int") else (int, float)
            ok = isinstance(value, numbers) and not isinstance(value, bool)
        if not ok:
            expected = "a string" if kind.startswith("str") else "a number"
            raise RunDirError(
                f"{paths.metrics}: {field.name}: expected {expected}, found {str(value)[:40]!r}"
            )


def finished_metrics(paths: RunPaths) -> RunMetrics | None:
    """The run's metrics if it is finished (every epoch trained, best.keras scored), else None."""
    if not paths.metrics.is_file():
        return None
    try:
        metrics = read_metrics(paths)
    except RunDirError:  # unreadable: resuming writes it again
        return None
    done = metrics.status == "completed" and metrics.epochs_completed >= metrics.epochs_planned
    return metrics if done and metrics.is_scored else None


def unfinished(paths: RunPaths) -> str | None:
    """Why a run is not finished ("1/2 epochs, interrupted"), or None for a finished one."""
    if finished_metrics(paths) is not None:
        return None
    try:
        metrics = read_metrics(paths)
    except RunDirError:
        return f"no readable {paths.metrics.name}: still training, or stopped in its first epoch"
    scored = "" if metrics.is_scored else ", no test score"
    return f"{metrics.epochs_completed}/{metrics.epochs_planned} epochs, {metrics.status}{scored}"


def write_config(paths: RunPaths, config: Config, command: str) -> None:
    """config.yaml: the command line that made the run, then the resolved config."""
    atomic_write_text(
        paths.config, yaml.safe_dump({"command": command}, width=10**6) + config.to_yaml()
    )


def read_config(paths: RunPaths) -> Config:
    return load_config(paths.config)
