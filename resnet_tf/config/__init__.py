"""The run configuration: YAML file + `--set key=value` overrides -> typed, validated dataclasses."""

from resnet_tf.config.schema import (
    AugmentConfig,
    Config,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    OutputConfig,
    RuntimeConfig,
    ScheduleConfig,
    TrainConfig,
    load_config,
)

__all__ = [
    "AugmentConfig",
    "Config",
    "DataConfig",
    "ModelConfig",
    "OptimizerConfig",
    "OutputConfig",
    "RuntimeConfig",
    "ScheduleConfig",
    "TrainConfig",
    "load_config",
]
