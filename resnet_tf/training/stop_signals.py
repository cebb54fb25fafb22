"""Stop signals outside training: a command that is loading, scoring or exporting ends with
its one line and exit code (143 for SIGTERM, 130 for Ctrl-C), never silently or with a
traceback. While training, callbacks/mid_epoch.catch_stop_signals takes over (to save first).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

from resnet_tf.errors import RunInterrupted


@contextlib.contextmanager
def sigterm_raises(where: str) -> Iterator[None]:
    """Outside training: SIGTERM ends the block with RunInterrupted("SIGTERM", 143, `where`),
    so that a command ends with its one line, its clean-up (finally blocks) done, rather than
    dying silently. Training's own handler (catch_stop_signals) takes over while it trains; a
    SIGTERM the process ignores stays ignored.

    The handler raises KeyboardInterrupt("SIGTERM"), as Ctrl-C raises KeyboardInterrupt: a
    BaseException, which no library's `except Exception` turns into an error of its own
    (TensorFlow's tracing does that to an Exception). For a command whose clean-up matters
    (an export's temporary folder); stop_signals_exit is for one with nothing to clean."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    try:
        with handled_by(stop, (signal.SIGTERM,)):
            yield
    except KeyboardInterrupt as interrupt:
        if interrupt.args != ("SIGTERM",):
            raise
        raise RunInterrupted("SIGTERM", 128 + signal.SIGTERM, where) from None


@contextlib.contextmanager
def stop_signals_exit(
    where: str, run: str | None = None, signals: tuple = (signal.SIGTERM,)
) -> Iterator[None]:
    """Outside training, where there is nothing to save: a stop signal ends the process at
    once with its one line (RunInterrupted's: `where`, and how to continue `run`) and its exit
    code (143, 130). The process exits there (os._exit), so none of the interrupted work runs
    on: an exception raised into TensorFlow's tracing or Keras' building can be caught and
    retried there, and end in a traceback. What the run folder holds is intact: every file in
    it is written atomically, and --resume removes a temporary file a write left."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        name = signal.Signals(signum).name
        tell(f"{RunInterrupted(name, 128 + signum, where, run)}\n")
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        os._exit(128 + signum)

    with handled_by(stop, signals):
        yield


@contextlib.contextmanager
def handled_by(handler, signals) -> Iterator[dict]:
    """`handler` for each of `signals` that the process does not ignore, while the block runs;
    yields the previous handlers (None, one not set from Python: the default), which come back
    afterwards."""
    previous = {s: signal.getsignal(s) for s in signals}
    previous = {s: signal.SIG_DFL if h is None else h for s, h in previous.items()}
    for s in signals:
        if previous[s] is not signal.SIG_IGN:
            signal.signal(s, handler)
    try:
        yield previous
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def tell(text: str) -> None:
    """A line from a signal handler: one write(2) call, which cannot re-enter a Python stream
    that the handler interrupted."""
    with contextlib.suppress(OSError):
        os.write(2, text.encode())
