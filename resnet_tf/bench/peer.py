"""The PyTorch peer (shared/peers/pytorch_resnet18.py, in its own venv), measured as ours is."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEER = ROOT.parent / "shared" / "peers" / "pytorch_resnet18.py"
AUTOCAST = "torch.autocast('cpu', dtype=torch.bfloat16)"


def timing_args(args: argparse.Namespace) -> list[str]:
    """The warm-up/steps/repeats flags, which ours and the peer's command lines share."""
    return [
        "--steps",
        str(args.steps),
        "--repeats",
        str(args.repeats),
        "--warmup",
        str(args.warmup),
    ]


def run_peer(
    python: str,
    mode: str,
    batch_size: int,
    channels_last: bool,
    args: argparse.Namespace,
    bfloat16: bool = False,
) -> dict:
    """One peer run; `bfloat16` runs it under torch.autocast(bfloat16), PyTorch's CPU mixed
    precision, to compare with ours under mixed_bfloat16."""
    command = [
        python,
        str(PEER),
        "--mode",
        mode,
        "--batch-size",
        str(batch_size),
        *timing_args(args),
    ]
    if channels_last:
        command.append("--channels-last")
    # torch is imported first so that its own footprint is known (framework_rss_mb, as ours);
    # the peak is read as peak_rss_mb reads ours.
    script = (
        "import contextlib, runpy, sys, torch\n"
        "def rss():\n"
        "    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM:'))"
        ".split()[1]) / 1024\n"
        "sys.argv = sys.argv[1:]\n"
        "base = rss()\n"
        f"with {AUTOCAST if bfloat16 else 'contextlib.nullcontext()'}:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "print('RSS', rss(), base)\n"
    )
    out = subprocess.run([command[0], "-c", script, *command[1:]], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1], "peer": True}
    lines = out.stdout.strip().splitlines()
    record = json.loads(next(line for line in lines if line.startswith("{")))
    peak, framework = (float(value) for value in lines[-1].split()[1:3])
    record["peak_rss_mb"] = round(peak, 1)
    record["framework_rss_mb"] = round(framework, 1)
    record["model"] = record.pop("peer") + ("-bf16-autocast" if bfloat16 else "")
    record["precision"] = "bfloat16" if bfloat16 else "float32"
    return record
