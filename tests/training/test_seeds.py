"""train.py --seeds: one config, several seeds, sibling run folders and their summary."""

from __future__ import annotations

import train as train_cli
from resnet_tf.config import load_config
from resnet_tf.runs.run_dir import SeedRuns
from tests.helpers import REPO_ROOT
from tests.helpers.tiny_runs import TINY_FAST, child_env


def seeds_args(archive, out, seeds: str) -> list[str]:
    sets = [*TINY_FAST, "train.epochs=1", "train.schedule.warmup_epochs=0.5"]
    sets += ["train.batch_size=32", "train.test_tta=none"]
    return [
        *["--config", str(REPO_ROOT / "configs" / "fast.yaml")],
        *["--data-dir", str(archive), "--output-dir", str(out), "--name", "fast"],
        *["--seeds", seeds],
        *[a for s in sets for a in ("--set", s)],
    ]


def test_seeds_run_into_sibling_folders_and_a_summary_and_a_rerun_keeps_them(
    tiny_cifar_archive, tmp_path, capsys
):
    runs = SeedRuns(tmp_path, "fast")
    assert train_cli.main(seeds_args(tiny_cifar_archive, tmp_path, "3,5")) == 0
    for seed in (3, 5):
        assert load_config(runs.run(seed).config).runtime.seed == seed
        assert runs.run(seed).best.is_file()
    summary = runs.summary.read_text()
    assert "| fast-s3 | 3 | 1 |" in summary and "| fast-s5 | 5 | 1 |" in summary
    assert "| **mean +- std** |" in summary and "| **median (range)** |" in summary
    assert runs.curves.stat().st_size > 10_000
    capsys.readouterr()

    # Again, with seed 5 interrupted (no metrics yet): 3 is kept as it is, 5 resumed (its
    # epoch is done: only the test score is left), and the summary written anew.
    before = runs.run(3).history.read_text()
    runs.run(5).metrics.unlink()
    runs.summary.unlink()
    assert train_cli.main(seeds_args(tiny_cifar_archive, tmp_path, "3,5")) == 0
    out = capsys.readouterr().out
    assert f"seed 3: {runs.run(3).root} has completed; kept" in out
    assert f"resuming run folder: {runs.run(5).root}" in out
    assert runs.run(3).history.read_text() == before
    assert "| fast-s5 | 5 | 1 |" in runs.summary.read_text()


def test_bad_seed_lists_and_a_clashing_seed_are_one_line(tiny_cifar_archive, tmp_path, capsys):
    for seeds in ("0,0", "a,b", "-1", ""):
        try:
            code = train_cli.main(seeds_args(tiny_cifar_archive, tmp_path, seeds))
        except SystemExit as exc:  # argparse's usage error
            code = exc.code
        assert code == 2, seeds
        assert "--seeds: expected distinct seeds >= 0" in capsys.readouterr().err
    args = [*seeds_args(tiny_cifar_archive, tmp_path, "0,1"), "--set", "runtime.seed=4"]
    assert train_cli.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --seeds sets runtime.seed for each run; drop --set runtime.seed=..."]
    assert not list(tmp_path.iterdir())


def test_an_interrupted_seed_stops_the_others(tiny_cifar_archive, tmp_path, monkeypatch, capsys):
    """SIGTERM or Ctrl-C in one seed's run stops the command there (exit 143 or 130), rather
    than going on to the next seed."""
    from resnet_tf.errors import RunInterrupted
    from resnet_tf.experiment import seeds

    started = []

    def interrupted_start(config, config_path, argv=None):
        started.append(config.runtime.seed)
        run = SeedRuns(tmp_path, "fast").run(config.runtime.seed).root
        raise RunInterrupted("SIGTERM", 143, "at epoch 1 step 2", str(run))

    monkeypatch.setattr(seeds, "start", interrupted_start)
    assert train_cli.main(seeds_args(tiny_cifar_archive, tmp_path, "3,5")) == 143
    assert started == [3]
    assert capsys.readouterr().err.strip() == (
        "interrupted by SIGTERM at epoch 1 step 2; continue with: python train.py --resume "
        f"{tmp_path / 'fast-s3'}"
    )


