"""Whether the hardware a run finds suits the precision its config asks for.

The config schema knows the policies; only at run time is it known whether there is a GPU and
which instructions the CPU has. A policy the hardware cannot run is an error, one it would run
slower than float32 is a warning with the fix.

Having bfloat16 instructions is not enough: AMX and AMD's Zen 4 multiply bfloat16 faster than
float32, but an Intel Xeon with AVX-512 BF16 and no AMX multiplies it slower, and the casts come
on top. So on a CPU with bfloat16 instructions and no AMX, a run times a matmul both ways.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import tensorflow as tf

from resnet_tf.config import Config
from resnet_tf.errors import TrainingError
from resnet_tf.training.hardware import compute_units, cpu_info

# The instructions that make bfloat16 convolutions and matmuls fast: x86's AVX-512 BF16 and
# AMX, Arm's BF16 extension. Without them oneDNN converts to float32 and back around every op,
# and mixed_bfloat16 is slower than float32.
_BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
# What `auto` may become.
AUTO_POLICIES = ("float32", "mixed_bfloat16")
# bfloat16 must multiply at least this much faster than float32 to pay for its casts.
MIN_BFLOAT16_SPEEDUP = 1.1


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


@functools.cache
def bfloat16_matmul_speedup(size: int = 2048, repeats: int = 3) -> float:
    """How many times faster this CPU multiplies matrices in bfloat16 than in float32: the best
    of a few matmuls each way, about a second in all."""
    seconds = {}
    for dtype in (tf.float32, tf.bfloat16):
        matrix = tf.cast(tf.random.stateless_normal((size, size), seed=(0, 1)), dtype)
        tf.linalg.matmul(matrix, matrix).numpy()  # warm-up: kernels chosen, memory touched
        timings = []
        for _ in range(repeats):
            start = time.perf_counter()
            tf.linalg.matmul(matrix, matrix).numpy()
            timings.append(time.perf_counter() - start)
        seconds[dtype] = min(timings)
    return seconds[tf.float32] / seconds[tf.bfloat16]


def _gpu_has_fast_bfloat16() -> bool:
    """bfloat16 tensor cores: NVIDIA compute capability 8.0 (Ampere) or newer."""
    gpu = tf.config.list_physical_devices("GPU")[0]
    capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
    return capability is not None and tuple(capability) >= (8, 0)


def bfloat16_is_faster() -> tuple[bool, str]:
    """Whether this machine computes bfloat16 faster than float32, and why, in a few words."""
    if _on_gpu():
        if _gpu_has_fast_bfloat16():
            return True, "the GPU has bfloat16 tensor cores"
        return False, "the GPU has no bfloat16 tensor cores (compute capability below 8.0)"
    if not cpu_has_bfloat16():
        return False, "the CPU has no bfloat16 instructions (avx512_bf16, amx_bf16, Arm bf16)"
    if cpu_info().has("amx_bf16"):
        return True, "the CPU has AMX"
    speedup = bfloat16_matmul_speedup()
    word = "faster" if speedup >= MIN_BFLOAT16_SPEEDUP else "no faster"
    return speedup >= MIN_BFLOAT16_SPEEDUP, (
        f"bfloat16 matmuls measured {word} than float32 on this CPU ({speedup:.2f}x)"
    )


def resolve_precision(policy: str) -> str:
    """The Keras policy a run computes in: `auto` is mixed_bfloat16 where `bfloat16_is_faster`,
    else float32; the others are themselves."""
    if policy != "auto":
        return policy
    return "mixed_bfloat16" if bfloat16_is_faster()[0] else "float32"


def pin_precision(config: Config) -> tuple[Config, str | None]:
    """After set-up: the config a run records, with `auto` replaced by the policy it chose (so
    a resumed run computes as it began, on whatever machine), and a line saying why; a config
    without `auto` comes back as it is, with None."""
    if config.runtime.mixed_precision != "auto":
        return config, None
    policy = resolve_precision("auto")  # the probe's answer is cached: no second timing
    runtime = dataclasses.replace(config.runtime, mixed_precision=policy)
    why = bfloat16_is_faster()[1]
    return dataclasses.replace(config, runtime=runtime), f"precision auto: {policy}, as {why}"


def precision_warning(policy: str) -> str | None:
    """A line for a run that asks for bfloat16 on a CPU where float32 is faster (no bfloat16
    instructions, or bfloat16 matmuls measured no faster); else None."""
    if policy != "mixed_bfloat16" or _on_gpu() or cpu_has_bfloat16() is None:
        return None  # a GPU: the user's choice; flags unknown (not Linux): cannot tell
    faster, why = bfloat16_is_faster()
    if faster:
        return None
    return (
        f"runtime.mixed_precision: mixed_bfloat16 trains slower than float32 here, as {why}; "
        "add --set runtime.mixed_precision=float32 (or =auto)"
    )


def compute_line(policy: str) -> str:
    """One line for the start of a run: its precision and what computes it, e.g. 'precision:
    mixed_bfloat16, computed on AMX (bfloat16 tiles)' or 'precision: float32, computed on
    AVX-512'."""
    units = "the GPU" if _on_gpu() else compute_units(policy, cpu_info())
    return f"precision: {policy}, computed on {units}"
