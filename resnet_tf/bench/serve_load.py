"""--mode serve: serve.py under load from this machine, beside its raw runtime, in one sitting.

The driver starts `python serve.py` on a free local port, then drives it with a bounded async
HTTP client (aiohttp): at each --concurrency, that many clients send batch-1 :predict requests
(real test images as JSON rows) back to back for --duration seconds after a warm-up; then,
with --overload, requests arrive at --overload-factor times the best rate measured, open loop,
for that many seconds (a full queue must answer 503 at once, memory stay bounded), and a short
run at concurrency 8 checks that the server recovers at once. The raw runtime's batch-1 latency
and batch-64 throughput (`--mode infer`'s child, same file) are measured before and after.
The client shares the machine's cores with the server: docs/serving.md says how to read that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from resnet_tf.bench.load_client import closed_loop, open_loop, wait_ready
from resnet_tf.bench.peer import ROOT

ANNOUNCED = re.compile(r"on http://([\d.]+):(\d+) ")
RECOVERY_CONCURRENCY = 8
RECOVERY_SECONDS = 5.0


class ServerProcess:
    """`python serve.py --port 0 ...`, ready to answer; its memory and its exit code."""

    def __init__(self, model: str, extra: list[str], timeout_s: float = 300):
        command = [sys.executable, str(ROOT / "serve.py"), "--model", model, "--port", "0", *extra]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for line in self.process.stdout:  # the address, once the model has loaded
            if match := ANNOUNCED.search(line):
                break
        else:
            self.process.wait()
            raise RuntimeError(f"serve.py did not start (exit code {self.process.returncode})")
        # Keep reading what it prints, so that it never blocks on a full pipe.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        self.url = f"http://{match[1]}:{match[2]}"
        self.command = shlex.join(command)
        asyncio.run(wait_ready(self.url, timeout_s))

    def pids(self) -> list[int]:
        """The server and its worker processes."""
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            try:
                todo += [
                    int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                ]
            except OSError:
                continue
            found.append(pid)
        return found

    def rss_mb(self) -> float:
        """Resident memory of the server and its workers, now."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError, TypeError):
                status = Path(f"/proc/{pid}/status").read_text()
                total += int(re.search(r"VmRSS:\s+(\d+)", status)[1])
        return round(total / 1024, 1)

    def cpu_seconds(self) -> float:
        """CPU time the server and its workers have used so far."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def request_bodies(data_dir: str | None, payload: str, count: int = 256) -> list[bytes]:
    """Batch-1 :predict bodies of real CIFAR-10 test images, as a client would send them: the
    pixels as JSON numbers, or ("png") the image as a PNG file in TF Serving's {"b64": ...}."""
    import base64

    import tensorflow as tf

    from resnet_tf.evaluation import sources

    images = sources.load_images(data_dir, "test", None).images[:count]
    if payload == "png":
        files = [base64.b64encode(tf.io.encode_png(image).numpy()).decode() for image in images]
        return [json.dumps({"instances": [{"b64": file}]}).encode() for file in files]
    return [json.dumps({"instances": [image.tolist()]}).encode() for image in images]