def test_a_kept_seed_must_be_of_the_same_config_and_is_kept_only_once_scored(
    tiny_cifar_archive, tmp_path, capsys
):
    """SIGTERM while the seed's best.keras is scored: one line, exit 143, and metrics.json
    says "trained" (not "completed") with no test score. The same command then scores it;
    another config is refused before anything runs; a run of an earlier version that says
    "completed" without a test score is scored too, not kept as it is."""
    import json
    import subprocess
    import sys

    runs, args = SeedRuns(tmp_path, "fast"), seeds_args(tiny_cifar_archive, tmp_path, "3")
    run = runs.run(3)
    script = (
        "import signal, sys\n"
        "import train\n"
        "from resnet_tf import evaluation\n"
        "def terminated(*args, **kwargs):\n"
        "    signal.raise_signal(signal.SIGTERM)\n"
        "evaluation.score_checkpoint = terminated\n"
        "sys.exit(train.main(sys.argv[1:]))\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 143, child.stderr[-2000:]
    assert child.stderr.strip().splitlines()[-1] == (
        "interrupted by SIGTERM while scoring best.keras on the test set; continue with: "
        f"python train.py --resume {run.root}"
    )
    assert "Traceback" not in child.stderr
    metrics = json.loads(run.metrics.read_text())
    assert metrics["status"] == "trained" and "test_accuracy" not in metrics

    changed = [*args, "--set", "train.label_smoothing=0.05"]
    assert train_cli.main(changed) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {run.root}: a run of another config (train.label_smoothing: 0.2 there, 0.05 "
        "now); use another --name for this config, or the earlier config to finish those runs"
    )
    assert json.loads(run.metrics.read_text()) == metrics and not runs.summary.exists()

    assert train_cli.main(args) == 0
    assert f"resuming run folder: {run.root}" in capsys.readouterr().out
    scored = json.loads(run.metrics.read_text())
    assert scored["status"] == "completed" and 0 <= scored["test_accuracy"] <= 1

    legacy = {k: v for k, v in scored.items() if not k.startswith("test_")}
    run.metrics.write_text(json.dumps(legacy))  # "completed", but never scored
    assert train_cli.main(args) == 0
    out = capsys.readouterr().out
    assert "; kept" not in out and f"resuming run folder: {run.root}" in out
    assert json.loads(run.metrics.read_text())["test_accuracy"] == scored["test_accuracy"]
    assert f"{scored['test_accuracy']:.2%}" in runs.summary.read_text()


def test_a_kept_run_of_an_auto_precision_config_matches_what_auto_chose_for_it(tmp_path):
    """A run records the policy `auto` chose (float32 or mixed_bfloat16), so the same config
    with `auto` is the same config; another explicit policy is not."""
    import dataclasses

    import pytest

    from resnet_tf.errors import ConfigError
    from resnet_tf.experiment.seeds import check_same_config
    from resnet_tf.runs.records import write_config
    from resnet_tf.runs.run_dir import create_run_dir

    config = load_config(REPO_ROOT / "configs" / "fast94.yaml")
    assert config.runtime.mixed_precision == "auto"

    def recorded(policy: str):
        runtime = dataclasses.replace(config.runtime, mixed_precision=policy)
        paths = create_run_dir(tmp_path, policy, explicit_name=True)
        write_config(paths, dataclasses.replace(config, runtime=runtime), "python train.py")
        return paths

    check_same_config(recorded("float32"), config)
    check_same_config(recorded("mixed_bfloat16"), config)
    float16 = recorded("mixed_float16")
    with pytest.raises(ConfigError, match="mixed_precision: 'mixed_float16' there, 'auto' now"):
        check_same_config(float16, config)
