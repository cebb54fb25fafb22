"""The machine a measurement ran on: every record carries it, so no figure is read against
another CPU (speed differs by 2-3x between the machines this project runs on)."""

from __future__ import annotations

import os
from importlib import metadata

from resnet_tf.training.hardware import ONEDNN_CAP_ENV, cpu_info

LIBRARIES = ("tensorflow", "keras", "numpy", "onnxruntime", "ai-edge-litert", "torch")


def machine_fields() -> dict:
    """CPU model, cores, the instruction sets that matter (AVX2, AVX-512, BF16, VNNI, AMX),
    oneDNN's ISA cap if one is set, and the versions of the libraries installed here."""
    cpu = cpu_info()
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {
        "cpu": cpu.model,
        "cores": cpu.cores,
        "isa": cpu.isa,
        "onednn_max_cpu_isa": os.environ.get(ONEDNN_CAP_ENV),
        "versions": versions,
    }


def machine_line(fields: dict) -> str:
    """One line naming the machine and the software, printed above every table."""
    isa = ", ".join(fields["isa"]) or "no AVX2"
    amx = "" if any(name.startswith("AMX") for name in fields["isa"]) else ", no AMX"
    cap = (
        f", oneDNN capped at {fields['onednn_max_cpu_isa']}" if fields["onednn_max_cpu_isa"] else ""
    )
    software = ", ".join(f"{name} {version}" for name, version in fields["versions"].items())
    return f"machine: {fields['cpu']}, {fields['cores']} cores, {isa}{amx}{cap}; {software}"
