"""resnet_tf: train, checkpoint, plot, evaluate (and next: compress and ship) ResNets on CIFAR-10.

The stages, in the order data flows through them, each a subpackage with one front door:
config -> data -> models -> training -> runs (the run folder) -> evaluation -> deploy.
`experiment` runs them in that order for train.py.

Importing the package does three things, and only these, because they must happen at import:
- before TensorFlow is first imported, it turns TensorFlow's oneDNN CPU kernels on
  (TensorFlow leaves them off on this kind of CPU unless asked before it loads; they train
  ResNet-18 faster here, see README "Performance"). An explicit TF_ENABLE_ONEDNN_OPTS=0 in the
  environment still wins;
- it loads TensorFlow with its C++ start-up lines (no CUDA driver, cuInit, oneDNN notices)
  kept off stderr, as TF_CPP_MIN_LOG_LEVEL asks (resnet_tf/startup.py): every command imports
  the package before anything else of TensorFlow's;
- it registers the custom Keras objects (layers, models, the lr schedule, the optimizer, the
  loss), so a checkpoint loads with plain `keras.models.load_model` after `import resnet_tf`.
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"

if "tensorflow" not in _sys.modules:
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    from resnet_tf.startup import quiet_tensorflow_start

    quiet_tensorflow_start()

from resnet_tf import models  # noqa: E402,F401  (registration)
from resnet_tf.training import losses, metrics, optimizers, schedules  # noqa: E402,F401  (registration)
