"""How closely an exported model reproduces its checkpoint, and when that is not close enough.

Both models see the same uint8 test images. A float format must predict the same class for
every image (except a tie: the checkpoint's own probabilities of the two classes within the
format's tolerance) and every probability within that tolerance; INT8's agreement is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resnet_tf.deploy.formats import ExportFormat
from resnet_tf.errors import DeployError

CHECK_BATCH = 100


@dataclass(frozen=True)
class Agreement:
    """How the exported model's outputs compare with the checkpoint's on the same images."""

    images: int
    disagreements: int  # images whose predicted class differs
    max_probability_difference: float
    reference_accuracy: float  # the checkpoint's top-1 on those images
    exported_accuracy: float
    # Images whose top-1 differs although the checkpoint's own probabilities of the two classes
    # are within the format's tolerance: a tie that rounding may break either way.
    ties: int = 0

    @property
    def top1_agreement(self) -> float:
        """Share of images with the same predicted class."""
        return 1.0 - self.disagreements / self.images

    @property
    def clear_disagreements(self) -> int:
        return self.disagreements - self.ties


def compare(
    reference, exported, images: np.ndarray, labels: np.ndarray, tolerance: float = 0.0
) -> Agreement:
    """Both models' probabilities on the same images, in batches."""
    ref, out = [], []
    for start in range(0, len(images), CHECK_BATCH):
        batch = images[start : start + CHECK_BATCH]
        ref.append(reference.probabilities(batch))
        out.append(exported.probabilities(batch))
    ref_p, out_p = np.concatenate(ref), np.concatenate(out).astype(np.float32)
    labels = labels.astype(np.int64)
    ref_top, out_top = ref_p.argmax(1), out_p.argmax(1)
    rows = np.arange(len(ref_p))
    gap = ref_p[rows, ref_top] - ref_p[rows, out_top]
    return Agreement(
        images=len(images),
        disagreements=int(np.sum(ref_top != out_top)),
        max_probability_difference=float(np.max(np.abs(ref_p - out_p))),
        reference_accuracy=float(np.mean(ref_top == labels)),
        exported_accuracy=float(np.mean(out_top == labels)),
        ties=int(np.sum((ref_top != out_top) & (gap <= tolerance))),
    )


def check_agreement(fmt: ExportFormat, agreement: Agreement, checkpoint: Path) -> None:
    """A float export must reproduce the checkpoint; else it is an error, not a file."""
    if fmt.tolerance is None:
        return
    if agreement.clear_disagreements > 0 or agreement.max_probability_difference > fmt.tolerance:
        raise DeployError(
            f"{checkpoint}: the {fmt.name} export disagrees with the checkpoint on "
            f"{agreement.images} test images (top-1 differs on "
            f"{agreement.clear_disagreements} that are not ties, expected none; "
            f"max |probability difference| "
            f"{agreement.max_probability_difference:.2g}, expected <= {fmt.tolerance:g}); "
            "nothing written"
        )
