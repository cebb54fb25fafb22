"""oneDNN's own account of its primitives: its verbose log (ONEDNN_VERBOSE=1), which native code
prints to the process's standard output, read for the few steps `--mode profile` looks at.

Inside a TensorFlow op, oneDNN may reorder the weights (and any input) into the blocked layout its
kernel wants and back; the TensorFlow profiler sees only the op, this log sees each primitive.
Standard library only.
"""

from __future__ import annotations

import contextlib
import ctypes
import os


@contextlib.contextmanager
def c_stdout_to(path: str):
    """Send what native code prints (oneDNN's verbose log) to a file for the `with` block."""
    libc = ctypes.CDLL(None)
    libc.fflush(None)
    saved = os.dup(1)
    with open(path, "w") as file:
        os.dup2(file.fileno(), 1)
    try:
        yield
    finally:
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)


def onednn_seconds(log_lines) -> dict[str, dict]:
    """Per oneDNN primitive kind ("convolution backward_weights", "reorder"...) from its verbose
    log's `exec` lines: {"count", "seconds", "kernels": {implementation: seconds}}, the
    implementation being the kernel oneDNN chose (e.g. "brg_conv_bwd_w:avx512_core_bf16", where
    the part after the colon is the instruction set: avx2, avx512_core, ..._amx)."""
    totals: dict[str, dict] = {}
    for line in log_lines:
        fields = line.strip().split(",")
        if not fields[0].endswith("_verbose") or "exec" not in fields[:4]:
            continue
        at = fields.index("exec")  # then the engine, the primitive kind, its implementation
        if len(fields) < at + 6:
            continue
        kind = fields[at + 2] if fields[at + 4] == "undef" else f"{fields[at + 2]} {fields[at + 4]}"
        seconds = float(fields[-1]) / 1e3
        entry = totals.setdefault(kind, {"count": 0, "seconds": 0.0, "kernels": {}})
        entry["count"] += 1
        entry["seconds"] += seconds
        kernels = entry["kernels"]
        kernels[fields[at + 3]] = kernels.get(fields[at + 3], 0.0) + seconds
    return totals
