"""The errors a user can cause, which command lines print as one line instead of a traceback."""

from resnet_tf.config import ConfigError
from resnet_tf.data import DataError
from resnet_tf.distribute import DistributionError
from resnet_tf.evaluation import EvaluationError
from resnet_tf.run_dir import RunDirError
from resnet_tf.training import TrainingError

USER_ERRORS = (
    ConfigError,
    DataError,
    DistributionError,
    EvaluationError,
    RunDirError,
    TrainingError,
)
