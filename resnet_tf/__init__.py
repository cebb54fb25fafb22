"""resnet_tf: train, checkpoint, plot and evaluate ResNets on CIFAR-10 with TensorFlow/Keras.

Importing the package registers its custom Keras objects (blocks, ResNet, the lr schedule and the
loss), so a checkpoint loads with plain `keras.models.load_model` after `import resnet_tf`.
"""

__version__ = "0.1.0"

from resnet_tf import losses, models, schedules  # noqa: E402,F401  (registration)
