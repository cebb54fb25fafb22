"""TensorFlow's start-up, kept off the user's stderr; and the one line that says where work runs.

TensorFlow 2.21 writes its C++ start-up lines through absl logging before absl is initialized
("WARNING: All log messages before absl::InitializeLog() ..."), and those ignore
TF_CPP_MIN_LOG_LEVEL: `cudart_stub ... Could not find cuda drivers`, `oneDNN custom operations
are on`, and on the first look for a GPU `E0000 ... failed call to cuInit` on every machine
without one. They come from C++, so they can only be caught at the file descriptor: while
TensorFlow loads and lists its devices, stderr goes through a pipe and only the lines the log
level keeps are passed on, at once (a crash still shows its words).

TF_CPP_MIN_LOG_LEVEL set by the user is respected (0 shows everything, 2 hides info and
warnings, 3 errors too); unset, it becomes 2 and the start-up errors that ask nothing of the
user ("no GPU here", a CUDA plugin registered twice) are dropped as well: `device_line` says
where work runs in a line of ours.

This module imports nothing heavy at import time, so the package runs it before TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator

LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
DEFAULT_LOG_LEVEL = 2
# Set beside our default level, so that child processes (serve.py's workers) inherit the default
# as ours, not as the user's choice.
DEFAULTED_ENV = "RESNET_TF_DEFAULT_LOG_LEVEL"
# absl's line prefix: severity letter, date, time, thread id, file:line]
_LOG_LINE = re.compile(rb"^([IWEF])\d{4} \d\d:\d\d:[\d.]+ +\d+ [^\]\s]+:\d+\] ")
_ABSL_NOTICE = b"WARNING: All log messages before absl::InitializeLog() is called"
_SEVERITY = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}
# Errors TensorFlow logs at start-up that ask nothing of the user: no (usable) CUDA GPU, or a
# CUDA plugin registered twice.
_NO_GPU_ERRORS = (b"failed call to cuInit", b"Unable to register cu", b"cuda drivers")
# Notes the model runtimes print to stderr on every load or conversion, which ask nothing of
# the user: LiteRT's XNNPACK line, the LiteRT converter's quantization summary.
_RUNTIME_NOTES = (
    b"INFO: Created TensorFlow Lite XNNPACK delegate",
    b"INFO: Initialized TensorFlow Lite runtime",
    b"fully_quantize: ",
)


def quiet_tensorflow_start() -> None:
    """Import TensorFlow and list its devices with stderr filtered as the module says."""
    if "tensorflow" in sys.modules:
        return
    user_level = None if os.environ.get(DEFAULTED_ENV) else os.environ.get(LOG_LEVEL_ENV)
    if user_level is None:
        os.environ[LOG_LEVEL_ENV] = os.environ.get(LOG_LEVEL_ENV, str(DEFAULT_LOG_LEVEL))
        os.environ[DEFAULTED_ENV] = "1"
    level = _as_level(os.environ[LOG_LEVEL_ENV])
    with filtered_stderr(lambda line: keep_log_line(line, level, user_level is None)):
        import tensorflow as tf

        tf.config.list_physical_devices()  # where CUDA is probed (cuInit)


def keep_log_line(line: bytes, level: int, drop_no_gpu_errors: bool) -> bool:
    """Whether a line written to stderr during start-up reaches the user."""
    if line.startswith(_ABSL_NOTICE):
        return level == 0
    match = _LOG_LINE.match(line)
    if match is None:
        return True  # not TensorFlow's log: Python's own output, a crash's words
    severity = _SEVERITY[match.group(1)]
    if severity == 2 and drop_no_gpu_errors and any(e in line for e in _NO_GPU_ERRORS):
        return False
    return severity >= level


def _as_level(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return DEFAULT_LOG_LEVEL


@contextlib.contextmanager
def filtered_stderr(keep: Callable[[bytes], bool]) -> Iterator[None]:
    """File descriptor 2 through a pipe; a thread passes on the lines `keep` accepts."""
    try:
        sys.stderr.flush()
        real_stderr = os.dup(2)
    except (OSError, AttributeError, ValueError):  # no usable stderr: nothing to keep clean
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder = threading.Thread(target=_forward, args=(read_end, real_stderr, keep), daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        with contextlib.suppress(OSError, AttributeError, ValueError):
            sys.stderr.flush()
        os.dup2(real_stderr, 2)  # the pipe's last writer is gone: the thread sees its end
        forwarder.join()
        os.close(real_stderr)


@contextlib.contextmanager
def runtime_notes_quieted() -> Iterator[None]:
    """stderr without the runtimes' routine notes (_RUNTIME_NOTES), unless the user asked for
    all of TensorFlow's lines (TF_CPP_MIN_LOG_LEVEL=0)."""
    if os.environ.get(LOG_LEVEL_ENV) == "0":
        yield
        return
    with filtered_stderr(lambda line: not line.startswith(_RUNTIME_NOTES)):
        yield


def _forward(read_end: int, out: int, keep: Callable[[bytes], bool]) -> None:
    pending = b""
    with open(read_end, "rb", buffering=0) as pipe, open(out, "wb", closefd=False) as sink:
        while chunk := pipe.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if keep(line):
                    sink.write(line + b"\n")
                    sink.flush()
        if pending and keep(pending):
            sink.write(pending)


def device_line(work: str = "training") -> str:
    """One line for the user: the GPUs `work` runs on, or that it runs on the CPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        cores = cores or os.cpu_count()
        return f"no GPU found: {work} runs on the CPU ({cores} cores)"
    names = [
        tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus
    ]
    plural = "s" if len(gpus) > 1 else ""
    return f"{work} runs on {len(gpus)} GPU{plural}: {', '.join(names)}"
