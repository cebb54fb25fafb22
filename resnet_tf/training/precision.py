"""Whether the hardware a run finds suits the precision its config asks for.

The config schema knows the policies; only at run time is it known whether there is a GPU and
which instructions the CPU has. A policy the hardware cannot run is an error, one it would run
slowly (emulated) is a warning with the fix.
"""

from __future__ import annotations

import tensorflow as tf

from resnet_tf.errors import TrainingError
from resnet_tf.training.hardware import compute_units, cpu_info

# The instructions that make bfloat16 convolutions and matmuls fast: x86's AVX-512 BF16 and
# AMX, Arm's BF16 extension. Without them oneDNN converts to float32 and back around every op,
# and mixed_bfloat16 is slower than float32.
_BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_has_bfloat16(cpuinfo: str | None = None) -> bool | None:
    """Whether the CPU has bfloat16 dot-product instructions; None where /proc/cpuinfo cannot
    be read (not Linux)."""
    flags = cpu_info(cpuinfo, cap="").flags
    return None if flags is None else not _BFLOAT16_FLAGS.isdisjoint(flags)


def _on_gpu() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def check_precision(policy: str) -> None:
    """Refuse a policy this machine cannot run: float16 has no fast CPU kernels."""
    if policy == "mixed_float16" and not _on_gpu():
        raise TrainingError(
            "runtime.mixed_precision: mixed_float16 needs a GPU (CPUs have no fast float16 "
            "kernels); use float32, or mixed_bfloat16 on a CPU with bfloat16 support"
        )


def precision_warning(policy: str) -> str | None:
    """A line for a run that asks for bfloat16 on a CPU that would emulate it; else None."""
    if policy != "mixed_bfloat16" or _on_gpu():
        return None
    if cpu_has_bfloat16() is not False:
        return None
    return (
        "runtime.mixed_precision: mixed_bfloat16 on a CPU without bfloat16 instructions "
        "(avx512_bf16, amx_bf16 or Arm bf16 in /proc/cpuinfo) trains slower than float32; "
        "add --set runtime.mixed_precision=float32"
    )


def compute_line(policy: str) -> str:
    """One line for the start of a run: its precision and what computes it, e.g. 'precision:
    mixed_bfloat16, computed on AMX (bfloat16 tiles)' or 'precision: float32, computed on
    AVX-512'."""
    units = "the GPU" if _on_gpu() else compute_units(policy, cpu_info())
    return f"precision: {policy}, computed on {units}"
