"""Batch normalization that runs as one fused kernel on the TensorFlow backend.

Keras 3 builds BatchNormalization from separate ops (two reductions for the moments, then an
elementwise affine), each with its own backward pass over the activations. TensorFlow has one
fused kernel for all of it (FusedBatchNormV3 and its gradient), which oneDNN optimises further on
CPUs; see README "Performance" for what that is worth. Under mixed_bfloat16 it normalizes the
bfloat16 activations directly. Same weights, same config, same
maths as keras.layers.BatchNormalization, so it saves and loads like any Keras layer; on other
backends, or in cases the kernel does not cover, it falls back to the Keras implementation.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="resnet_tf")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    def add_weight(self, *args, **kwargs):
        """Under tf.distribute, average the moving statistics' updates over the replicas, so
        every replica and worker keeps the same ones (Keras leaves them per replica)."""
        if kwargs.get("name") in ("moving_mean", "moving_variance"):
            kwargs["aggregation"] = "mean"
        return super().add_weight(*args, **kwargs)

    def _can_fuse(self, inputs, mask) -> bool:
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and not self.renorm
            and not self.synchronized
        )

    def call(self, inputs, training=None, mask=None):
        if not self._can_fuse(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        # bfloat16 goes in as it is: the kernel normalizes it in float32 with float32 scale and
        # statistics and rounds once on the way out, as casting around it would, without the two
        # extra passes over the activations (and their gradients) that the casts cost.
        x = inputs if inputs.dtype in (tf.bfloat16, tf.float32) else tf.cast(inputs, "float32")
        training = bool(training) and self.trainable
        channels = [inputs.shape[-1]]
        # Without scale (or center), the kernel gets the constant gamma 1 (or beta 0).
        scale = tf.cast(self.gamma, "float32") if self.scale else tf.ones(channels)
        offset = tf.cast(self.beta, "float32") if self.center else tf.zeros(channels)
        y, batch_mean, batch_variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x,
            scale=scale,
            offset=offset,
            mean=tf.cast(self.moving_mean, "float32") if not training else tf.zeros([0]),
            variance=tf.cast(self.moving_variance, "float32") if not training else tf.zeros([0]),
            epsilon=self.epsilon,
            exponential_avg_factor=1.0,
            data_format="NHWC",
            is_training=training,
        )
        if training:
            # The kernel returns the unbiased batch variance, as PyTorch uses for its running
            # statistics; the normalisation itself uses the biased one, as everywhere.
            momentum = self.momentum
            self.moving_mean.assign(self.moving_mean * momentum + batch_mean * (1.0 - momentum))
            self.moving_variance.assign(
                self.moving_variance * momentum + batch_variance * (1.0 - momentum)
            )
        return tf.cast(y, self.compute_dtype)
