"""serve.py's options: a value that cannot work, a model that does not load or a port that is
taken is one error line and exit code 1, before anything is served (main() in this process)."""

from __future__ import annotations

import os
import socket

import pytest

import serve as serve_cli
from resnet_tf.deploy import DEFAULT_MODEL
from resnet_tf.deploy.serve import ServeSettings
from tests.helpers import assert_one_error_line


@pytest.mark.parametrize(
    "options, named",
    [
        (["--max-batch-size", "64", "--max-queue", "8"], "--max-queue"),
        (["--workers", "0"], "--workers"),
        (["--batch-timeout-ms", "-1"], "--batch-timeout-ms"),
        (["--max-body-mb", "0"], "--max-body-mb"),
        (["--request-timeout", "0"], "--request-timeout"),
        (["--port", "70000"], "--port"),
        (["--name", "a/b"], "--name"),
    ],
)
def test_settings_that_cannot_work_are_one_error_line(options, named, tmp_path, capsys):
    # A model that cannot load: were the option let through, the error would name the model
    # (and no server would start in this process).
    absent = ["--model", str(tmp_path / "absent.tflite"), "--port", "0"]
    code = serve_cli.main([*absent, *options])
    assert_one_error_line(code, capsys.readouterr().err, named)


def test_a_model_that_does_not_load_is_one_error_line(tmp_path, capsys):
    missing = tmp_path / "absent.tflite"
    code = serve_cli.main(["--model", str(missing), "--port", "0"])
    assert_one_error_line(code, capsys.readouterr().err, str(missing))
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ  # nothing left behind in this process


def test_a_taken_port_is_one_error_line(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = serve_cli.main(["--port", str(port)])
    assert_one_error_line(code, capsys.readouterr().err, f"--port {port}", "in use")


def test_defaults_serve_the_pretrained_model_on_this_machine_only():
    args = serve_cli.parse_args([])
    assert args.model == str(DEFAULT_MODEL) and DEFAULT_MODEL.is_file()
    assert (args.host, args.port, args.name) == ("127.0.0.1", 8501, "cifar10")
    settings = ServeSettings(model=args.model, workers=None)
    assert settings.worker_count == len(os.sched_getaffinity(0))
    assert settings.runtime_threads == 1 or settings.worker_count == 1
    two = ServeSettings(model=args.model, workers=2, max_queue=1024, max_batch_size=64)
    assert two.worker_queue == 512  # --max-queue is shared out among the workers


def test_the_server_inherits_the_saved_model_allow_list(tmp_path, capsys):
    """A SavedModel that reads and writes files is refused as predict.py refuses it, before
    anything is served; --trust-saved-model is the same opt-in."""
    import tensorflow as tf

    from tests.deploy.test_hostile_models import FileWriter

    secret, target = tmp_path / "secret.txt", tmp_path / "written.txt"
    secret.write_text("private")
    module = FileWriter(str(secret), str(target))
    crafted = tmp_path / "crafted_saved_model"
    tf.saved_model.save(module, str(crafted), signatures={"serving_default": module.__call__})
    code = serve_cli.main(["--model", str(crafted), "--port", "0"])
    assert_one_error_line(code, capsys.readouterr().err, "refused", "--trust-saved-model")
    assert not target.exists()
    assert serve_cli.parse_args(["--trust-saved-model"]).trust_saved_model
