"""Performance measurement: training, input pipeline, end-to-end fit, inference, the peak.

    python -m resnet_tf.bench --model resnet18 --batch-size 128 --mode train
    python -m resnet_tf.bench --mode all --data-dir ../shared/datasets --json
    python -m resnet_tf.bench --mode compare --peer-python /tmp/torchenv/bin/python --rounds 3
    python -m resnet_tf.bench --mode infer --checkpoint outputs/RUN --data-dir ../shared/datasets
    python -m resnet_tf.bench --mode profile --model resnet18 --batch-size 128 --steps 2
    python -m resnet_tf.bench --mode serve --data-dir ../shared/datasets --overload 60

Every measurement runs in a fresh process (so the TensorFlow settings that only apply at import,
such as oneDNN, can differ, and each peak RSS is its own), repeats a timed block of steps after a
warm-up, and reports the median. The machine is shared and noisy: compare variants interleaved,
in one sitting (`--mode compare` does that), and quote medians and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from resnet_tf.bench.infer import DEFAULT_BATCH, measure_infer, print_infer_table, run_infer
from resnet_tf.bench.machine import machine_fields, machine_line
from resnet_tf.bench.measure import measure
from resnet_tf.bench.peer import ROOT, run_peer, timing_args
from resnet_tf.bench.profile import add_peak_shares, measure_profile, print_profile_table

MODES = ("train", "pipeline", "e2e", "eval", "matmul")


def run_child(argv: list[str], env: dict | None = None) -> dict:
    """One measurement in a fresh process; its last stdout line is the JSON record."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    if "matmul" in argv:
        # Set on some machines here for old OpenBLAS builds; they slow a current numpy's BLAS,
        # which would understate the peak. Only this measurement runs without them.
        environment.pop("OPENBLAS_CORETYPE", None)
        environment.pop("OPENBLAS_L2_SIZE", None)
    out = subprocess.run(
        [sys.executable, "-m", "resnet_tf.bench", "--child", *argv],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": tail, "argv": argv}
    return json.loads(out.stdout.strip().splitlines()[-1])


def is_bfloat16(record: dict) -> bool:
    """Ours under mixed_bfloat16, or the peer under bfloat16 autocast."""
    precision = record.get("mixed_precision", record.get("precision"))
    return precision in ("mixed_bfloat16", "bfloat16")


def precision_peak(matmul: dict, record: dict) -> float | None:
    """The peak (`--mode matmul`: the faster of a matmul and a 3x3 convolution) of the record's own
    precision."""
    return matmul.get("bfloat16_gflop_per_s" if is_bfloat16(record) else "gflop_per_s")


def print_table(records: list[dict], matmul: dict) -> None:
    """One row per record; a share of the peak of the record's own precision."""
    header = (
        f"{'mode':9} {'model / variant':34} {'batch':>5} {'img/s':>8} {'GFLOP/s':>8} "
        f"{'% peak':>7} {'RSS MB':>7} {'of it framework':>15}"
    )
    print(header)
    print("-" * len(header))
    for r in records:
        if "error" in r:
            print(f"error: {r['error']}")
            continue
        gflops = r.get("gflop_per_s")
        peak = precision_peak(matmul, r)
        share = f"{gflops / peak:7.0%}" if gflops and peak else f"{'':7}"
        variant = r.get("variant", r.get("model", ""))
        if r["mode"] == "matmul":
            variant = f"float32 peak; bfloat16 {r.get('bfloat16_gflop_per_s')}"
        print(
            f"{r['mode']:9} {variant:34} {r.get('batch_size', ''):>5} "
            f"{r.get('images_per_s', ''):>8} {gflops if gflops else '':>8} {share} "
            f"{r.get('peak_rss_mb', ''):>7} {r.get('framework_rss_mb', ''):>15}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mode", default="train", choices=[*MODES, "all", "compare", "infer", "profile", "serve"]
    )
    parser.add_argument("--model", default="resnet18")
    parser.add_argument(
        "--batch-size", type=int, help=f"default 128; {DEFAULT_BATCH} for infer's throughput"
    )
    parser.add_argument(
        "--config", help="YAML config for the training settings (default: the built-in defaults)"
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--data-dir", help="CIFAR-10 archive or folder (pipeline, e2e)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--matmul-size", type=int, default=4096, help="n of the n x n matmul")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--output", help="also write the records to this JSON file")
    parser.add_argument("--peer-python", help="python of a venv with torch (compare, infer)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (compare, infer)")
    infer = parser.add_argument_group("--mode infer: each export format of one trained model")
    infer.add_argument("--checkpoint", help="run folder or .keras checkpoint (required)")
    infer.add_argument(
        "--export-dir",
        help="reuse the exported files here (default names), export the missing ones into it "
        "(default: a temporary folder, removed after)",
    )
    infer.add_argument(
        "--formats",
        default="keras,saved_model,litert,litert_fp16,litert_int8,onnx,onnx_int8",
        help="comma list; keras is the checkpoint itself, as a reference",
    )
    infer.add_argument(
        "--calls", type=int, default=200, help="timed batch-1 calls per format (>= 200 for p99)"
    )
    infer.add_argument(
        "--normalization", help="for a .keras outside a run folder: cifar10, imagenet or none"
    )
    serve = parser.add_argument_group("--mode serve: serve.py under load (serve_load.py)")
    serve.add_argument(
        "--model-path",
        help="the model to serve (default: the pretrained INT8 model); infer's child: its file",
    )
    serve.add_argument("--concurrency", default="1,8,64,256", help="comma list of client counts")
    serve.add_argument("--duration", type=float, default=10.0, help="seconds per concurrency")
    serve.add_argument("--overload", type=float, default=0.0, help="seconds of overload (0: none)")
    serve.add_argument(
        "--overload-factor", type=float, default=4.0, help="overload rate / best rate measured"
    )
    serve.add_argument(
        "--payload",
        choices=["json", "png"],
        default="json",
        help='each image as JSON numbers (default) or a PNG file in {"b64": ...}',
    )
    serve.add_argument("--workers", type=int, help="serve.py --workers (default: its own)")
    serve.add_argument("--serve-args", help='more serve.py options, e.g. "--batch-timeout-ms 1"')
    parser.add_argument("--format", help=argparse.SUPPRESS)  # the child's one format
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batch_size is None:
        args.batch_size = DEFAULT_BATCH if args.mode == "infer" else 128
    if args.mode == "infer" and not args.child:
        if not args.checkpoint:
            parser.error("--mode infer needs --checkpoint (a run folder or .keras file)")
        if args.calls < 1 or args.rounds < 1:
            parser.error("--calls and --rounds must be at least 1")

    if args.child:
        from resnet_tf.errors import ResnetTfError

        try:
            by_mode = {"infer": measure_infer, "profile": measure_profile}
            print(json.dumps(by_mode.get(args.mode, measure)(args)))
        except ResnetTfError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0

    common = [
        "--model",
        args.model,
        "--batch-size",
        str(args.batch_size),
        *timing_args(args),
        *(["--config", args.config] if args.config else []),
        *(["--data-dir", args.data_dir] if args.data_dir else []),
        *[a for s in args.overrides for a in ("--set", s)],
    ]
    records: list[dict] = []
    machine = machine_fields()
    if not args.json:
        print(machine_line(machine), flush=True)

    def emit(record: dict) -> None:
        record = {**record, "machine": machine}
        records.append(record)
        if args.json:
            print(json.dumps(record), flush=True)

    if args.mode == "infer":
        from resnet_tf.errors import ResnetTfError

        try:
            run_infer(args, run_child, emit)
        except (ResnetTfError, argparse.ArgumentTypeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    elif args.mode == "serve":
        from resnet_tf.bench.serve_load import run_serve

        try:
            run_serve(args, run_child, emit)
        except RuntimeError as exc:  # the server did not start
            print(f"error: {exc}", file=sys.stderr)
            return 1
    elif args.mode == "compare":
        if not args.peer_python:
            parser.error("--mode compare needs --peer-python (a venv with torch)")
        emit(run_child(["--mode", "matmul", "--matmul-size", str(args.matmul_size)]))
        for round_index in range(args.rounds):
            for mode in ("train", "eval"):
                batch = args.batch_size if mode == "train" else 512
                ours = run_child(["--mode", mode, *common, "--batch-size", str(batch)])
                emit({**ours, "variant": f"resnet_tf {args.model}", "round": round_index})
                # The peer in the precision ours ran in: float32, or bfloat16 autocast.
                for channels_last in (False, True):
                    peer = run_peer(
                        args.peer_python, mode, batch, channels_last, args, is_bfloat16(ours)
                    )
                    emit({**peer, "variant": peer.get("model", "peer"), "round": round_index})
    elif args.mode == "profile":
        matmul = run_child(["--mode", "matmul", "--matmul-size", str(args.matmul_size)])
        emit(matmul)
        profile = run_child(["--mode", "profile", *common], env={"ONEDNN_VERBOSE": "1"})
        if "error" not in profile:
            profile = add_peak_shares(profile, precision_peak(matmul, profile))
        emit(profile)
    else:
        modes = [m for m in MODES if m != "matmul"] if args.mode == "all" else [args.mode]
        for mode in (["matmul"] if args.mode == "all" else []) + modes:
            emit(run_child(["--mode", mode, *common, "--matmul-size", str(args.matmul_size)]))

    if not args.json and args.mode == "infer":
        print_infer_table(records)
    elif not args.json and args.mode == "serve":
        from resnet_tf.bench.serve_load import print_serve_table

        print_serve_table(records)
    elif not args.json and args.mode == "profile" and "error" not in records[-1]:
        print_profile_table(records[-1])
    elif not args.json:
        matmul = next((r for r in records if r.get("mode") == "matmul"), {})
        print_table(records, matmul)
    if args.output:
        Path(args.output).write_text(json.dumps(records, indent=2) + "\n")
    return 0 if all("error" not in r for r in records) else 1
