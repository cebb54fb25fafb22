from pathlib import Path

import pytest
import yaml

from resnet_tf.config import Config, load_config
from resnet_tf.errors import ConfigError
from tests.helpers import REPO_ROOT

SHIPPED = sorted((REPO_ROOT / "configs").glob("*.yaml"))


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def error_of(*args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_shipped_configs_are_valid_and_say_what_the_readme_says():
    assert {p.stem for p in SHIPPED} >= {
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet56",
        "seed_resnet18",
        "quick",
    }
    configs = {p.stem: load_config(p) for p in SHIPPED}
    r18 = configs["resnet18"]
    assert (r18.model.name, r18.train.epochs, r18.train.batch_size) == ("resnet18", 200, 128)
    assert (
        r18.train.optimizer.name,
        r18.train.optimizer.lr,
        r18.train.optimizer.nesterov,
        r18.train.optimizer.weight_decay,
    ) == ("sgd", 0.1, True, 5e-4)
    assert r18.train.schedule.name == "cosine" and r18.data.augment.crop_padding == 4
    seed = configs["seed_resnet18"]
    assert (
        seed.train.optimizer.name,
        seed.train.optimizer.lr,
        seed.train.batch_size,
        seed.train.epochs,
        seed.data.normalization,
        seed.data.augment.crop_padding,
    ) == ("adam", 1e-3, 256, 500, "imagenet", 0)
    r56 = configs["resnet56"]
    assert r56.train.schedule.milestones == [91, 137] and r56.train.optimizer.weight_decay == 1e-4


def test_defaults_and_overrides(tmp_path):
    config = load_config(
        write(tmp_path, "model: {name: resnet20}\n"),
        [
            "train.epochs=3",
            "train.optimizer.lr=0.05",
            "data.subset=1000",
            "data.val_size=100",
            "data.augment.flip=false",
            "train.schedule.milestones=[1, 2]",
        ],
    )
    assert isinstance(config, Config)
    assert config.train.epochs == 3 and config.train.optimizer.lr == 0.05
    assert config.data.subset == 1000 and config.data.augment.flip is False
    assert config.train.schedule.milestones == [1, 2]
    assert config.model.bn_momentum == 0.9  # default kept
    # An int where a float is expected is accepted and converted.
    assert isinstance(load_config(None, ["train.optimizer.lr=1"]).train.optimizer.lr, float)
    # 5e-4 without a dot is a string to YAML 1.1; it is still a number here.
    assert (
        load_config(None, ["train.optimizer.weight_decay=5e-4"]).train.optimizer.weight_decay
        == 5e-4
    )


def test_round_trip_through_yaml(tmp_path):
    config = load_config(REPO_ROOT / "configs" / "resnet56.yaml", ["train.epochs=7"])
    again = load_config(write(tmp_path, "command: python train.py\n" + config.to_yaml()))
    assert again == config


@pytest.mark.parametrize(
    "text, overrides, expected",
    [
        ("train: {epoch: 3}\n", [], "unknown key train.epoch (did you mean train.'epochs'?)"),
        (
            "{}\n",
            ["train.optimiser.lr=0.1"],
            "unknown key train.optimiser (did you mean train.'optimizer'?)",
        ),
        (
            "train: {epochs: three}\n",
            [],
            "train.epochs: expected an integer, found 'three' (string)",
        ),
        ("train: {epochs: 0}\n", [], "train.epochs: expected a value >= 1 and <= 100000, found 0"),
        ("train: {optimizer: {name: sdg}}\n", [], "(did you mean 'sgd'?)"),
        ("train: {schedule: {name: cosin}}\n", [], "(did you mean 'cosine'?)"),
        ("model: {name: resnet19}\n", [], "model.name: unknown model 'resnet19'"),
        ("runtime: {jit_compile: maybe}\n", [], "runtime.jit_compile: expected true or false"),
        ("train: {optimizer: {lr: -1}}\n", [], "train.optimizer.lr: expected a value > 0.0"),
        ("train: 5\n", [], "train: expected a mapping of keys, found 5 (integer)"),
        ("train: {schedule: {name: multistep}}\n", [], "train.schedule.milestones: the multistep"),
        ("data: {subset: 100, val_size: 100}\n", [], "data.val_size: expected fewer than the 100"),
        ("runtime: {distribution: mirored}\n", [], "(did you mean 'mirrored'?)"),
        ("train: {lr_scaling: sqrt}\n", [], "train.lr_scaling: expected one of 'none', 'linear'"),
        ("model: {bn_momentum: 1.0}\n", [], "model.bn_momentum: expected a value >= 0.0 and < 1.0"),
        (
            "model: {name: fastnet, stem: imagenet}\n",
            [],
            "model.stem: only the ResNets have it (the fastnet models have a fixed",
        ),
        ("model: {name: resnet20}\n", ["model.identity_init=true"], "model.identity_init: only"),
        (
            "data: {augment: {autoaugment: cifar10, randaugment: {num_ops: 2}}}\n",
            [],
            "data.augment.autoaugment: one image policy at a time, found 'cifar10' with",
        ),
        (
            "{}\n",
            ["data.augment.autoaugment=imagenet"],
            "data.augment.autoaugment: expected one of",
        ),
        ("{}\n", ["data.augment.color_jitter.hue=0.7"], "data.augment.color_jitter.hue: expected"),
        (
            "{}\n",
            ["data.augment.normalized_jitter.scale=1.5"],
            "data.augment.normalized_jitter.scale: expected",
        ),
        ("{}\n", ["data.augment.mixup=-1"], "data.augment.mixup: expected a value >= 0.0"),
    ],
)
def test_bad_configs_fail_with_one_clear_line(tmp_path, text, overrides, expected):
    path = write(tmp_path, text)
    message = error_of(path, overrides)
    assert expected in message
    assert str(path) in message


def test_malformed_override():
    assert "--set 'train.epochs': expected key=value" in error_of(None, ["train.epochs"])


def test_unreadable_yaml_reports_the_line(tmp_path):
    path = write(tmp_path, "model:\n  name: resnet18\ntrain: {epochs: [1, 2\n")
    message = error_of(path)
    assert str(path) in message and "line 4" in message and "invalid YAML" in message


def test_missing_file():
    assert "config file not found" in error_of("no/such/file.yaml")


def test_top_level_must_be_a_mapping(tmp_path):
    assert "expected a mapping of sections" in error_of(write(tmp_path, "- 1\n- 2\n"))


def test_shipped_yaml_has_no_unknown_keys():
    # A typo in a shipped config must not be silently ignored.
    for path in SHIPPED:
        data = yaml.safe_load(path.read_text())
        load_config(path)
        assert set(data) <= {"model", "data", "train", "runtime", "output"}, path
