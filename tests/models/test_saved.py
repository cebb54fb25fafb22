"""Crafted or broken .keras files are refused with the reason, before any of their code runs."""

import json
import zipfile
from pathlib import Path

import keras
import pytest

from resnet_tf.errors import ModelFileError
from resnet_tf.models.saved import load_model_file


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A small model saved as .keras, and a Lambda-layer one beside it."""
    folder = tmp_path_factory.mktemp("saved")
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(10)(keras.layers.Flatten()(inputs))
    keras.Model(inputs, outputs).save(folder / "good.keras")
    doubled = keras.layers.Lambda(lambda x: x * 2)(inputs)
    lambda_outputs = keras.layers.Dense(10)(keras.layers.Flatten()(doubled))
    keras.Model(inputs, lambda_outputs).save(folder / "lambda.keras")
    return folder


def rewrite(good: Path, target: Path, config=None, drop: str | None = None) -> Path:
    """A copy of `good` with config.json replaced (a dict, or raw text) or a member dropped."""
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(target, "w") as copy:
        for name in source.namelist():
            if name == drop:
                continue
            data = source.read(name)
            if name == "config.json" and config is not None:
                data = config if isinstance(config, str) else json.dumps(config)
            copy.writestr(name, data)
    return target


def crafted(saved: Path, kind: str) -> Path:
    good = saved / "good.keras"
    target = saved / f"{kind}.keras"
    config = json.loads(zipfile.ZipFile(good).read("config.json"))
    dense = config["config"]["layers"][-1]
    if kind == "lambda":
        return saved / "lambda.keras"
    if kind == "text":
        target.write_text("this is not a model\n")
    elif kind == "truncated":
        target.write_bytes(good.read_bytes()[:-20])
    elif kind == "unknown_class":
        dense["class_name"] = "EvilLayer"
        rewrite(good, target, config)
    elif kind == "foreign_module":
        dense.update(module="os", class_name="system", registered_name=None)
        rewrite(good, target, config)
    elif kind == "lambda_function":
        dense["config"]["kernel_initializer"] = {
            "class_name": "__lambda__",
            "config": {"code": "print('pwned')", "defaults": None, "closure": None},
        }
        rewrite(good, target, config)
    elif kind == "deep_json":
        rewrite(good, target, "[" * 100_000 + "]" * 100_000)
    elif kind == "bad_json":
        rewrite(good, target, "{not json")
    elif kind == "no_config":
        rewrite(good, target, drop="config.json")
    elif kind == "no_weights":
        rewrite(good, target, drop="model.weights.h5")
    return target


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("text", "not a .keras model archive (not a zip file: truncated, corrupt or another "),
        ("truncated", "not a .keras model archive (not a zip file: truncated"),
        ("lambda", "contains a Lambda layer or Python function (arbitrary code)"),
        ("lambda_function", "contains a Lambda layer or Python function (arbitrary code)"),
        ("unknown_class", "unknown layer class 'keras.layers.EvilLayer'"),
        ("foreign_module", "unknown layer class 'system'"),
        ("bad_json", "config.json is not valid JSON"),
        ("deep_json", "config.json is nested too deeply for a model config"),
        ("no_config", "not a .keras model archive (no config.json inside)"),
        ("no_weights", "no weights inside (expected model.weights.h5 or model.weights.npz)"),
    ],
)
def test_crafted_or_broken_files_are_refused_with_the_reason(kind, reason, saved):
    path = crafted(saved, kind)
    with pytest.raises(ModelFileError) as raised:
        load_model_file(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: refused: {reason}"), message
    assert "\n" not in message and "..." not in message


def test_the_untouched_file_loads(saved):
    model = load_model_file(saved / "good.keras")
    assert model.output_shape == (None, 10)


def claiming_size(good: Path, target: Path, member: str, size: int) -> Path:
    """A copy of `good` whose zip directory says `member` inflates to `size` bytes: what a
    zip bomb's directory says (its data is left as it is, so the copy stays small)."""
    raw = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as archive:
        info = archive.getinfo(member)
    pos = 0
    while (pos := raw.find(b"PK\x01\x02", pos)) != -1:  # each central directory entry
        name_length = int.from_bytes(raw[pos + 28 : pos + 30], "little")
        if raw[pos + 46 : pos + 46 + name_length].decode() == info.filename:
            raw[pos + 24 : pos + 28] = size.to_bytes(4, "little")  # uncompressed size
        pos += 4
    target.write_bytes(bytes(raw))
    return target


def test_an_archive_that_would_inflate_past_the_limit_is_refused_unopened(saved, tmp_path):
    from resnet_tf.config.limits import MAX_MODEL_ARCHIVE_BYTES

    bomb = claiming_size(saved / "good.keras", tmp_path / "bomb.keras", "model.weights.h5", 2**31)
    assert bomb.stat().st_size < 200_000
    with pytest.raises(ModelFileError) as raised:
        load_model_file(bomb)
    message = str(raised.value)
    assert message.startswith(f"{bomb}: refused: would inflate to 2,147,4"), message
    assert "model.weights.h5: 2,147,483,648 from " in message
    assert message.endswith(f"over the limit of {MAX_MODEL_ARCHIVE_BYTES:,}")


def test_an_archive_of_too_many_files_is_refused(saved, tmp_path):
    many = tmp_path / "many.keras"
    with zipfile.ZipFile(saved / "good.keras") as good, zipfile.ZipFile(many, "w") as copy:
        for name in good.namelist():
            copy.writestr(name, good.read(name))
        for index in range(1000):
            copy.writestr(f"assets/{index}", b"")
    with pytest.raises(ModelFileError, match=r"refused: 1,00\d files inside, over the limit"):
        load_model_file(many)
