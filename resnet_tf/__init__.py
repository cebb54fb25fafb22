"""resnet_tf: train, checkpoint, plot and evaluate ResNets on CIFAR-10 with TensorFlow/Keras.

Importing the package registers its custom Keras objects (blocks, ResNet, FastNet, the lr
schedule, the optimizer and the loss), so a checkpoint loads with plain
`keras.models.load_model` after `import resnet_tf`.
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# TensorFlow leaves its oneDNN CPU kernels off on this kind of CPU unless asked before it is
# imported; they train ResNet-18 about 1.4x faster here (README, Performance). An explicit
# TF_ENABLE_ONEDNN_OPTS=0 in the environment still wins.
if "tensorflow" not in _sys.modules:
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from resnet_tf import models  # noqa: E402,F401  (registration)
from resnet_tf.training import losses, optimizers, schedules  # noqa: E402,F401  (registration)
