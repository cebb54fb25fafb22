"""Training: the process's runtime set-up, the task (config -> model, data, optimizer, loss),
the callbacks, and the fit loop with exact resume.

A run goes: `runtime.set_up(config)` once, then `ImageClassificationTask(config)` builds and
compiles the model and its datasets, then `fit(...)` trains it into a run folder.
"""

from resnet_tf.training.advice import disk_full_advice
from resnet_tf.training.loop import TrainResult, fit
from resnet_tf.training.precision import (
    AUTO_POLICIES,
    compute_line,
    pin_precision,
    precision_warning,
)
from resnet_tf.training.runtime import set_up
from resnet_tf.training.saved_models import check_teacher_unchanged, pin_saved_models
from resnet_tf.training.stop_signals import sigterm_raises, stop_signals_exit
from resnet_tf.training.task import ImageClassificationTask

__all__ = [
    "AUTO_POLICIES",
    "sigterm_raises",
    "stop_signals_exit",
    "ImageClassificationTask",
    "TrainResult",
    "check_teacher_unchanged",
    "compute_line",
    "disk_full_advice",
    "fit",
    "pin_precision",
    "pin_saved_models",
    "precision_warning",
    "set_up",
]
