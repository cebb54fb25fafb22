"""What the CPU can do, read from /proc/cpuinfo, and what a run's precision will run on."""

from __future__ import annotations

from resnet_tf.training import precision
from resnet_tf.training.hardware import compute_units, cpu_info

XEON_AMX = (
    "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
    "flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16 avx512_fp16 amx_bf16 "
    "amx_tile amx_int8\nprocessor\t: 1\nflags\t\t: fpu\n"
)
EPYC_AVX2 = "model name\t: AMD EPYC 7B13 64-Core Processor\nflags\t\t: fpu avx2 fma\n"
ARM = "Processor\t: AArch64\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_the_model_and_instruction_sets_are_read_from_the_first_processor():
    xeon = cpu_info(XEON_AMX, cap="")
    assert xeon.model == "Intel(R) Xeon(R) Platinum 8480+"
    assert xeon.isa == [
        "AVX2",
        "AVX-512",
        "AVX-512 BF16",
        "AVX-512 FP16",
        "AVX-512 VNNI",
        "AMX-BF16",
        "AMX-INT8",
    ]
    assert "no AMX" not in xeon.summary()
    epyc = cpu_info(EPYC_AVX2, cap="")
    assert epyc.isa == ["AVX2"] and epyc.summary().endswith(", AVX2, no AMX")
    assert cpu_info(ARM, cap="").isa == ["Arm BF16", "Arm I8MM"]
    unknown = cpu_info("", cap="")
    assert unknown.flags is None and "instruction sets unknown" in unknown.summary()


def test_each_precision_names_the_units_it_runs_on():
    xeon, epyc = cpu_info(XEON_AMX, cap=""), cpu_info(EPYC_AVX2, cap="")
    assert compute_units("mixed_bfloat16", xeon) == "AMX (bfloat16 tiles)"
    assert compute_units("float32", xeon) == "AVX-512"
    assert compute_units("float32", epyc) == "AVX2"
    assert "emulated" in compute_units("mixed_bfloat16", epyc)
    no_amx = cpu_info(XEON_AMX.replace("amx_bf16", "").replace("amx_int8", ""), cap="")
    assert compute_units("mixed_bfloat16", no_amx) == "AVX-512 BF16 (no AMX)"


def test_onednns_isa_cap_hides_what_it_forbids():
    """ONEDNN_MAX_CPU_ISA=AVX2 makes oneDNN act as on an AVX2 CPU: so does the description."""
    capped = cpu_info(XEON_AMX, cap="AVX2")
    assert capped.isa == ["AVX2"]
    assert "emulated" in compute_units("mixed_bfloat16", capped)
    assert cpu_info(XEON_AMX, cap="AVX512_CORE_BF16").isa[-1] == "AVX-512 VNNI"
    assert cpu_info(XEON_AMX, cap="not-a-cap").isa == cpu_info(XEON_AMX, cap="").isa


def test_a_run_states_its_precision_and_units(monkeypatch):
    monkeypatch.setattr(precision, "_on_gpu", lambda: False)
    monkeypatch.setattr(precision, "cpu_info", lambda: cpu_info(XEON_AMX, cap=""))
    line = precision.compute_line("mixed_bfloat16")
    assert line == "precision: mixed_bfloat16, computed on AMX (bfloat16 tiles)"
    monkeypatch.setattr(precision, "_on_gpu", lambda: True)
    assert precision.compute_line("float32") == "precision: float32, computed on the GPU"
