"""What a run config holds: every key, its meaning (the comment above it), default and range.

The config loader checks files against it (validation.py) and the model registry checks
`build_model` options against `ModelConfig`, so the two cannot disagree; docs/configuration.md
is written from it (reference.py). It imports no model code: the models depend on the config.
The data section's classes live in data_schema.py.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import yaml

from resnet_tf.config.choices import (
    DISTRIBUTIONS,
    KERNEL_INITS,
    LR_SCALINGS,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    STEMS,
    TTA_CHOICES,
)
from resnet_tf.config.data_schema import DataConfig
from resnet_tf.config.ranges import value_range


@dataclass
class ModelConfig:
    """The network: which one, its width and its initialization (docs/models.md)."""

    # The ResNets of He et al. (resnet18-152, resnet20-110), the tutorial's seed_resnet18, or
    # the fast recipes' compact net (fastnet: GELU, fastnet_relu: ReLU).
    name: str = "resnet18"
    # ResNets: cifar is the architecture's own small-image stem (3x3/1 conv, no pooling, or
    # seed_resnet18's tutorial stem); imagenet a 7x7/2 conv + 3x3/2 max-pool.
    stem: Literal[STEMS] = "cifar"
    # ResNets: the last BN of each residual branch starts at gamma 0, so each block starts as
    # the identity.
    zero_init_residual: bool = False
    # Keras' meaning: moving = momentum * moving + (1 - momentum) * batch (PyTorch's 0.1 is 0.9).
    bn_momentum: float = field(default=0.9, metadata=value_range(0.0, 1.0, hi_open=True))
    # Added to the batch variance before its square root.
    bn_epsilon: float = field(default=1e-5, metadata=value_range(0.0, 1.0, lo_open=True))
    # Scales every stage's (or group's) channel count: 0.5 is a quarter of the conv work.
    width_multiplier: float = field(default=1.0, metadata=value_range(0.0, 16.0, lo_open=True))
    # Fast nets: each 3x3 conv starts as the identity on its first input channels (Dirac).
    identity_init: bool = False
    # Fast nets: he_normal (He fan_out convs, Keras' Glorot classifier) or fan_in_uniform
    # (uniform in +-1/sqrt(fan_in) everywhere: PyTorch's default, the init airbench is tuned for).
    kernel_init: Literal[KERNEL_INITS] = "he_normal"
    # Start from a saved model (a .keras checkpoint, e.g. prune.py's output, or a run folder:
    # its best.keras), architecture and weights, instead of building `name` fresh; `name` must
    # be the saved model's, and the width and init keys above do not apply.
    init_from: str | None = None
    # With init_from: keep only its architecture and start from fresh random weights (the
    # from-scratch control for a pruned model).
    reinitialize: bool = False


@dataclass
class OptimizerConfig:
    """The optimizer and its settings (beta_1, beta_2, epsilon: adam and adamw only)."""

    # muon: Muon (the muon_ keys) on the conv kernels, sgd with the keys below on the rest.
    name: Literal[OPTIMIZERS] = "sgd"
    # The peak learning rate (the schedule's shape applies; see train.lr_scaling).
    lr: float = field(default=0.1, metadata=value_range(0.0, 100.0, lo_open=True))
    # sgd, muon's sgd part: heavy-ball momentum, Nesterov's form if nesterov.
    momentum: float = field(default=0.9, metadata=value_range(0.0, 1.0))
    nesterov: bool = True
    # sgd/adam: L2 penalty as in PyTorch (gradient += weight_decay * w, on every weight);
    # adamw: decoupled (w -= lr * weight_decay * w).
    weight_decay: float = field(default=5e-4, metadata=value_range(0.0, 1.0))
    # adam, adamw: Keras' beta_1, beta_2 and epsilon (PyTorch's betas and eps).
    beta_1: float = field(default=0.9, metadata=value_range(0.0, 1.0))
    beta_2: float = field(default=0.999, metadata=value_range(0.0, 1.0))
    epsilon: float = field(default=1e-7, metadata=value_range(0.0, 1.0, lo_open=True))
    # sgd, muon: the batch-norm shifts (beta; with muon also the whitening bias) train with this
    # times the lr; their weight decay per step stays that of the other weights (airbench: 64).
    bn_bias_lr_multiplier: float = field(
        default=1.0, metadata=value_range(0.0, 1000.0, lo_open=True)
    )
    # muon: the conv kernels' lr at the schedule's peak (the schedule's shape applies), their
    # momentum (Nesterov if nesterov) and Newton-Schulz steps. The kernels get no weight decay:
    # Muon holds each at a fixed norm.
    muon_lr: float = field(default=0.24, metadata=value_range(0.0, 100.0, lo_open=True))
    muon_momentum: float = field(default=0.6, metadata=value_range(0.0, 1.0, hi_open=True))
    muon_ns_steps: int = field(default=3, metadata=value_range(1, 20))


@dataclass
class ScheduleConfig:
    """The learning rate over training, counted in weight updates."""

    # The shape; each name's own keys are below (the others are ignored).
    name: Literal[SCHEDULES] = "cosine"
    # Linear warm-up from ~0 to the peak lr over these (possibly fractional) epochs.
    warmup_epochs: float = field(default=0.0, metadata=value_range(0.0))
    # cosine, linear: the lr at the last step, as a fraction of the peak lr.
    final_lr_fraction: float = field(default=0.0, metadata=value_range(0.0, 1.0))
    # step: multiply by gamma every step_epochs; multistep: at each of milestones (epochs).
    step_epochs: int = field(default=30, metadata=value_range(1))
    milestones: list[int] = field(default_factory=list)
    gamma: float = field(default=0.1, metadata=value_range(0.0, 1.0, lo_open=True))
    # onecycle: rise over this fraction of training from lr/div_factor, then cosine down to ~0.
    pct_start: float = field(default=0.25, metadata=value_range(0.0, 1.0, lo_open=True))
    div_factor: float = field(default=25.0, metadata=value_range(1.0))


@dataclass
class DistillConfig:
    """Knowledge distillation from a trained teacher (docs/compression.md)."""

    # A trained model to learn from (a .keras checkpoint or a run folder: its best.keras); null:
    # no distillation. It runs frozen, in inference mode, on each augmented training batch.
    teacher: str | None = None
    # Both models' logits are softened as softmax(logits / temperature) (Hinton et al. 2015).
    temperature: float = field(default=4.0, metadata=value_range(0.0, 100.0, lo_open=True))
    # loss = (1 - alpha) * hard-label loss + alpha * temperature^2 * KL(teacher || student).
    alpha: float = field(default=0.9, metadata=value_range(0.0, 1.0))
    # Written at the start of a run (sha256 of the teacher's file); resume refuses another file.
    teacher_sha256: str | None = None


@dataclass
class TrainConfig:
    """How long and how the model trains, and how its final test score is taken."""

    # Passes over the training images (all but data.val_size of them).
    epochs: int = field(default=200, metadata=value_range(1, 100000))
    # The global batch: with several devices each gets an equal share of it.
    batch_size: int = field(default=128, metadata=value_range(1, 65536))
    # Average the gradients of this many batches before each weight update (Keras' optimizer
    # option gradient_accumulation_steps): an effective batch of accumulation_steps x
    # batch_size at the memory of one batch. Batch norm still normalizes each batch on its own.
    # The lr schedule, Lookahead and resume count weight updates.
    accumulation_steps: int = field(default=1, metadata=value_range(1, 1024))
    # Exponential moving average of the weights, per weight update (0: off): validated,
    # checkpointed and tested in place of the raw weights (Keras' optimizer EMA; batch-norm
    # statistics are the raw model's).
    ema_decay: float = field(default=0.0, metadata=value_range(0.0, 1.0, hi_open=True))
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    # The one-hot targets mixed with the uniform distribution by this share.
    label_smoothing: float = field(default=0.0, metadata=value_range(0.0, 1.0))
    # Training steps per call into the compiled graph: fewer Python round trips per step.
    steps_per_execution: int = field(default=1, metadata=value_range(1, 10000))
    # linear: peak lr = optimizer.lr * batch_size / 256 (Goyal et al.), so that a recipe keeps
    # working when the global batch grows with the number of devices.
    lr_scaling: Literal[LR_SCALINGS] = "none"
    # Test-time augmentation for the final test score: flip averages the logits of each test
    # image and its mirror image; flip_translate adds both moved by 1 px (6 views).
    test_tta: Literal[TTA_CHOICES] = "none"
    # The share of test images, least confident first (by the top softmax probability of the
    # plain view), that get test_tta's views; the rest keep their plain logits.
    test_tta_fraction: float = field(default=1.0, metadata=value_range(0.0, 1.0, lo_open=True))
    # Lookahead: every this many steps (and at each epoch end), the weights move to a slow
    # average of themselves whose decay grows as lookahead_max_decay * progress**3; 0: off.
    lookahead_every: int = field(default=0, metadata=value_range(0, 100000))
    lookahead_max_decay: float = field(default=0.774, metadata=value_range(0.0, 1.0))
    # Save the state inside an epoch (checkpoints/mid_epoch.keras) when this many minutes have
    # passed since the last save, so that a killed run loses minutes, not an epoch; 0: off.
    checkpoint_every_minutes: float = field(default=10.0, metadata=value_range(0.0, 10080.0))
    # Fast nets: train the patch-whitening bias for this many (possibly fractional) epochs, its
    # lr ramped down to zero over them, then keep it frozen; 0: it trains throughout.
    whitening_bias_epochs: float = field(default=0.0, metadata=value_range(0.0))
    # Knowledge distillation from a trained teacher (off unless distill.teacher is set).
    distill: DistillConfig = field(default_factory=DistillConfig)


@dataclass
class RuntimeConfig:
    """Seeds, precision and devices: how the run uses the machine."""

    # Seeds the weights, the validation split and every augmentation draw.
    seed: int = field(default=0, metadata=value_range(0, 2**31 - 1))
    # mixed_*: compute in 16 bits, keep weights, logits and loss in float32 (float16: GPUs).
    # auto: mixed_bfloat16 where the hardware runs it faster than float32 (docs/training.md).
    mixed_precision: Literal[PRECISIONS] = "float32"
    # Compile the train step with XLA (see docs/performance.md before turning it on on a CPU).
    jit_compile: bool = False
    # Bit-exact repeatability (op determinism); slower, and a resumed run equals an unbroken one.
    deterministic: bool = False
    # Data-parallel training with tf.distribute (see resnet_tf/training/distribute.py); auto:
    # mirrored over all GPUs when more than one is visible, else one device.
    distribution: Literal[DISTRIBUTIONS] = "auto"
    # TensorFlow's thread pools; 0 leaves TensorFlow's choice (one thread per core for both).
    intra_op_threads: int = field(default=0, metadata=value_range(0, 1024))
    inter_op_threads: int = field(default=0, metadata=value_range(0, 1024))


@dataclass
class OutputConfig:
    """Where the run folder goes."""

    # The folder that run folders are made in.
    root: str = "outputs"
    # Run folder name; null: <config name>-<model>-<date>-<time>.
    name: str | None = None


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict:
        """Plain nested data, as a config file holds it."""
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """The whole config as YAML, in field order: a run folder's config.yaml."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)
