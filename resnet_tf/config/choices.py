"""The choices of every option that has a fixed set of values, and the model names: the one
list of each, which the schema, the data pipeline, the models, evaluation and the command lines
read."""

STEMS = ("cifar", "imagenet")
KERNEL_INITS = ("he_normal", "fan_in_uniform")
ACTIVATIONS = ("gelu", "relu")
FLIP_MODES = ("random", "alternate")
CROP_MODES = ("zero", "reflect")
NORMALIZATIONS = ("cifar10", "imagenet", "none")
OPTIMIZERS = ("sgd", "adam", "adamw", "muon")
SCHEDULES = ("constant", "cosine", "linear", "step", "multistep", "onecycle")
LR_SCALINGS = ("none", "linear")
TTA_CHOICES = ("none", "flip", "flip_translate")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16", "auto")
DISTRIBUTIONS = ("auto", "none", "mirrored", "multi_worker")
AUTOAUGMENT_POLICIES = ("none", "cifar10")

# The model names, in the order listings show them. resnet_tf/models/registry.py keys its
# architecture tables by these and refuses to import if the two lists ever differ.
RESNET_NAMES = (
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet20",  # He et al. 2015 CIFAR ResNets (6n+2 layers)
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "seed_resnet18",  # the TF2 tutorial net
)
FAST_NET_NAMES = ("fastnet", "fastnet_relu")  # the fast recipe's compact nets
MODEL_NAMES = (*RESNET_NAMES, *FAST_NET_NAMES)

# Model options that only one family of models has; with the other family they must keep their
# defaults. The fast nets have a fixed patch-whitening stem and no residual blocks.
FAST_NET_OPTIONS = ("identity_init", "kernel_init")
RESNET_OPTIONS = ("stem", "zero_init_residual")
