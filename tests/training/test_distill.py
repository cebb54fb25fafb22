"""Knowledge distillation (train.distill): the loss against Hinton et al.'s formula by hand, the
frozen teacher kept out of the student's checkpoints, and whole runs through train.py's path."""

import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import train as train_cli
from resnet_tf.config import load_config
from resnet_tf.errors import ConfigError
from resnet_tf.models import Bottleneck, build_model
from resnet_tf.runs.records import write_config
from resnet_tf.runs.run_dir import RunPaths
from resnet_tf.training.distillation import attach_teacher
from resnet_tf.training.losses import SparseCrossEntropy
from resnet_tf.training.task import add_l2_penalty
from tests.helpers import assert_one_error_line
from tests.helpers.tiny_runs import QUICK_MODEL, save_bottleneck_teacher, tiny_run_args

# ---------------------------------------------------------------- the loss, on tiny models


def tiny_pair(teacher_dtype: str = "float32") -> tuple[keras.Model, keras.Model]:
    """A 6 -> 4 linear student and a teacher with BN whose logits are large enough to make the
    soft term matter."""
    keras.utils.set_random_seed(0)
    student = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(4, name="student_dense")], name="student"
    )
    big = keras.initializers.RandomNormal(stddev=2.0)
    teacher = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, name="teacher_hidden", dtype=teacher_dtype),
            keras.layers.BatchNormalization(name="teacher_bn", dtype=teacher_dtype),
            keras.layers.Dense(4, kernel_initializer=big, name="teacher_logits"),
        ],
        name="teacher",
    )
    return student, teacher


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_the_loss_is_hintons_formula_with_the_l2_term_once():
    student, teacher = tiny_pair(teacher_dtype="mixed_bfloat16")  # its logits come as bfloat16
    add_l2_penalty(student, 0.01)
    student.compile(optimizer="sgd", loss=SparseCrossEntropy(num_classes=4, label_smoothing=0.1))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 6)).astype(np.float32)
    y = rng.integers(0, 4, 16)
    s = np.asarray(student(x))
    t = np.asarray(keras.ops.cast(teacher(x, training=False), "float32"), np.float64)
    target = np.eye(4)[y] * 0.9 + 0.1 / 4
    hard = -(target * log_softmax(s.astype(np.float64))).sum(-1).mean()
    temperature = 3.0
    log_p, log_q = log_softmax(t / temperature), log_softmax(s / temperature)
    soft = temperature**2 * (np.exp(log_p) * (log_p - log_q)).sum(-1).mean()
    l2 = 0.005 * sum(float(np.sum(np.square(v.numpy()))) for v in student.trainable_variables)
    assert soft > 0.5 and hard > 0.5 and l2 > 1e-3  # each term big enough to be missed

    def loss(training=True) -> float:
        return float(student.compute_loss(x, y, student(x), training=training))

    plain = loss()
    assert plain == pytest.approx(hard + l2, rel=1e-5)
    for alpha in (0.0, 1.0, 0.3):
        attach_teacher(student, teacher, temperature=temperature, alpha=alpha)
        expected = (1 - alpha) * hard + alpha * soft + l2
        assert loss() == pytest.approx(expected, rel=1e-5), alpha
        assert loss(training=False) == plain  # validation: the student's own loss
    attach_teacher(student, teacher, temperature=temperature, alpha=0.0)
    assert loss() == plain  # alpha 0: exactly the plain loss


