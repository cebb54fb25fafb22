"""The run folder's layout: the one module that knows the name of each file inside it.

outputs/<run>/
    config.yaml              resolved config + the command line that made it
    history.csv              one row per completed epoch
    metrics.json             how the run went: validation and test accuracy, timing
    checkpoints/best.keras   best validation accuracy so far
    checkpoints/last.keras   end of the last completed epoch (what --resume starts from)
    checkpoints/mid_epoch.keras  a point inside the epoch after it, saved every
                             train.checkpoint_every_minutes and on SIGTERM/Ctrl-C (--resume starts
                             from it when it is further on); deleted at the next epoch's end
    plots/accuracy_loss.png  redrawn after every epoch
    tb/                      TensorBoard logs
    eval/                    evaluate.py's report of best.keras (report.json, report.md, figures)
    export/                  export.py's files (best_saved_model/, best_fp32.tflite, best.onnx ...)
    pruned/                  prune.py's narrower models (l1-0.30.keras ...), evaluated into
                             pruned/eval-<name>/

train.py --seeds 0,1,2 --name NAME makes sibling runs NAME-s0, NAME-s1, NAME-s2 and
outputs/NAME-seeds/ (summary.md: the per-seed table with mean +- std, median and range;
curves.png: every seed's validation curve against training minutes).
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from resnet_tf.errors import RunDirError


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.keras"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.keras"

    @property
    def mid_epoch(self) -> Path:
        return self.checkpoints / "mid_epoch.keras"

    @property
    def plot(self) -> Path:
        return self.root / "plots" / "accuracy_loss.png"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tb"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    @property
    def export(self) -> Path:
        return self.root / "export"

    @property
    def pruned(self) -> Path:
        return self.root / "pruned"

    def pruned_model(self, criterion: str, amounts: str) -> Path:
        """Where prune.py writes by default: pruned/<criterion>-<amounts>.keras."""
        return self.pruned / f"{criterion}-{amounts}.keras"

    @property
    def resume_files(self) -> tuple[Path, ...]:
        """What --resume reads besides config.yaml: the checkpoints and the history."""
        return (self.last, self.mid_epoch, self.history)


@dataclass(frozen=True)
class SeedRuns:
    """One config run once per seed: the sibling run folders and their summary folder."""

    root: Path
    name: str

    def run(self, seed: int) -> RunPaths:
        return RunPaths(self.root / f"{self.name}-s{seed}")

    @property
    def summary_dir(self) -> Path:
        return self.root / f"{self.name}-seeds"

    @property
    def summary(self) -> Path:
        return self.summary_dir / "summary.md"

    @property
    def curves(self) -> Path:
        return self.summary_dir / "curves.png"


def default_run_name(config_path: str | None, model_name: str) -> str:
    """<config name>-<model>-<date>-<time>; characters of the config's file name that a run name
    may not hold (a space ...) become '-', so any file name gives a valid run name."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", Path(config_path).stem) if config_path else "run"
    return f"{stem}-{model_name}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_run_name(name: str) -> None:
    """Refuse a run folder name that is not one plain file name of safe characters; called
    before the data loads, so that a bad --name costs no time."""
    if not re.fullmatch(r"[A-Za-z0-9._+=@-]+", name) or name in (".", ".."):
        shown = repr(name) if len(name) <= 80 else repr(name[:77]) + "..."
        raise RunDirError(f"run name {shown}: expected letters, digits and . _ - + = @ only")


def create_run_dir(root: str | Path, name: str, *, explicit_name: bool) -> RunPaths:
    """Make a new, empty run folder; never reuse an existing one.

    An explicit name that exists is refused (the user may want --resume); an automatic name
    that exists (two runs in the same second) gets a numeric suffix.
    """
    check_run_name(name)
    root = Path(root)
    candidate, suffix = root / name, 2
    while True:
        try:
            candidate.mkdir(parents=True)  # atomic: of two runs racing for a name, one wins
            break
        except FileExistsError:
            if explicit_name:
                raise RunDirError(
                    f"{candidate}: run folder exists; choose another --name, or continue it "
                    f"with `python train.py --resume {candidate}`"
                ) from None
            candidate, suffix = root / f"{name}-{suffix}", suffix + 1
        except OSError as exc:
            raise RunDirError(f"{candidate}: cannot create run folder: {exc.strerror}") from None
    paths = RunPaths(candidate)
    paths.checkpoints.mkdir()
    paths.plot.parent.mkdir()
    return paths


def open_run_dir(path: str | Path) -> RunPaths:
    """An existing run folder, for --resume or evaluation."""
    paths = RunPaths(Path(path))
    if not paths.root.is_dir():
        raise RunDirError(f"{paths.root}: run folder not found")
    if not paths.config.is_file():
        raise RunDirError(f"{paths.root}: not a run folder (no config.yaml)")
    return paths


def run_of_checkpoint(checkpoint: Path) -> RunPaths | None:
    """The run folder holding `checkpoint` (as <run>/checkpoints/NAME.keras, or a pruned model
    as <run>/pruned/NAME.keras), or None."""
    paths = RunPaths(checkpoint.parent.parent)
    if checkpoint.parent in (paths.checkpoints, paths.pruned) and paths.config.is_file():
        return paths
    return None


def eval_dir_of(checkpoint: Path, run: RunPaths) -> Path:
    """Where evaluate.py reports on a checkpoint of `run`: eval/ for the training's own
    checkpoints, eval-<name>/ beside any other model file (a pruned one)."""
    if checkpoint.parent == run.checkpoints:
        return run.eval
    return checkpoint.parent / f"eval-{checkpoint.stem}"


def run_of_export(exported: Path) -> RunPaths | None:
    """The run folder holding an exported model (as <run>/export/NAME), or None."""
    paths = RunPaths(exported.parent.parent)
    if exported.parent == paths.export and paths.config.is_file():
        return paths
    return None


def saved_model_of(path: str | Path) -> Path:
    """The .keras file a user means by `path`: the file itself, or a run folder's best.keras."""
    path = Path(path).expanduser()
    if not path.is_dir():
        return path
    paths = open_run_dir(path)
    if not paths.best.is_file():
        raise RunDirError(f"{paths.best}: run folder has no best checkpoint (no epoch finished?)")
    return paths.best


def copy_resume_files(source: RunPaths, target: RunPaths) -> None:
    """Copy what --resume reads (those that exist) from one run folder into another."""
    for source_file, target_file in zip(source.resume_files, target.resume_files):
        if source_file.is_file():
            shutil.copyfile(source_file, target_file)


def remove_temp_files(paths: RunPaths) -> list[Path]:
    """Delete what a killed writer left half-written (never a finished file)."""
    stale = [p for p in paths.root.rglob(".*.tmp*") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale
