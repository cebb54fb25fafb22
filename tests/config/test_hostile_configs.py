"""Config files and --set values made to hurt: each is one short ConfigError line, in a moment."""

import time

import pytest

from resnet_tf.config import load_config
from resnet_tf.config.wording import describe_found
from resnet_tf.errors import ConfigError


def error_of(*args) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """'Billion laughs': each level lists the previous one `width` times (9**9 items in all)."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines)


@pytest.mark.parametrize(
    "text",
    [
        alias_bomb() + "\n",
        # The bomb inside a real key's value: the validation's message would print it.
        "train:\n  schedule:\n    milestones: [" + alias_bomb().replace("\n", ", ") + "]\n",
        "data: {augment: {mixup: &a 0.2, cutmix: *a}}\n",  # even a harmless one: configs have none
    ],
    ids=["top-level", "in-a-value", "one-scalar"],
)
def test_yaml_aliases_are_refused_at_once(tmp_path, text):
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    started = time.perf_counter()
    message = error_of(path)
    assert time.perf_counter() - started < 2
    assert str(path) in message and "aliases" in message and ", column " in message
    assert len(message) < 200 + len(str(path))


def test_an_alias_bomb_in_a_set_value_is_refused_and_the_message_is_short():
    bomb = "[&a [1, 1, 1, 1, 1, 1, 1, 1, 1]"
    for name, previous in zip("bcdefghi", "abcdefgh"):
        bomb += f", &{name} [{', '.join([f'*{previous}'] * 9)}]"
    started = time.perf_counter()
    message = error_of(None, [f"train.schedule.milestones={bomb}]"])
    assert time.perf_counter() - started < 2
    assert message.startswith("--set 'train.schedule.milestones=[&a [1, 1,")
    assert "aliases" in message and len(message) < 250


def test_values_in_messages_are_shortened_without_being_expanded():
    shared = ["lol"] * 9
    for _ in range(6):  # 9**7 items if written out: repr() alone would take seconds
        shared = [shared] * 9
    started = time.perf_counter()
    shown = describe_found(shared)
    assert time.perf_counter() - started < 0.5
    assert shown.startswith("[[[[[[['lol', 'lol'") and shown.endswith("... (list)")
    assert len(shown) <= 90
    long_key = "x" * 100_000
    message = error_of(None, [f"train.epochs={long_key}"])
    assert len(message) < 200 and "train.epochs: expected an integer, found 'xxx" in message
    message = error_of(None, [f"train.{long_key}=1"])
    assert len(message) < 400 and "unknown key train.xxx" in message


def test_a_config_file_above_the_size_limit_is_refused_before_parsing(tmp_path):
    from resnet_tf.config.yaml_io import MAX_CONFIG_BYTES

    path = tmp_path / "huge.yaml"
    path.write_text("# padding\n" * (2 * 1024 * 1024 // 10))  # 2 MiB of comments
    message = error_of(path)
    assert str(path) in message
    assert "2,097,150 bytes" in message and f"{MAX_CONFIG_BYTES:,}" in message


def test_a_list_heavy_config_below_the_limit_parses_in_bounded_time(tmp_path):
    from resnet_tf.config.yaml_io import MAX_CONFIG_BYTES

    path = tmp_path / "long_list.yaml"
    items = ", ".join(["2"] + ["1"] * ((MAX_CONFIG_BYTES - 100) // 3))
    path.write_text(f"train:\n  schedule:\n    name: multistep\n    milestones: [{items}]\n")
    assert path.stat().st_size <= MAX_CONFIG_BYTES
    started = time.perf_counter()
    # The milestones are parsed and checked, then refused as not increasing, in a short line.
    message = error_of(path)
    assert time.perf_counter() - started < 10
    assert "train.schedule.milestones: expected increasing epochs >= 1, found [2, 1, 1," in message
    assert len(message) < 200 + len(str(path))


def test_integers_too_long_for_python_are_one_line(tmp_path):
    path = tmp_path / "digits.yaml"
    path.write_text("train: {epochs: " + "1" * 5000 + "}\n")
    assert "invalid YAML" in error_of(path)
    path.write_text("train: {optimizer: {lr: " + "1" * 400 + "}}\n")  # too large for a float
    assert "train.optimizer.lr: expected a finite number" in error_of(path)


@pytest.mark.parametrize(
    "override",
    [
        "train.optimizer.lr=nan",
        "train.optimizer.lr=.nan",
        "train.schedule.div_factor=inf",
        "train.schedule.div_factor=.inf",
        "train.schedule.warmup_epochs=.inf",
        "train.distill.temperature=-inf",
        "data.augment.randaugment.magnitude=NaN",
        "model.width_multiplier=Infinity",
    ],
)
def test_every_float_key_refuses_nan_and_inf(override):
    key, value = override.split("=")
    message = error_of(None, [override])
    assert message.startswith(f"config: {key}: expected a finite number, found ")
    assert value.lstrip("-.").lower()[:3] in message.lower()


def test_nan_in_a_config_file_names_the_file_and_key(tmp_path):
    path = tmp_path / "nan.yaml"
    path.write_text("train:\n  schedule:\n    div_factor: .nan\n")
    message = error_of(path)
    assert (
        message
        == f"{path}: train.schedule.div_factor: expected a finite number, found nan (number)"
    )


def test_non_utf8_bytes_are_one_line_with_the_offset(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("model:\n  name: resnet20  # café\n".encode("latin-1"))
    message = error_of(path)
    assert message == (
        f"{path}: not UTF-8 text: byte 0xe9 at offset 30 (line 2); save the file as UTF-8"
    )


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing but comments\n# here\n", "---\n"])
def test_an_empty_config_file_is_refused_not_taken_as_the_defaults(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    message = error_of(path, ["train.epochs=3"])
    assert message.startswith(f"{path}: is empty: expected a mapping of sections")


def test_an_explicit_empty_mapping_and_no_file_still_mean_the_defaults(tmp_path):
    path = tmp_path / "defaults.yaml"
    path.write_text("{}\n")
    assert load_config(path) == load_config(None) == load_config()
    assert load_config(None).model.name == "resnet18"
