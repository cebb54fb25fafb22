"""What a SavedModel may run before we load it: its graph's op types against an allow-list.

A SavedModel is a program: its functions can hold any TensorFlow op, and ops read and write
files (ReadFile, WriteFile, SaveV2 ...), list folders, start datasets, print, or call into
Python. Loading one and calling its serving signature would run them. So before
tf.saved_model.load, saved_model.pb is parsed and every op of every function it holds and of its
top-level graph is checked against ALLOWED_OPS, what an image classifier needs (arithmetic,
convolutions, normalization, pooling, reshaping, variables read). The one exception is the
checkpoint functions TensorFlow writes into every SavedModel (save and restore, behind the
graph's saver_def): TensorFlow's own loader restores variables with its own code and never
calls them, so they may also hold CHECKPOINT_OPS. Anything else is refused, naming the first
few ops found, unless the user trusts the file (`--trust-saved-model`).
"""

from __future__ import annotations

from pathlib import Path

from resnet_tf.config.limits import MAX_SAVED_MODEL_GRAPH_BYTES, read_file
from resnet_tf.errors import DeployError

SHOWN_OPS = 4

ALLOWED_OPS = frozenset(
    {
        # the graph's plumbing: inputs, constants, calls of its own functions, variables read
        *("Placeholder", "PlaceholderWithDefault", "Const", "Identity", "IdentityN", "NoOp"),
        *("StopGradient", "PartitionedCall", "StatefulPartitionedCall", "EnsureShape"),
        *("VarHandleOp", "ReadVariableOp", "VarIsInitializedOp", "AssignVariableOp"),
        "DisableCopyOnRead",
        # arithmetic
        *("Add", "AddV2", "AddN", "Sub", "Mul", "Div", "RealDiv", "DivNoNan", "FloorDiv"),
        *("Neg", "Abs", "Square", "SquaredDifference", "Sqrt", "Rsqrt", "Reciprocal", "Exp"),
        *("Log", "Log1p", "Pow", "Maximum", "Minimum", "Floor", "Ceil", "Round", "Sign"),
        *("ClipByValue", "Erf", "Tanh", "Sigmoid", "Cast", "MatMul", "BatchMatMulV2"),
        *("BatchMatMulV3", "Einsum", "BiasAdd"),
        # what neural networks are made of
        *("Conv2D", "DepthwiseConv2dNative", "FusedBatchNorm", "FusedBatchNormV3"),
        *("Relu", "Relu6", "Elu", "Selu", "LeakyRelu", "Softplus", "Softsign", "Softmax"),
        *("LogSoftmax", "MaxPool", "AvgPool", "ResizeBilinear", "ResizeNearestNeighbor"),
        # reductions, comparisons, shapes
        *("Mean", "Sum", "Max", "Min", "Prod", "ArgMax", "ArgMin", "Equal", "NotEqual"),
        *("Greater", "GreaterEqual", "Less", "LessEqual", "LogicalAnd", "LogicalOr"),
        *("LogicalNot", "Select", "SelectV2", "Reshape", "Shape", "Size", "Rank", "Pack"),
        *("Unpack", "Concat", "ConcatV2", "Transpose", "ExpandDims", "Squeeze", "Slice"),
        *("StridedSlice", "Pad", "PadV2", "MirrorPad", "Tile", "GatherV2", "Fill"),
        *("ZerosLike", "OnesLike", "Range", "BroadcastTo", "BroadcastArgs", "Split"),
        *("SplitV",),
    }
)
# The checkpoint functions' own ops (writing and reading the variables files).
CHECKPOINT_OPS = frozenset(
    {"SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename", "StringJoin"}
    | {"StaticRegexFullMatch"}
)
GRAPH_FILE = "saved_model.pb"


def check_saved_model_ops(path: Path) -> None:
    """A DeployError, before anything in `path` runs, unless every op it can run is allowed."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    graph_file = path / GRAPH_FILE
    raw = read_file(graph_file, MAX_SAVED_MODEL_GRAPH_BYTES, "a SavedModel graph", DeployError)
    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString(raw)
    except (DecodeError, RuntimeError, ValueError):
        raise DeployError(f"{path}: refused: {GRAPH_FILE} is not a SavedModel graph") from None
    if len(saved.meta_graphs) != 1 or not saved.meta_graphs[0].HasField("object_graph_def"):
        raise DeployError(
            f"{path}: refused: expected one TensorFlow 2 graph with its objects, as "
            f"tf.saved_model.save and Keras write, found {len(saved.meta_graphs)} graph(s)"
        )
    unknown = sorted(ops_outside_allow_list(saved.meta_graphs[0]))
    if unknown:
        shown = ", ".join(unknown[:SHOWN_OPS]) + (" ..." if len(unknown) > SHOWN_OPS else "")
        raise DeployError(
            f"{path}: refused: the SavedModel runs ops an image classifier does not need "
            f"({shown}); a SavedModel is a program: if you trust its author, pass "
            "--trust-saved-model"
        )


def ops_outside_allow_list(meta_graph) -> set[str]:
    """The op types `meta_graph` holds outside ALLOWED_OPS (CHECKPOINT_OPS allowed in the
    functions that only the checkpoint's save and restore nodes call)."""
    graph = meta_graph.graph_def
    functions = {function.signature.name: function for function in graph.library.function}
    saver = meta_graph.saver_def
    saver_nodes = {
        name.split(":")[0].lstrip("^") for name in (saver.save_tensor_name, saver.restore_op_name)
    }
    saver_nodes.discard("")
    roots_for_saver = [n for n in graph.node if n.name in saver_nodes]
    other_roots = [n for n in graph.node if n.name not in saver_nodes]
    others = _called(other_roots, functions)
    # Every function the object graph knows can be called once loaded (a resource's
    # initializer is, at load time): never a checkpoint-only one.
    others |= _called_by_name(set(meta_graph.object_graph_def.concrete_functions), functions)
    checkpoint_only = _called(roots_for_saver, functions) - others
    found: set[str] = {node.op for node in graph.node} - ALLOWED_OPS
    for name, function in functions.items():
        allowed = ALLOWED_OPS | CHECKPOINT_OPS if name in checkpoint_only else ALLOWED_OPS
        found |= {node.op for node in function.node_def if node.op not in functions} - allowed
    return found


def _function_names(node) -> set[str]:
    """The functions a node calls: through an attribute (f, then_branch, body ...) or as its op."""
    names = {node.op}
    for value in node.attr.values():
        if value.HasField("func"):
            names.add(value.func.name)
        names |= {func.name for func in value.list.func}
    return names


def _called(nodes, functions: dict) -> set[str]:
    """Every function reachable from `nodes`, through calls within functions too."""
    return _called_by_name(set().union(*(_function_names(n) for n in nodes)), functions)


def _called_by_name(names: set[str], functions: dict) -> set[str]:
    reached: set[str] = set()
    pending = [name for name in names if name in functions]
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        for node in functions[name].node_def:
            pending.extend(n for n in _function_names(node) if n in functions)
    return reached
