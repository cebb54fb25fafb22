"""ResNet models for CIFAR-10: blocks, the ResNet model, name registry and size summaries.

Importing this package registers the custom layers with Keras, so saved
``.keras`` files load with plain ``keras.models.load_model``.
"""

from resnet_tf.models.blocks import BasicBlock, Bottleneck
from resnet_tf.models.registry import MODEL_NAMES, build_from_config, build_model
from resnet_tf.models.resnet import ResNet

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "MODEL_NAMES",
    "build_from_config",
    "build_model",
]
