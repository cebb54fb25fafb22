"""The precision a config asks for, against the hardware the run finds."""

import pytest

from resnet_tf.errors import TrainingError
from resnet_tf.training import hardware, precision

X86_WITH_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
X86_WITHOUT = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"
X86_WITH_AMX = "processor\t: 0\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_int8 amx_tile\n"
ARM_WITH_BF16 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_cpu_bfloat16_support_is_read_from_the_cpu_flags():
    assert precision.cpu_has_bfloat16(X86_WITH_BF16) is True
    assert precision.cpu_has_bfloat16(X86_WITHOUT) is False
    assert precision.cpu_has_bfloat16(ARM_WITH_BF16) is True
    assert precision.cpu_has_bfloat16("no flags here\n") is None


def test_bfloat16_on_a_cpu_without_it_gets_a_warning_that_names_the_fix(monkeypatch):
    monkeypatch.setattr(precision, "_on_gpu", lambda: False)
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: False)
    warning = precision.precision_warning("mixed_bfloat16")
    assert "mixed_bfloat16" in warning and "runtime.mixed_precision=float32" in warning
    assert precision.precision_warning("float32") is None
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: None)  # cannot tell: say nothing
    assert precision.precision_warning("mixed_bfloat16") is None


def _cpu(monkeypatch, cpuinfo: str, speedup: float):
    monkeypatch.setattr(precision, "_on_gpu", lambda: False)
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    monkeypatch.setattr(precision, "cpu_info", lambda: hardware.cpu_info(cpuinfo, cap=""))
    monkeypatch.setattr(precision, "bfloat16_matmul_speedup", lambda: speedup)


def test_bfloat16_instructions_without_amx_are_timed_and_a_slow_bfloat16_is_warned_of(
    monkeypatch,
):
    _cpu(monkeypatch, X86_WITH_BF16, speedup=0.63)
    warning = precision.precision_warning("mixed_bfloat16")
    assert "0.63x" in warning and "runtime.mixed_precision=float32" in warning
    _cpu(monkeypatch, X86_WITH_BF16, speedup=1.8)  # Zen 4's kind of bfloat16: no warning
    assert precision.precision_warning("mixed_bfloat16") is None


def test_amx_is_not_timed(monkeypatch):
    _cpu(monkeypatch, X86_WITH_AMX, speedup=0.5)
    monkeypatch.setattr(precision, "bfloat16_matmul_speedup", lambda: pytest.fail("timed"))
    assert precision.precision_warning("mixed_bfloat16") is None


def test_the_matmul_probe_measures_a_ratio():
    speedup = precision.bfloat16_matmul_speedup(size=256, repeats=2)
    assert 0.05 < speedup < 20


def test_a_gpu_gets_no_bfloat16_warning(monkeypatch):
    monkeypatch.setattr(precision, "_on_gpu", lambda: True)
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: False)
    assert precision.precision_warning("mixed_bfloat16") is None


def test_float16_is_refused_without_a_gpu_and_allowed_with_one(monkeypatch):
    monkeypatch.setattr(precision, "_on_gpu", lambda: False)
    with pytest.raises(TrainingError, match="mixed_float16 needs a GPU"):
        precision.check_precision("mixed_float16")
    precision.check_precision("mixed_bfloat16")
    precision.check_precision("float32")
    monkeypatch.setattr(precision, "_on_gpu", lambda: True)
    precision.check_precision("mixed_float16")


def test_auto_is_bfloat16_only_where_the_hardware_computes_it_faster(monkeypatch):
    for policy in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert precision.resolve_precision(policy) == policy
    _cpu(monkeypatch, X86_WITH_BF16, speedup=0.63)  # an Intel Xeon without AMX
    assert precision.resolve_precision("auto") == "float32"
    assert "no faster than float32 on this CPU (0.63x)" in precision.bfloat16_is_faster()[1]
    _cpu(monkeypatch, X86_WITH_BF16, speedup=1.8)  # Zen 4
    assert precision.resolve_precision("auto") == "mixed_bfloat16"
    _cpu(monkeypatch, X86_WITH_AMX, speedup=0.5)  # AMX: not timed
    monkeypatch.setattr(precision, "bfloat16_matmul_speedup", lambda: pytest.fail("timed"))
    assert precision.resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: False)
    assert precision.resolve_precision("auto") == "float32"
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: None)  # cannot tell: float32
    assert precision.resolve_precision("auto") == "float32"


def test_auto_on_a_gpu_follows_its_bfloat16_tensor_cores(monkeypatch):
    monkeypatch.setattr(precision, "_on_gpu", lambda: True)
    monkeypatch.setattr(precision, "_gpu_has_fast_bfloat16", lambda: True)
    assert precision.resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(precision, "_gpu_has_fast_bfloat16", lambda: False)  # a T4, a V100
    assert precision.resolve_precision("auto") == "float32"
