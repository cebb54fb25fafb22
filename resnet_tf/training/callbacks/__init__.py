"""The training callbacks, one concern each. In a run they go in this order: Lookahead (so the
others see its weights), AveragedWeights (so the writers see the EMA), the NaN stop, then the
run folder's writers (history, checkpoints, plot), which is also the order a crash-safe resume
relies on. RunForecast only speaks. MidEpochCheckpoint goes last: it saves inside an epoch and
stops training on SIGTERM or Ctrl-C once the others have seen the batch."""

from resnet_tf.training.callbacks.checkpoints import CheckpointSaver
from resnet_tf.training.callbacks.ema import AveragedWeights
from resnet_tf.training.callbacks.history_writer import HistoryWriter
from resnet_tf.training.callbacks.live_plot import LivePlot
from resnet_tf.training.callbacks.lookahead import Lookahead
from resnet_tf.training.callbacks.mid_epoch import MidEpochCheckpoint
from resnet_tf.training.callbacks.nan_stop import StopOnNonFiniteLoss
from resnet_tf.training.callbacks.run_forecast import RunForecast

__all__ = [
    "AveragedWeights",
    "CheckpointSaver",
    "HistoryWriter",
    "LivePlot",
    "Lookahead",
    "MidEpochCheckpoint",
    "RunForecast",
    "StopOnNonFiniteLoss",
]
