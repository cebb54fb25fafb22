"""export.py --format saved_model, written as <name>/<version>/, is what TensorFlow Serving loads:
its model base path layout, the `serve` tag, and a serving_default predict signature taking
uint8 `images` [-1, 32, 32, 3], built only of TensorFlow's own ops (docs/serving.md)."""

from __future__ import annotations

import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

import export as export_cli


def test_a_saved_model_export_in_name_version_folders_is_what_tf_serving_loads(
    tiny_checkpoints, tiny_cifar_archive, tmp_path
):
    version = tmp_path / "models" / "cifar10" / "1"  # --model_base_path=.../models/cifar10
    code = export_cli.main(
        [
            *["--checkpoint", str(tiny_checkpoints["basic"]), "--normalization", "cifar10"],
            *["--format", "saved_model", "--output", str(version)],
            *["--data-dir", str(tiny_cifar_archive), "--check-images", "20"],
        ]
    )
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "models" / "cifar10").iterdir()) == ["1"]
    assert (version / "saved_model.pb").is_file()
    assert (version / "variables" / "variables.index").is_file()

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((version / "saved_model.pb").read_bytes())
    (graph,) = saved.meta_graphs
    assert "serve" in graph.meta_info_def.tags
    signature = graph.signature_def["serving_default"]
    assert signature.method_name == "tensorflow/serving/predict"
    (name, tensor), *others = signature.inputs.items()
    assert name == "images" and others == []
    assert tensor.dtype == types_pb2.DT_UINT8
    assert [d.size for d in tensor.tensor_shape.dim] == [-1, 32, 32, 3]
    assert sorted(signature.outputs) == ["logits", "probabilities"]
    for output in signature.outputs.values():
        assert output.dtype == types_pb2.DT_FLOAT
        assert [d.size for d in output.tensor_shape.dim] == [-1, 10]

    # Only ops TensorFlow itself registers: nothing TF Serving would need a custom build for.
    ops = {node.op for node in graph.graph_def.node}
    for function in graph.graph_def.library.function:
        ops |= {node.op for node in function.node_def}
    library = {function.signature.name for function in graph.graph_def.library.function}
    unknown = {op for op in ops - library if op_def_registry.get(op) is None}
    assert unknown == set() and "Conv2D" in ops

    # And TensorFlow's own loader serves it by that signature.
    served = tf.saved_model.load(str(version)).signatures["serving_default"]
    out = served(images=tf.zeros([2, 32, 32, 3], tf.uint8))
    assert out["probabilities"].shape == (2, 10)
