"""The model registry reads its names and options from the config schema, so the two agree."""

from __future__ import annotations

import ast
import inspect
import math
from pathlib import Path

import numpy as np
import pytest

import resnet_tf.models
from resnet_tf.config import choices, schema
from resnet_tf.config.validation import config_from_dict
from resnet_tf.errors import ConfigError
from resnet_tf.models import BasicBlock, Bottleneck, ResNet, build_model
from resnet_tf.models.__main__ import main as cli_main
from resnet_tf.models.fastnet import ConvGroup, FastNet
from resnet_tf.models.registry import ARCHITECTURES, FAST_NETS, model_options

CONFIG_PACKAGE = Path(schema.__file__).parent


def test_registry_has_exactly_the_schema_names():
    assert tuple(ARCHITECTURES) == choices.RESNET_NAMES
    assert tuple(FAST_NETS) == choices.FAST_NET_NAMES
    assert resnet_tf.models.MODEL_NAMES == choices.MODEL_NAMES


def test_unknown_name_lists_valid_names_and_suggests_one():
    with pytest.raises(ConfigError, match=r"did you mean 'resnet18'\?.*resnet152"):
        build_model("resnet81")
    with pytest.raises(ConfigError, match="choose one of resnet18"):
        build_model("vgg16")


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"dropout": 0.5}, "dropout"),
        ({"stem": "tiny"}, "stem"),
        ({"zero_init_residual": "yes"}, "zero_init_residual"),
        ({"bn_momentum": 1.5}, "bn_momentum"),
        ({"bn_epsilon": 0}, "bn_epsilon"),
        ({"width_multiplier": "2"}, "width_multiplier"),
    ],
)
def test_bad_options_are_rejected_by_name(options, named):
    with pytest.raises(ConfigError, match=named):
        build_model("resnet20", **options)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("resnet20", {"bn_momentum": 1.0}),
        ("resnet20", {"bn_momentum": float("nan")}),
        ("resnet20", {"stem": "imagenett"}),
        ("resnet20", {"bn_momentun": 0.5}),
        ("resnet20", {"kernel_init": "fan_in_uniform"}),
        ("fastnet", {"stem": "imagenet"}),
        ("fastnet", {"zero_init_residual": True}),
        ("fastnet", {"kernel_init": "xavier"}),
        ("resnet19", {}),
    ],
)
def test_build_model_refuses_what_a_config_refuses_in_the_same_words(name, options):
    with pytest.raises(ConfigError) as from_config:
        config_from_dict({"model": {"name": name, **options}}, "c.yaml")
    with pytest.raises(ConfigError) as from_registry:
        build_model(name, **options)
    assert str(from_config.value) == f"c.yaml: {from_registry.value}"
    assert "\n" not in str(from_registry.value)


def test_options_are_the_config_model_section_with_its_defaults():
    assert model_options("resnet20") == schema.ModelConfig(name="resnet20")
    # The checker's conversions: ints and NumPy scalars are numbers.
    opts = model_options("fastnet", bn_momentum=np.float32(0.5), width_multiplier=2)
    assert (opts.bn_momentum, opts.width_multiplier) == (0.5, 2.0)
    assert type(opts.bn_momentum) is float and type(opts.width_multiplier) is float
    with pytest.raises(ConfigError, match="num_classes: expected an integer >= 1, found 0"):
        build_model("resnet20", num_classes=0)


@pytest.mark.parametrize("layer", [ResNet, FastNet, ConvGroup, BasicBlock, Bottleneck])
def test_constructors_default_to_the_schema(layer):
    """So a model built directly matches one built from a config that leaves the key out."""
    defaults = schema.ModelConfig()
    # BasicBlock and Bottleneck pass their options on to their shared base class.
    signatures = (inspect.signature(cls.__init__).parameters for cls in layer.__mro__)
    parameters = next(p for p in signatures if "bn_momentum" in p)
    shared = [name for name in parameters if hasattr(defaults, name) and name != "name"]
    assert "bn_momentum" in shared and "bn_epsilon" in shared
    for name in shared:
        assert parameters[name].default == getattr(defaults, name), (layer.__name__, name)


def test_cli_refuses_an_option_the_model_lacks_in_one_line(capsys):
    assert cli_main(["fastnet", "--stem", "imagenet"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert "model.stem: only the ResNets have it" in captured.err


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for each `from module import name` in a file."""
    tree = ast.parse(path.read_text())
    return [
        (node.module or "", alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]


@pytest.mark.parametrize("path", sorted(CONFIG_PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_config_modules_use_only_public_names_and_no_model_code(path):
    for module, name in _imports(path):
        assert not module.startswith("resnet_tf.models"), (path.name, module)
        if module.startswith("resnet_tf"):
            assert not name.startswith("_"), (path.name, module, name)
    assert len(path.read_text().splitlines()) <= 300, path.name


def test_nan_is_out_of_every_range():
    with pytest.raises(ConfigError, match="optimizer.lr: expected a finite number, found nan"):
        config_from_dict({"train": {"optimizer": {"lr": math.nan}}})
