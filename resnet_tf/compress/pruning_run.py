"""prune.py's work: a checkpoint in, a narrower .keras (and a .json record of the cut) out.

The output goes to <run>/pruned/<criterion>-<amounts>.keras for a checkpoint in a run folder
(evaluate.py and export.py then find the run's normalization and data; a pruned model pruned
again gets its own name appended to), else beside the checkpoint. The .keras and its .json
record are each written under a temporary name and moved into place only when complete. Both
names are checked alike: an existing file is replaced only with `overwrite`, and only if it is
what prune.py writes (a record of a pruning beside the model it names), never the checkpoint
being pruned.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import keras

from resnet_tf.compress.prune import GroupCut, check_criterion, prune_model
from resnet_tf.errors import CompressError
from resnet_tf.evaluation import sources
from resnet_tf.models.summary import count_macs, count_trainable_params
from resnet_tf.runs.files import output_folder_problem


@dataclass(frozen=True)
class PruneResult:
    checkpoint: Path
    output: Path
    criterion: str
    amounts: list[float]
    cuts: list[GroupCut]
    params: tuple[int, int]  # before, after
    macs: tuple[int, int]

    def to_dict(self) -> dict:
        return {
            "checkpoint": str(self.checkpoint),
            "output": str(self.output),
            "criterion": self.criterion,
            "amounts": self.amounts,
            "params": {"before": self.params[0], "after": self.params[1]},
            "macs_per_image": {"before": self.macs[0], "after": self.macs[1]},
            "groups": [
                {"name": c.name, "stage": c.stage + 1, "width": c.width, "kept": list(c.kept)}
                for c in self.cuts
            ],
        }

    def summary(self) -> str:
        def change(before: int, after: int) -> str:
            return f"{before:,} -> {after:,} ({after / before - 1:+.1%})"

        stages = sorted({c.stage for c in self.cuts})
        lines = [f"pruned {self.checkpoint}", f"    -> {self.output}"]
        for stage in stages:
            counts = Counter((c.width, len(c.kept)) for c in self.cuts if c.stage == stage)
            widths = ", ".join(
                f"{width}->{kept}" + (f" (x{count})" if count > 1 else "")
                for (width, kept), count in counts.items()
            )
            lines.append(f"  stage {stage + 1} channels: {widths}")
        lines.append(f"  parameters:  {change(*self.params)}")
        lines.append(f"  MACs/image:  {change(*self.macs)}")
        return "\n".join(lines)


def parse_amounts(text: str) -> list[float]:
    """'0.3' (every stage) or '0,0.3,0.5' (one fraction per stage), each in [0, 1)."""
    try:
        amounts = [float(part) for part in text.split(",")]
    except ValueError:
        raise CompressError(
            f"--amount: expected a fraction such as 0.3, or one per stage such as 0,0.3,0.5; "
            f"found {text!r}"
        ) from None
    for amount in amounts:
        if not 0.0 <= amount < 1.0:  # also refuses nan
            raise CompressError(f"--amount: each fraction must be >= 0 and < 1, found {amount}")
    return amounts


def prune_checkpoint(
    checkpoint: str | os.PathLike,
    amounts: list[float],
    criterion: str = "l1",
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> PruneResult:
    """Prune a checkpoint (a .keras file or a run folder's best.keras) and save the result."""
    check_criterion(criterion)
    found = sources.resolve_checkpoint(checkpoint)
    target = _output_path(found, amounts, criterion, output, overwrite)
    model = sources.load_checkpoint(found.path)
    narrow, cuts = prune_model(model, amounts, criterion)
    result = PruneResult(
        checkpoint=found.path,
        output=target,
        criterion=criterion,
        amounts=amounts,
        cuts=cuts,
        params=(count_trainable_params(model), count_trainable_params(narrow)),
        macs=(count_macs(model), count_macs(narrow)),
    )
    _save(narrow, result, overwrite)
    return result


def _output_path(
    found: sources.Checkpoint,
    amounts: list[float],
    criterion: str,
    output: str | os.PathLike | None,
    overwrite: bool,
) -> Path:
    if output is not None:
        target = Path(output).expanduser()
    else:
        text = "-".join(amount_text(amount) for amount in amounts)
        if found.run is not None and found.path.parent != found.run.pruned:
            target = found.run.pruned_model(criterion, text)
        elif found.run is not None:  # pruning a pruned model: a name of its own
            target = found.path.with_name(f"{found.path.stem}-{criterion}-{text}.keras")
        else:
            target = found.path.with_name(f"{found.path.stem}-pruned-{criterion}-{text}.keras")
    target = Path(os.path.abspath(target))
    if target.suffix != ".keras":
        raise CompressError(f"--output {target}: expected a path ending in .keras")
    if os.path.realpath(target) == os.path.realpath(found.path):
        raise CompressError(f"{target}: is the checkpoint being pruned; choose another --output")
    _check_replaceable(target, overwrite)
    problem = output_folder_problem(target.parent)
    if problem is not None:
        raise CompressError(f"{target.parent}: {problem}")
    return target


def amount_text(amount: float) -> str:
    """An amount in a file name: two decimals when they say it exactly (0.30), else every
    digit it was given (0.999, never rounded up to 1.00)."""
    text = f"{amount:.2f}"
    return text if float(text) == amount else repr(amount)


def record_of(target: Path) -> Path:
    """The .json record prune.py writes beside its .keras."""
    return target.with_suffix(".json")


def _is_our_record(record: Path, target: Path) -> bool:
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("output") == str(target) and "groups" in data


def _check_replaceable(target: Path, overwrite: bool) -> None:
    """Refuse to write over anything but a pruned model and its record, with `overwrite`."""
    record = record_of(target)
    for path in (target, record):
        if os.path.lexists(path) and not overwrite:
            beside = "" if path == target else " (prune.py writes its record beside the .keras)"
            raise CompressError(
                f"{path}: exists{beside}; choose another --output or pass --overwrite"
            )
    if (os.path.lexists(target) or os.path.lexists(record)) and not _is_our_record(record, target):
        raise CompressError(
            f"{target}: --overwrite replaces only a model prune.py wrote with its record "
            f"{record.name} beside it, which this is not; choose another --output"
        )


def _save(model: keras.Model, result: PruneResult, overwrite: bool) -> None:
    """The .keras and its .json record, each complete before it takes its name."""
    target, record = result.output, record_of(result.output)
    temporary = target.with_name(f".{target.name}.tmp{os.getpid()}.keras")
    temporary_record = record.with_name(f".{record.name}.tmp{os.getpid()}")
    try:
        model.save(temporary)
        temporary_record.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        if not overwrite and (target.exists() or record.exists()):  # appeared while pruning
            raise CompressError(f"{target}: exists; choose another --output or pass --overwrite")
        os.replace(temporary_record, record)
        os.replace(temporary, target)
    except OSError as error:
        raise CompressError(f"{target}: cannot write ({error.strerror})") from None
    finally:
        temporary.unlink(missing_ok=True)
        temporary_record.unlink(missing_ok=True)
