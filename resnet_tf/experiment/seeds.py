"""One config over several seeds: sibling run folders, one after another, and their summary."""

from __future__ import annotations

from pathlib import Path

import keras

from resnet_tf.errors import ConfigError
from resnet_tf.experiment.outcome import say
from resnet_tf.experiment.run import resolve_config, resume, start
from resnet_tf.runs import summarize
from resnet_tf.runs.records import read_metrics
from resnet_tf.runs.run_dir import SeedRuns, default_run_name


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
        status = read_metrics(paths).status if paths.metrics.is_file() else None
        if status in ("completed", "diverged"):  # resuming would not change either
            say(f"seed {seed}: {paths.root} has {status}; kept")
            continue
        keras.backend.clear_session()  # each seed starts from a process as fresh as can be
        if paths.root.exists():
            resume(str(paths.root), data_dir=data_dir)
        else:
            config = resolve_config(
                config_path,
                [*overrides, f"runtime.seed={seed}"],
                data_dir,
                output_dir,
                paths.root.name,
            )
            start(config, config_path, argv=argv)
    finished = [summarize.load_run(runs.run(seed).root) for seed in seeds]
    summarize.write_summary(finished, runs.summary, runs.curves, f"{runs.name}: seeds {seeds}")
    say(f"{len(seeds)} seeds: {runs.summary} and {runs.curves}")
    say(summarize.markdown_table(finished))
    return runs
