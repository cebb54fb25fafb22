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


def onednn_seconds(log_lines) -> dict[str, list]:
    """[executions, seconds] per oneDNN primitive kind ("convolution backward_weights",
    "reorder"...) from its verbose log's `exec` lines, whose last field is the time in ms."""
    totals: dict[str, list] = {}
    for line in log_lines:
        fields = line.strip().split(",")
        if not fields[0].endswith("_verbose") or "exec" not in fields[:4]:
            continue
        at = fields.index("exec")  # then the engine, the primitive kind, its implementation
        if len(fields) < at + 6:
            continue
        kind = fields[at + 2] if fields[at + 4] == "undef" else f"{fields[at + 2]} {fields[at + 4]}"
        entry = totals.setdefault(kind, [0, 0.0])
        entry[0] += 1
        entry[1] += float(fields[-1]) / 1e3
    return totals
