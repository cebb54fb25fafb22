"""The precision a config asks for, against the hardware the run finds."""

import pytest

from resnet_tf.errors import TrainingError
from resnet_tf.training import precision

X86_WITH_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
X86_WITHOUT = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n"
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
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    assert precision.precision_warning("mixed_bfloat16") is None
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: None)  # cannot tell: say nothing
    assert precision.precision_warning("mixed_bfloat16") is None


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
