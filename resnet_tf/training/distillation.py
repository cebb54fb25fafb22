"""Knowledge distillation (Hinton et al. 2015): the student learns from the labels and from a
frozen teacher's softened logits, both on the same augmented batch that fit() trains on:

    loss = (1 - alpha) * hard + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))

where `hard` is the compiled loss (label smoothing included) and the model's own losses (the L2
penalty) are added once, as Keras adds them.

Why a `compute_loss` override on the compiled student, and not `keras.distillation.Distiller`:
the Distiller is a new Model that holds teacher and student, so checkpoints, exact resume,
Lookahead and the L2 penalty, which all act on the fitted model, would see the teacher or need
rewriting. Here the fitted model stays the student alone: `attach_teacher` binds a method to
that one instance (Keras' train step calls `self.compute_loss`), and the teacher lives only in
the method's closure, where Keras' attribute tracking never looks. So the teacher is no
sublayer, its weights are in neither the checkpoints nor `trainable_variables` nor the
optimizer, and a saved student reloads without it.

Validation (training=False) skips the teacher: val_loss is the student's own loss, comparable
with that of a run without distillation.
"""

from __future__ import annotations

import types

import keras
from keras import ops


class SoftTargetLoss(keras.losses.Loss):
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)) per image, on logits. As a Keras
    Loss it is reduced as the compiled loss is: batch mean, sample weights, and the division by
    the number of replicas under tf.distribute."""

    def __init__(self, temperature: float, name: str = "soft_target_kl"):
        super().__init__(name=name, dtype="float32")
        self.temperature = float(temperature)

    def call(self, teacher_logits, student_logits):
        t = self.temperature
        log_p = ops.log_softmax(ops.cast(teacher_logits, "float32") / t, axis=-1)
        log_q = ops.log_softmax(ops.cast(student_logits, "float32") / t, axis=-1)
        return t * t * ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1)


def attach_teacher(
    model: keras.Model, teacher: keras.Model, temperature: float, alpha: float
) -> None:
    """Make the compiled `model` learn from `teacher` too (see the module docstring).

    Call it after `model.compile()` and, under tf.distribute, with `teacher` made in the same
    strategy scope as `model`. Attaching again replaces the teacher.
    """
    if model.loss is None:
        raise ValueError("attach_teacher: compile the student first (it needs its loss)")
    teacher.trainable = False
    soft_loss = SoftTargetLoss(temperature)
    keras_compute_loss = type(model).compute_loss  # the compiled loss + model.losses

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = keras_compute_loss(self, x, y, y_pred, sample_weight, training=training)
        if not training:
            return loss
        # Inference mode: the teacher's BN uses (and keeps) its moving statistics.
        teacher_logits = ops.stop_gradient(ops.cast(teacher(x, training=False), "float32"))
        hard = self.loss(y, y_pred, sample_weight)
        soft = soft_loss(teacher_logits, y_pred, sample_weight)
        # (1 - alpha) * hard + alpha * soft + model.losses, written so that alpha 0 gives the
        # student's own loss exactly.
        return loss + alpha * (soft - hard)

    # Set on the instance: a bound method is not tracked, and its closure is never searched.
    model.compute_loss = types.MethodType(compute_loss, model)
