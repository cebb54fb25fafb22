"""TensorFlow's C++ start-up lines stay off stderr; one line of ours says where work runs."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

from resnet_tf import startup
from tests.helpers import REPO_ROOT
from tests.helpers.tiny_runs import child_env

# What TensorFlow 2.21 writes at start-up on a machine without a GPU (the ids and times vary).
ABSL_NOTICE = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
)
CUDART = b"I0000 00:00:1796007957.060326   30984 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used."  # noqa: E501
ONEDNN = b"I0000 00:00:1796007957.059654   30984 port.cc:153] oneDNN custom operations are on."
CUINIT = b"E0000 00:00:1796007966.804222   30984 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)"  # noqa: E501
WARNING = b"W0000 00:00:1796007966.804222   30984 some_op.cc:12] something to know"
OTHER_ERROR = b"E0000 00:00:1796007966.804222   30984 some_op.cc:12] a real problem"


def test_a_command_starts_with_nothing_from_tensorflow_on_stderr():
    """As a new user runs it: TF_CPP_MIN_LOG_LEVEL unset."""
    env = {k: v for k, v in child_env().items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "resnet_tf.models", "resnet20"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and "resnet20" in result.stdout
    for noise in ("cuInit", "cudart_stub", "oneDNN", "absl", "E0000", "I0000"):
        assert noise not in result.stderr, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize(
    "level, user_set, kept",
    [
        (2, False, [b"plain python output", OTHER_ERROR]),  # unset: our default
        (2, True, [b"plain python output", CUINIT, OTHER_ERROR]),  # as TensorFlow documents it
        (1, True, [b"plain python output", CUINIT, WARNING, OTHER_ERROR]),
        (3, True, [b"plain python output"]),
        (
            0,
            True,
            [ABSL_NOTICE, ONEDNN, CUDART, b"plain python output", CUINIT, WARNING, OTHER_ERROR],
        ),  # noqa: E501
    ],
)
def test_start_up_lines_are_kept_as_the_log_level_says(level, user_set, kept):
    lines = [ABSL_NOTICE, ONEDNN, CUDART, b"plain python output", CUINIT, WARNING, OTHER_ERROR]
    assert [line for line in lines if startup.keep_log_line(line, level, not user_set)] == kept


def test_stderr_is_filtered_at_the_file_descriptor_and_restored(capfd):
    """C++ writes to descriptor 2 directly: the filter sits there, and passes on the rest."""
    with startup.filtered_stderr(lambda line: not line.startswith(b"I0000")):
        os.write(2, CUDART + b"\n" + b"kept line\n" + ONEDNN + b"\nanother")
        os.write(2, b" line\nno newline at the end")
    os.write(2, b"\nafter\n")
    assert capfd.readouterr().err == "kept line\nanother line\nno newline at the end\nafter\n"


def test_the_device_line_without_a_gpu(monkeypatch):
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    cores = len(os.sched_getaffinity(0))
    assert startup.device_line() == f"no GPU found: training runs on the CPU ({cores} cores)"
    assert startup.device_line("evaluation").startswith("no GPU found: evaluation runs on the CPU")


def test_the_device_line_names_the_gpus(monkeypatch):
    gpus = [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(2)]
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus)
    monkeypatch.setattr(
        tf.config.experimental, "get_device_details", lambda gpu: {"device_name": "NVIDIA H200"}
    )
    assert startup.device_line() == "training runs on 2 GPUs: NVIDIA H200, NVIDIA H200"