def test_the_teacher_stays_frozen_and_out_of_the_students_checkpoint(tmp_path):
    """A Bottleneck teacher and a BasicBlock student (the guide's ResNet-152 -> ResNet-18
    shape, tiny), trained with XLA inside a strategy scope, as a run on a GPU trains."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        student = build_model("resnet20", width_multiplier=0.25)
        teacher = keras.models.load_model(save_bottleneck_teacher(tmp_path / "teacher.keras"))
        student.compile(
            optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
            loss=SparseCrossEntropy(num_classes=10),
            jit_compile=True,
        )
        attach_teacher(student, teacher, temperature=4.0, alpha=0.9)
    teacher_before = [w.numpy().copy() for w in teacher.weights]
    student_before = [w.numpy().copy() for w in student.trainable_weights]
    rng = np.random.default_rng(1)
    x = (3 + 2 * rng.standard_normal((16, 32, 32, 3))).astype(np.float32)  # BN stats would move
    student.fit(x, rng.integers(0, 10, 16), batch_size=8, epochs=1, verbose=0)

    for before, after in zip(teacher_before, teacher.weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())
    trained = zip(student_before, student.trainable_weights, strict=True)
    assert all(not np.array_equal(b, a.numpy()) for b, a in trained)
    assert teacher not in student._flatten_layers(include_self=False)
    fresh = [w.path for w in build_model("resnet20", width_multiplier=0.25).weights]
    assert [w.path for w in student.weights] == fresh
    slots = [v for v in student.optimizer.variables if "momentum" in v.path]
    assert len(slots) == len(student.trainable_weights)

    student.save(tmp_path / "student.keras")
    reloaded = keras.models.load_model(tmp_path / "student.keras")
    assert [w.path for w in reloaded.weights] == fresh
    assert not any(isinstance(layer, Bottleneck) for layer in reloaded._flatten_layers())
    for saved, trained in zip(reloaded.weights, student.weights, strict=True):
        np.testing.assert_array_equal(saved.numpy(), trained.numpy())
    assert "compute_loss" not in vars(reloaded)  # a plain student: no teacher, no override


# ---------------------------------------------------------------- whole runs
# A distilled run end to end (its config records the teacher, best/last.keras hold the student
# alone, resume is exact and refuses a changed teacher) is part of
# tests/training/test_optimizers.py::test_a_resumed_run_with_all_the_extras_equals_an_unbroken_one.


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory) -> Path:
    return save_bottleneck_teacher(tmp_path_factory.mktemp("teacher") / "teacher.keras")


# ---------------------------------------------------------------- clear errors


def test_a_wrong_missing_or_differently_normalised_teacher_is_one_line(
    tiny_cifar_archive, teacher_file, tmp_path, capsys
):
    five_classes = tmp_path / "five.keras"
    keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5)]
    ).save(five_classes)
    other_run = RunPaths(tmp_path / "imagenet-run")
    other_run.checkpoints.mkdir(parents=True)
    shutil.copy(teacher_file, other_run.best)
    write_config(other_run, load_config(None, ["data.normalization=imagenet"]), "train.py")
    cases = [
        (five_classes, "expected a model with 10 outputs, found 5"),
        (tmp_path / "missing.keras", "model file not found"),
        (other_run.root, "trained with data.normalization 'imagenet', but this run uses 'cifar10'"),
    ]
    for index, (teacher, text) in enumerate(cases):
        extra = [*QUICK_MODEL, f"train.distill.teacher={teacher}"]
        args = tiny_run_args(tiny_cifar_archive, tmp_path / "out", f"run{index}", 1, extra)
        code = train_cli.main(args)
        assert_one_error_line(code, capsys.readouterr().err, "train.distill.teacher: ", text)


def test_distill_keys_without_a_teacher_are_refused():
    for override, text in [
        ("train.distill.temperature=2", "train.distill.temperature: only used with"),
        ("train.distill.alpha=0.5", "train.distill.alpha: only used with"),
        ("train.distill.teacher_sha256=" + "a" * 64, "train.distill.teacher_sha256: only used"),
    ]:
        with pytest.raises(ConfigError, match=text):
            load_config(None, [override])
    with pytest.raises(ConfigError, match="expected 64 lowercase hex digits"):
        load_config(None, ["train.distill.teacher=t.keras", "train.distill.teacher_sha256=ABC"])
    # The defaults, and every key with a teacher, are fine.
    load_config(None, ["train.distill.temperature=4", "train.distill.alpha=0.9"])
    load_config(None, ["train.distill.teacher=t.keras", "train.distill.alpha=0.5"])
