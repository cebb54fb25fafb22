"""What the CPU under a run can do: its model, cores and the instruction sets that set its speed.

The machines this runs on differ by 2-3x: AVX2 only, AVX-512 with bfloat16 dot products, or
AMX matrix units (bfloat16 and int8 tiles), which oneDNN and XNNPACK use by themselves. A run
says at its start which of them its precision will use, and every benchmark record names them,
so a figure is never read against the wrong machine. `ONEDNN_MAX_CPU_ISA` caps what oneDNN may
use (to emulate an older CPU); the cap is honoured here too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# /proc/cpuinfo flag -> how it is named to a user, in the order a summary lists them.
ISA_FLAGS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_bf16": "AVX-512 BF16",
    "avx512_fp16": "AVX-512 FP16",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
    "bf16": "Arm BF16",  # aarch64's Features line
    "i8mm": "Arm I8MM",
}
# The families of ONEDNN_MAX_CPU_ISA's values, lowest first, and the flags each one allows.
_ISA_CAPS = (
    ("avx2", {"avx2"}),
    ("avx512_core", {"avx2", "avx512f"}),
    ("avx512_core_vnni", {"avx2", "avx512f", "avx512_vnni"}),
    ("avx512_core_bf16", {"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}),
    ("avx512_core_fp16", {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16"}),
    ("avx10_1_512", {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16"}),
)
ONEDNN_CAP_ENV = "ONEDNN_MAX_CPU_ISA"


@dataclass(frozen=True)
class CpuInfo:
    model: str  # "Intel(R) Xeon(R) Processor", or "unknown"
    cores: int  # the cores this process may run on
    # The ISA_FLAGS keys present; None where the CPU's flags cannot be read (not Linux).
    flags: frozenset[str] | None = None

    def has(self, flag: str) -> bool:
        return self.flags is not None and flag in self.flags

    @property
    def isa(self) -> list[str]:
        """The instruction sets that matter here, by their usual names."""
        return [name for flag, name in ISA_FLAGS.items() if self.has(flag)]

    def summary(self) -> str:
        """e.g. 'Intel(R) Xeon(R) Processor, 2 cores, AVX2, AVX-512, AVX-512 BF16, no AMX'."""
        isa = self.isa or (["no AVX2"] if self.flags is not None else ["instruction sets unknown"])
        amx = [] if self.has("amx_bf16") or self.has("amx_int8") else ["no AMX"]
        return ", ".join([self.model, f"{self.cores} cores", *isa, *amx])


def cpu_info(cpuinfo: str | None = None, cap: str | None = None) -> CpuInfo:
    """The CPU as /proc/cpuinfo describes it (`cpuinfo` for tests), with the flags oneDNN's
    ISA cap (`cap`, default $ONEDNN_MAX_CPU_ISA) would hide removed."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    model, flags = "unknown", None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model name", "Processor") and model == "unknown":
            model = " ".join(value.split()) or model
        elif key in ("flags", "Features") and flags is None:
            flags = set(value.split()) & set(ISA_FLAGS)
    cap = os.environ.get(ONEDNN_CAP_ENV, "") if cap is None else cap
    allowed = dict(_ISA_CAPS).get(cap.strip().lower())
    if flags is not None and allowed is not None:  # AMX and all above the cap are hidden
        flags &= allowed | {"bf16", "i8mm"}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return CpuInfo(model, cores or 1, None if flags is None else frozenset(flags))


def compute_units(policy: str, cpu: CpuInfo) -> str:
    """What a CPU run in `policy` computes its convolutions and matmuls on, in a few words:
    'AVX-512', 'AMX (bfloat16 tiles)', 'AVX-512 BF16 (no AMX)', ..."""
    if policy == "mixed_bfloat16":
        if cpu.has("amx_bf16"):
            return "AMX (bfloat16 tiles)"
        if cpu.has("avx512_bf16"):
            return "AVX-512 BF16 (no AMX)"
        if cpu.has("bf16"):
            return "Arm BF16"
        return "float32 units, bfloat16 emulated (no bfloat16 instructions)"
    return "AVX-512" if cpu.has("avx512f") else "AVX2" if cpu.has("avx2") else "the CPU"
