"""Models from strangers: a SavedModel's ops are checked against the allow-list before anything
in it runs, and a model whose "probabilities" are not probabilities is refused in one line, by
predict.py and evaluate.py alike (both load through deploy.load_classifier / load_exported)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import evaluate as evaluate_cli
import predict as predict_cli
from resnet_tf.deploy import serving
from resnet_tf.deploy.saved_model_ops import check_saved_model_ops, ops_outside_allow_list
from tests.deploy.tiny_exports import FAMILIES
from tests.helpers import assert_one_error_line


def run(cli, capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def white_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("images") / "white.png"
    path.write_bytes(tf.io.encode_png(np.full((32, 32, 3), 255, np.uint8)).numpy())
    return path


def meta_graph(path):
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((path / "saved_model.pb").read_bytes())
    return saved.meta_graphs[0]


def saved_model_ops(path) -> set[str]:
    library = meta_graph(path).graph_def.library
    return {node.op for function in library.function for node in function.node_def}


def test_our_own_saved_models_of_every_family_pass_the_allow_list(exported, tmp_path):
    """Every family export.py writes (and FastNet with ReLU, exported here) is allowed, with
    the ops of its layers looked at, and its checkpoint functions' file ops allowed there only."""
    import keras

    from resnet_tf.models import build_model

    keras.utils.set_random_seed(0)
    relu = build_model("fastnet_relu", width_multiplier=0.25)
    relu_path = tmp_path / "fastnet_relu_saved_model"
    serving.serving_model(relu, "cifar10").export(
        str(relu_path), format="tf_saved_model", verbose=False
    )
    folders = [exported[family, "saved_model"].path for family in FAMILIES] + [relu_path]
    for folder in folders:
        check_saved_model_ops(folder)
        ops = saved_model_ops(folder)
        assert {"Conv2D", "FusedBatchNormV3", "Softmax", "SaveV2", "RestoreV2"} <= ops, folder
    assert {"Tanh", "Pow"} <= saved_model_ops(exported["fastnet", "saved_model"].path)  # GELU


class FileWriter(tf.Module):
    """A model that answers like a classifier, and meanwhile reads one file and writes another."""

    def __init__(self, secret: str, target: str):
        super().__init__()
        self.secret, self.target = secret, target

    @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.uint8, name="images")])
    def __call__(self, images):
        tf.io.write_file(self.target, tf.io.read_file(self.secret))
        mean = tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2, 3])
        logits = tf.stack([mean * 0.0 + float(i) for i in range(10)], axis=1)
        return {"probabilities": tf.nn.softmax(logits)}


def test_a_saved_model_that_reads_and_writes_files_is_refused_unless_trusted(
    tmp_path, white_png, tiny_cifar_archive, capsys
):
    secret, target = tmp_path / "secret.txt", tmp_path / "written.txt"
    secret.write_text("private")
    module = FileWriter(str(secret), str(target))
    crafted = tmp_path / "crafted_saved_model"
    tf.saved_model.save(module, str(crafted), signatures={"serving_default": module.__call__})
    assert ops_outside_allow_list(meta_graph(crafted)) == {"ReadFile", "WriteFile"}
    refusal = (
        f"error: {crafted}: refused: the SavedModel runs ops an image classifier does not need "
        "(ReadFile, WriteFile); a SavedModel is a program: if you trust its author, pass "
        "--trust-saved-model"
    )
    code, out, err = run(predict_cli, capsys, "--model", crafted, white_png)
    assert_one_error_line(code, err)
    assert (err.strip(), out) == (refusal, "")
    code, out, err = run(
        evaluate_cli, capsys, "--checkpoint", crafted, "--data-dir", tiny_cifar_archive
    )
    assert_one_error_line(code, err)
    assert err.strip() == refusal
    assert not target.exists() and not (tmp_path / "eval-crafted_saved_model").exists()

    code, out, err = run(predict_cli, capsys, "--model", crafted, "--trust-saved-model", white_png)
    assert (code, err) == (0, "") and out.startswith(f"{white_png}: truck ")
    assert target.read_text() == "private"  # trusted: it ran, files and all


def onnx_model(path, row: list[float], scale: float = 0.0):
    """An ONNX classifier of uint8 images whose probabilities are `row` * (1 - scale * the mean
    pixel): `row` for a black image, and what `scale` makes of it for brighter ones."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Cast", ["images"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["pixels"], ["mean4"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["mean4", "column"], ["mean"]),
        helper.make_node("Mul", ["mean", "scale"], ["scaled"]),
        helper.make_node("Sub", ["one", "scaled"], ["factor"]),
        helper.make_node("Mul", ["factor", "row"], ["probabilities"]),
    ]
    constants = [
        helper.make_tensor("column", TensorProto.INT64, [2], [-1, 1]),
        helper.make_tensor("scale", TensorProto.FLOAT, [], [scale]),
        helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("row", TensorProto.FLOAT, [1, 10], row),
    ]
    graph = helper.make_graph(
        nodes,
        "stranger",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, [None, 32, 32, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 10])],
        initializer=constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.parametrize(
    "row, scale, found",
    [
        ([float("nan")] * 10, 0.0, "NaN or infinite values"),
        ([0.5] * 10, 0.0, "an image's summing to 5"),
        ([-4.0] + [0.5] * 9, 0.0, "values from -4 to 0.5"),
        ([0.1] * 10, 0.01, "values from -0.155 to -0.155"),  # fine on black, not on white
    ],
    ids=["nan", "sum", "negative_at_load", "negative_per_batch"],
)
def test_probabilities_that_are_not_probabilities_are_one_line(
    row, scale, found, tmp_path, white_png, tiny_cifar_archive, capsys
):
    model = onnx_model(tmp_path / "stranger.onnx", row, scale)
    expected = (
        f"error: {model}: the model's 'probabilities' are not probabilities ({found}); expected "
        "finite values in [0, 1] summing to 1 for each image"
    )
    code, out, err = run(predict_cli, capsys, "--model", model, white_png)
    assert_one_error_line(code, err)
    assert (err.strip(), out) == (expected, "")
    code, out, err = run(
        evaluate_cli, capsys, "--checkpoint", model, "--data-dir", tiny_cifar_archive
    )
    assert_one_error_line(code, err)
    if scale == 0.0:  # the test images of the tiny archive are not white: another range
        assert err.strip() == expected
    else:
        assert "are not probabilities (values from -" in err
    assert not (tmp_path / "eval-stranger" / "report.json").exists()
