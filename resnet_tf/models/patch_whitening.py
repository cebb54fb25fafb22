"""FastNet's first layer: a fixed conv that whitens the image's pixel patches (see fastnet.py)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="resnet_tf")
class PatchWhitening(keras.layers.Layer):
    """A 'valid' patch_size x patch_size conv whose filters whiten the image patches.

    `adapt(images)` sets the kernel from the training images: each eigenvector v of the patch
    covariance (eigenvalue l) gives the filters v / sqrt(l + epsilon) and its negative, so the
    layer outputs 2 * patch_size**2 * channels decorrelated, unit-variance features. The kernel
    is a non-trainable weight (saved in checkpoints); the bias is trained.
    """

    def __init__(self, patch_size: int = 2, epsilon: float = 5e-4, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = int(patch_size)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        k = self.patch_size
        self.filters = 2 * k * k * channels
        self.kernel = self.add_weight(
            name="kernel",
            shape=(k, k, channels, self.filters),
            initializer="zeros",
            trainable=False,
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def adapt(self, images: np.ndarray, max_images: int = 5000) -> None:
        """Set the whitening filters from (normalised, NHWC float) training images."""
        images = np.asarray(images[:max_images], dtype=np.float32)
        k, channels = self.patch_size, images.shape[-1]
        if not self.built:
            self.build(images.shape)
        dim = k * k * channels
        covariance = np.zeros((dim, dim))
        mean = np.zeros(dim)
        count = 0
        for start in range(0, len(images), 500):  # bounded memory: ~500 images of patches
            windows = np.lib.stride_tricks.sliding_window_view(
                images[start : start + 500], (k, k), axis=(1, 2)
            )  # (n, h', w', channels, k, k) -> rows laid out as the conv kernel's (k, k, c)
            patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, dim).astype(np.float64)
            covariance += patches.T @ patches
            mean += patches.sum(axis=0)
            count += len(patches)
        mean /= count
        covariance = covariance / count - np.outer(mean, mean)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        eigenvalues = np.maximum(eigenvalues, 0.0)  # rounding can make flat directions < 0
        # A fixed sign per eigenvector (largest entry positive): the same filters on any BLAS.
        largest = np.abs(eigenvectors).argmax(axis=0)
        eigenvectors = eigenvectors * np.sign(eigenvectors[largest, np.arange(dim)])
        order = np.argsort(eigenvalues)[::-1]  # strongest component first
        filters = eigenvectors[:, order] / np.sqrt(eigenvalues[order] + self.epsilon)
        kernel = np.concatenate([filters, -filters], axis=1).reshape(k, k, channels, -1)
        self.kernel.assign(kernel.astype(np.float32))

    def call(self, inputs):
        outputs = ops.conv(inputs, ops.cast(self.kernel, inputs.dtype), padding="valid")
        return outputs + ops.cast(self.bias, outputs.dtype)

    def compute_output_shape(self, input_shape):
        k = self.patch_size
        batch, height, width, _ = input_shape
        shrink = lambda size: None if size is None else size - k + 1  # noqa: E731
        return (batch, shrink(height), shrink(width), 2 * k * k * int(input_shape[-1]))

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "epsilon": self.epsilon}
