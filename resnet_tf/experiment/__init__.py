"""One training run from start to finish: config -> data -> model -> training -> run folder ->
test score (run.py; its metrics and closing lines: outcome.py), and one config over several
seeds (seeds.py).

This is what `train.py` calls. It prints what a user needs to follow a run and returns the
metrics it wrote, so tests and notebooks can call it the same way; a run stopped by SIGTERM or
Ctrl-C raises errors.RunInterrupted once its run folder is ready for --resume.
"""

from resnet_tf.experiment.run import dry_run, resolve_config, resume, start
from resnet_tf.experiment.seeds import run_seeds

__all__ = ["dry_run", "resolve_config", "resume", "run_seeds", "start"]
