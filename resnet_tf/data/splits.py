"""Which training images a run trains on and which it validates on.

The split is stratified, so a small validation set still mirrors the class balance, and it is
a pure function of the seed, so a resumed run validates on the very same images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Splits:
    """The images and labels a run trains on and validates on (validation may be empty)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def split_train_val(
    x: np.ndarray, y: np.ndarray, val_size: int, seed: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Split off a class-stratified validation set of `val_size` images, chosen by `seed`.

    Each class gives val_size * class_share images (largest remainders get the spare ones),
    so the validation set mirrors the class balance. Both parts keep the original order.
    """
    labels = np.asarray(y).reshape(-1)
    n_images = labels.shape[0]
    if len(x) != n_images:
        raise ValueError(
            f"split_train_val: expected as many labels as images, found {n_images} and {len(x)}"
        )
    if not 0 <= val_size < n_images:
        raise ValueError(
            f"split_train_val: expected 0 <= val_size < {n_images} (the number of images), "
            f"found {val_size}"
        )
    classes, counts = np.unique(labels, return_counts=True)
    quotas = val_size * counts / n_images
    per_class = np.floor(quotas).astype(np.int64)
    spare = val_size - int(per_class.sum())
    # Stable sort so ties go to the lower class, keeping the split deterministic.
    order = np.argsort(-(quotas - per_class), kind="stable")
    per_class[order[:spare]] += 1

    rng = np.random.default_rng(seed)
    is_val = np.zeros(n_images, dtype=bool)
    for class_value, take in zip(classes, per_class):
        members = np.flatnonzero(labels == class_value)
        is_val[rng.permutation(members)[:take]] = True
    return (x[~is_val], y[~is_val]), (x[is_val], y[is_val])


def make_splits(
    x: np.ndarray, y: np.ndarray, *, subset: int | None, val_size: int, seed: int
) -> Splits:
    """A run's data (`data.subset`, `data.val_size`, `runtime.seed`): the first `subset`
    images when set (quick runs), minus a stratified validation split of `val_size` images."""
    if subset is not None:
        x, y = x[:subset], y[:subset]
    (x_train, y_train), (x_val, y_val) = split_train_val(x, y, val_size, seed)
    return Splits(x_train, y_train, x_val, y_val)
