"""The run configuration: YAML file + `--set key=value` overrides -> typed, validated dataclasses.

Every value a run depends on lives here, so a run folder's `config.yaml` is enough to repeat it.
Validation happens before any work starts, and each problem is reported as one line naming the
file and the dotted key, what was expected and what was found.

choices.py       the one list of choices of each option, and the model names
schema.py        the sections and keys: meaning, default, range, choices
validation.py    plain data -> checked dataclasses
combinations.py  the checks that involve several keys
wording.py       how messages name the expected and the found
yaml_io.py       reading config files and --set overrides; load_config
limits.py        the limits on every file a user hands us (configs, images, model files) and
                 the checks made before one is read, for every command and the server
reference.py     docs/configuration.md, written from the schema
"""

from resnet_tf.config.choices import (
    ACTIVATIONS,
    CROP_MODES,
    DISTRIBUTIONS,
    FAST_NET_NAMES,
    FLIP_MODES,
    KERNEL_INITS,
    LR_SCALINGS,
    MODEL_NAMES,
    NORMALIZATIONS,
    OPTIMIZERS,
    PRECISIONS,
    RESNET_NAMES,
    SCHEDULES,
    STEMS,
    TTA_CHOICES,
)
from resnet_tf.config.data_schema import AugmentConfig, DataConfig
from resnet_tf.config.schema import (
    Config,
    DistillConfig,
    ModelConfig,
    OptimizerConfig,
    OutputConfig,
    RuntimeConfig,
    ScheduleConfig,
    TrainConfig,
)
from resnet_tf.config.validation import config_from_dict
from resnet_tf.config.yaml_io import load_config

__all__ = [
    "ACTIVATIONS",
    "CROP_MODES",
    "DISTRIBUTIONS",
    "FAST_NET_NAMES",
    "FLIP_MODES",
    "KERNEL_INITS",
    "LR_SCALINGS",
    "MODEL_NAMES",
    "NORMALIZATIONS",
    "OPTIMIZERS",
    "PRECISIONS",
    "RESNET_NAMES",
    "SCHEDULES",
    "STEMS",
    "TTA_CHOICES",
    "AugmentConfig",
    "Config",
    "DataConfig",
    "DistillConfig",
    "ModelConfig",
    "OptimizerConfig",
    "OutputConfig",
    "RuntimeConfig",
    "ScheduleConfig",
    "TrainConfig",
    "config_from_dict",
    "load_config",
]