def run_serve(args, run_child, emit) -> None:
    """The sitting: the raw runtime, each concurrency, overload and recovery, the raw runtime
    again (cli.py prints the machine first and puts it in every record)."""
    from resnet_tf.deploy import DEFAULT_MODEL

    model = os.path.abspath(args.model_path or DEFAULT_MODEL)
    levels = [int(level) for level in args.concurrency.split(",")]
    data = ["--data-dir", os.path.abspath(args.data_dir)] if args.data_dir else []
    raw_argv = ["--mode", "infer", "--format", raw_format(model), "--model-path", model]
    raw_argv += ["--calls", "500", "--batch-size", "64", "--steps", "20", "--repeats", "5", *data]
    emit({**run_child(raw_argv), "mode": "raw", "when": "before"})
    bodies = request_bodies(args.data_dir, args.payload)
    load_average = [round(x, 2) for x in os.getloadavg()]  # an idle machine shows about 0
    emit(
        {
            "mode": "payload",
            "payload": args.payload,
            "body_bytes": len(bodies[0]),
            "load": load_average,
        }
    )
    workers = ["--workers", str(args.workers)] if args.workers else []
    server = ServerProcess(model, [*workers, *shlex.split(args.serve_args or "")])
    predict = f"{server.url}/v1/models/cifar10:predict"

    def measured(record: dict, load) -> dict:
        """Run `load`; its tally's summary and the cores the server and this client used."""
        server_cpu, client_cpu, started = (
            server.cpu_seconds(),
            time.process_time(),
            time.monotonic(),
        )
        tally = asyncio.run(load)
        seconds = time.monotonic() - started
        record.update(tally.summary(seconds))
        record["server_cpu_cores"] = round((server.cpu_seconds() - server_cpu) / seconds, 2)
        record["client_cpu_cores"] = round((time.process_time() - client_cpu) / seconds, 2)
        record["server_rss_mb"] = server.rss_mb()
        return record

    best = 0.0
    try:
        for concurrency in levels:
            asyncio.run(closed_loop(predict, bodies, concurrency, min(2.0, args.duration)))
            load = closed_loop(predict, bodies, concurrency, args.duration)
            record = measured({"mode": "serve", "concurrency": concurrency}, load)
            best = max(best, record["requests_per_s"])
            emit(record)
        if args.overload > 0 and best > 0:
            rate, peak = args.overload_factor * best, [server.rss_mb()]
            load = open_loop(
                predict, bodies, rate, args.overload, lambda: peak.append(server.rss_mb())
            )
            record = measured({"mode": "overload", "offered_per_s": round(rate, 1)}, load)
            emit({**record, "server_peak_rss_mb": max(peak)})
            recovery = min(RECOVERY_SECONDS, args.duration)
            load = closed_loop(predict, bodies, RECOVERY_CONCURRENCY, recovery)
            emit(measured({"mode": "recovery", "concurrency": RECOVERY_CONCURRENCY}, load))
    finally:
        code = server.stop()
    emit({"mode": "server", "command": server.command, "sigterm_exit_code": code})
    emit({**run_child(raw_argv), "mode": "raw", "when": "after"})


def raw_format(model: str) -> str:
    """The --mode infer child's format name for a model file (its runtime and threads)."""
    path = Path(model)
    if path.is_dir():
        return "saved_model"
    return {".tflite": "litert", ".onnx": "onnx"}.get(path.suffix.lower(), "keras")


def print_serve_table(records: list[dict]) -> None:
    for r in records:
        if "error" in r:
            print(f"error: {r['error']}")
        elif r["mode"] == "raw":
            print(
                f"raw runtime ({r['when']}): batch 1 p50 {r['p50_ms']} ms, p99 {r['p99_ms']} "
                f"ms; batch {r['batch_size']}: {r['images_per_s']} images/s"
            )
        elif r["mode"] == "payload":
            print(
                f"requests: one image each, as {r['payload']} ({r['body_bytes']} bytes a "
                f"body); load average at the start {r['load']}"
            )
        elif r["mode"] == "server":
            print(f"server: {r['command']}; after SIGTERM: exit code {r['sigterm_exit_code']}")
        else:
            level = r.get("concurrency", f"{r.get('offered_per_s')}/s offered")
            print(
                f"{r['mode']:8} {level!s:>14} {r['requests_per_s']:>8} req/s  p50 {r['p50_ms']} "
                f"ms  p99 {r['p99_ms']} ms  cores: server {r['server_cpu_cores']}, client "
                f"{r['client_cpu_cores']}  {r['outcomes']}"
            )
    print("latencies of the answered (200) requests; the client shares the server's cores")
