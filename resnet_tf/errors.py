"""The errors a user can cause. Command lines print them as one line, never a traceback.

Every one derives from `ResnetTfError`, so a command catches that one class. This module imports
nothing, so any module (and a command line before TensorFlow loads) can import it cheaply.
Each message names the file or key, what was expected and what was found. RunInterrupted, at
the end, is no error but is reported the same way (one line, its own exit code).
"""


class ResnetTfError(Exception):
    """Base of every error caused by the user's input, files or settings."""


class ConfigError(ResnetTfError):
    """A bad config file, key or value."""


class DataError(ResnetTfError):
    """A data set (CIFAR-10 archive, folder or image folder) that cannot be read."""


class RunDirError(ResnetTfError):
    """A run folder that cannot be created, or is not a (finished) run folder."""


class DiskFullError(RunDirError):
    """A file that could not be written: no space left on the device, or over the disk quota.

    `path` is the file, `reason` the system's words; the file's previous version is intact.
    """

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: cannot write: {reason}")
        self.path = path
        self.reason = reason


class TrainingError(ResnetTfError):
    """Training cannot start or go on (divergence, an unusable checkpoint, a runtime setting)."""


class DistributionError(ResnetTfError):
    """A distribution setting that cannot work (no TF_CONFIG, an uneven batch ...)."""


class EvaluationError(ResnetTfError):
    """A checkpoint or an option that cannot be evaluated."""


class DeployError(ResnetTfError):
    """A model that cannot be exported, loaded from an exported file, or asked for predictions."""


class RequestError(ResnetTfError):
    """A request to the model server (serve.py) that it answers with an error: `status` is the
    HTTP status (400 bad input, 404 unknown model, 413 too large, 503 overloaded ...), and
    `retry_after` the seconds a client should wait before trying again, where that helps."""

    def __init__(self, status: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class ModelFileError(ResnetTfError):
    """A saved model file (.keras) that cannot be loaded, or does not fit where it is used."""


class CompressError(ResnetTfError):
    """A model or an option that pruning cannot work with."""


class RunInterrupted(ResnetTfError):
    """Not a mistake: training (or another command: an export) stopped on a signal (SIGTERM, or
    SIGINT: Ctrl-C), its state saved where it could be. Printed as one line like the errors,
    but the command exits `exit_code` (128 + the signal's number: 143, 130), so a script can
    tell it from an error (1) and from a finished run (0). `run`: the run folder to resume,
    once known."""

    def __init__(self, signal_name: str, exit_code: int, where: str, run: str | None = None):
        said = "Ctrl-C" if signal_name == "SIGINT" else signal_name
        resume = f"; continue with: python train.py --resume {run}" if run else ""
        super().__init__(f"interrupted by {said} {where}{resume}")
        self.signal_name = signal_name
        self.exit_code = exit_code
        self.where = where
