"""Processes: one listening socket, N worker processes serving it, and a clean drain on SIGTERM.

`run` binds the socket (a taken port is one error line), checks that the model loads, then runs
one worker in this process or, with several, starts them (spawned: each imports TensorFlow and
loads the model afresh) and supervises them: a worker that dies is replaced; SIGTERM or Ctrl-C
is passed on and each worker drains. A draining worker reports itself unready at once
(/v1/health/ready 503, model state UNLOADING), goes on serving for --shutdown-delay seconds so a
load balancer can stop sending, then stops accepting, finishes the requests in flight (for at
most --shutdown-timeout seconds) and exits 0.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import uvicorn

from resnet_tf.deploy.serve import metrics
from resnet_tf.deploy.serve.settings import KEEP_ALIVE_S, MAX_HEADER_BYTES, ServeSettings
from resnet_tf.errors import DeployError

STARTUP_FAILURE = 3  # a worker's exit code when its model or app could not start
logger = logging.getLogger("resnet_tf.serve")


class DrainingServer(uvicorn.Server):
    """uvicorn's server, whose first SIGTERM or SIGINT starts a drain (a second SIGINT forces
    the exit), and which exits 0 after a drain rather than re-raising the signal."""

    def __init__(self, config: uvicorn.Config, worker, parent_pid: int | None = None):
        super().__init__(config)
        self.worker, self.parent_pid = worker, parent_pid
        self.exit_at: float | None = None

    def handle_exit(self, sig: int, frame) -> None:
        if self.worker.draining:
            if sig == signal.SIGINT:
                self.force_exit = self.should_exit = True
            return
        self.drain()

    def drain(self) -> None:
        self.worker.start_draining()
        self.exit_at = time.monotonic() + self.worker.settings.shutdown_delay_s

    async def on_tick(self, counter: int) -> bool:
        if (
            self.parent_pid is not None
            and os.getppid() != self.parent_pid
            and not self.worker.draining
        ):
            self.drain()  # the supervisor is gone: do not serve on as an orphan
        if self.exit_at is not None and time.monotonic() >= self.exit_at:
            self.should_exit = True
        return await super().on_tick(counter)


def uvicorn_config(app, settings: ServeSettings) -> uvicorn.Config:
    from resnet_tf.deploy.serve.protocol import HeaderDeadlineProtocol

    return uvicorn.Config(
        app,
        http=HeaderDeadlineProtocol.with_timeout(settings.request_timeout_s),
        lifespan="on",
        loop="asyncio",
        access_log=settings.access_log,
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        server_header=False,
    )


def load_worker(settings: ServeSettings):
    """The model and app of one worker, its runtime on its share of the cores."""
    from resnet_tf.deploy.runtimes import load_classifier
    from resnet_tf.deploy.serve.app import Worker

    threads = settings.runtime_threads
    try:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already started (the single-worker process): keep it
        pass
    classifier = load_classifier(
        settings.model,
        settings.normalization,
        threads=threads,
        trust_saved_model=settings.trust_saved_model,
    )
    return Worker(settings, classifier)


def serve_worker(settings: ServeSettings, sock: socket.socket, parent_pid: int | None) -> None:
    """Run one worker on the bound socket until it has drained."""
    from resnet_tf.deploy.serve.app import create_app

    worker = load_worker(settings)
    server = DrainingServer(uvicorn_config(create_app(worker), settings), worker, parent_pid)
    server.run(sockets=[sock])


def worker_process(settings: ServeSettings, sock: socket.socket, parent_pid: int) -> None:
    """A spawned worker's entry point: its errors are one line and exit code 3."""
    from resnet_tf.errors import ResnetTfError

    try:
        serve_worker(settings, sock, parent_pid)
    except ResnetTfError as error:
        print(f"error: worker {os.getpid()}: {error}", file=sys.stderr, flush=True)
        sys.exit(STARTUP_FAILURE)
    # Drained: exit without tearing TensorFlow down, which takes seconds and frees nothing.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def bind(settings: ServeSettings) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            settings.host, settings.port, type=socket.SOCK_STREAM
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as error:
        raise DeployError(
            f"--host {settings.host} --port {settings.port}: cannot listen there "
            f"({error.strerror or error})"
        ) from None
    sock.set_inheritable(True)
    return sock


def run(settings: ServeSettings) -> int:
    """Serve until SIGTERM or Ctrl-C; 0 after a clean drain. Bad settings, an unusable model or
    a taken port raise a DeployError before anything is served."""
    settings.check()
    folder = Path(tempfile.mkdtemp(prefix="resnet_tf_serve_metrics_"))
    # Before prometheus_client is imported, here and in the workers.
    previous = metrics.use_folder(folder)
    try:
        sock = bind(settings)
        with sock:
            worker = load_worker(settings) if settings.worker_count == 1 else None
            if worker is None:  # check the model once here, so a bad one is one line, not N
                load_worker(settings)
            host, port = sock.getsockname()[:2]
            print(
                f"serving {settings.model} as model '{settings.name}' on http://{host}:{port} "
                f"({settings.worker_count} worker{'s' * (settings.worker_count > 1)}, "
                f"{settings.runtime_threads} runtime thread{'s' * (settings.runtime_threads > 1)} "
                "each); SIGTERM or Ctrl-C drains and stops",
                flush=True,
            )
            if worker is not None:
                from resnet_tf.deploy.serve.app import create_app

                DrainingServer(uvicorn_config(create_app(worker), settings), worker).run([sock])
                return 0
            return supervise(settings, sock)
    finally:
        metrics.use_folder(previous)
        shutil.rmtree(folder, ignore_errors=True)


def supervise(settings: ServeSettings, sock: socket.socket) -> int:
    """Start the workers, replace any that dies, pass SIGTERM/SIGINT on, wait for their drain."""
    spawn = multiprocessing.get_context("spawn")
    stop: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, frame: stop.append(number))

    def start() -> multiprocessing.Process:
        process = spawn.Process(
            target=worker_process, args=(settings, sock, os.getpid()), name="resnet_tf-serve"
        )
        process.start()
        return process

    processes = [start() for _ in range(settings.worker_count)]
    while not stop:
        time.sleep(0.2)
        for index, process in enumerate(processes):
            if process.is_alive() or stop:
                continue
            metrics.forget_process(process.pid)
            if process.exitcode == STARTUP_FAILURE:
                print(f"error: worker {process.pid} could not start; stopping", file=sys.stderr)
                stop.append(signal.SIGTERM)
                break
            print(
                f"worker {process.pid} exited ({process.exitcode}); starting another",
                file=sys.stderr,
            )
            processes[index] = start()
    for process in processes:
        if process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + settings.shutdown_delay_s + settings.shutdown_timeout_s + 10
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
        metrics.forget_process(process.pid)
    return 0 if all(p.exitcode == 0 for p in processes) else 1
