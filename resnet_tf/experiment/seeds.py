"""One config over several seeds: sibling run folders, one after another, and their summary."""

from __future__ import annotations

from pathlib import Path

import keras

from resnet_tf import training
from resnet_tf.config import Config
from resnet_tf.errors import ConfigError
from resnet_tf.experiment.outcome import say
from resnet_tf.experiment.run import pin_data_path, resolve_config, resume, start
from resnet_tf.runs import summarize
from resnet_tf.runs.records import finished_metrics, read_config, read_metrics
from resnet_tf.runs.run_dir import RunPaths, SeedRuns, default_run_name

# What may differ between a kept run's config and the command's: where the data and the runs
# are, not what they are.
IGNORED_KEYS = ("data.path", "output.")
PRECISION_KEY = "runtime.mixed_precision"


def run_seeds(
    config_path: str,
    overrides: list[str],
    seeds: list[int],
    data_dir: str | None = None,
    output_dir: str | None = None,
    name: str | None = None,
    argv: list[str] | None = None,
) -> SeedRuns:
    """The config once per seed, one after another, into sibling run folders NAME-s<seed>, then
    their summary (NAME-seeds/). Running the same command again keeps the finished seeds,
    resumes an interrupted one and starts the missing ones, then rewrites the summary."""
    if any(o.split("=", 1)[0].strip() == "runtime.seed" for o in overrides):
        raise ConfigError("--seeds sets runtime.seed for each run; drop --set runtime.seed=...")
    first = resolve_config(config_path, overrides, data_dir, output_dir, name)
    runs = SeedRuns(
        Path(first.output.root), name or default_run_name(config_path, first.model.name)
    )
    for seed in seeds:
        paths = runs.run(seed)
        config = resolve_config(
            config_path, [*overrides, f"runtime.seed={seed}"], data_dir, output_dir, paths.root.name
        )
        if paths.root.exists():
            check_same_config(paths, config)
            finished = finished_metrics(paths) is not None
            if finished or (paths.metrics.is_file() and read_metrics(paths).status == "diverged"):
                status = "completed" if finished else "diverged"  # resuming changes neither
                say(f"seed {seed}: {paths.root} has {status}; kept")
                continue
        keras.backend.clear_session()  # each seed starts from a process as fresh as can be
        if paths.root.exists():
            resume(str(paths.root), data_dir=data_dir)
        else:
            start(config, config_path, argv=argv)
    finished = [summarize.load_run(runs.run(seed).root) for seed in seeds]
    summarize.write_summary(finished, runs.summary, runs.curves, f"{runs.name}: seeds {seeds}")
    say(f"{len(seeds)} seeds: {runs.summary} and {runs.curves}")
    say(summarize.markdown_table(finished))
    return runs


def check_same_config(paths: RunPaths, config: Config) -> None:
    """A ConfigError unless the run in `paths` was made with `config` (its seed included), as
    the command would record it now: a summary must not mix the runs of two configs."""
    pinned = training.pin_saved_models(pin_data_path(config))
    now, there = _flat(pinned.to_dict()), _flat(read_config(paths).to_dict())
    if now[PRECISION_KEY] == "auto" and there[PRECISION_KEY] in training.AUTO_POLICIES:
        now[PRECISION_KEY] = there[PRECISION_KEY]  # a run records what `auto` chose for it
    differing = [
        key
        for key in sorted(now.keys() | there.keys())
        if now.get(key) != there.get(key) and not key.startswith(IGNORED_KEYS)
    ]
    if differing:
        shown = "; ".join(f"{k}: {there.get(k)!r} there, {now.get(k)!r} now" for k in differing[:2])
        more = f" (and {len(differing) - 2} more)" if len(differing) > 2 else ""
        raise ConfigError(
            f"{paths.root}: a run of another config ({shown}{more}); use another --name for "
            "this config, or the earlier config to finish those runs"
        )


def _flat(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
