"""The run folder's atomic writes: file modes, and a failed write leaves nothing behind."""

import errno
import os
import stat

import pytest

from resnet_tf.errors import DiskFullError
from resnet_tf.runs import files
from resnet_tf.runs.history import write_history
from resnet_tf.runs.records import write_metrics
from resnet_tf.runs.run_dir import RunPaths


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode_of(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_run_folder_text_files_get_the_mode_a_plain_file_gets(umask, tmp_path):
    from resnet_tf.config import load_config
    from resnet_tf.runs.records import RunMetrics, write_config

    paths = RunPaths(tmp_path)
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    write_config(paths, load_config(None, []), "python train.py")
    write_history(paths.history, [])
    metrics = RunMetrics("completed", "resnet20", 1, 1, 0.5, 1, 0.5, 0.6, 9.0, 9.0, 1.0)
    write_metrics(paths, metrics)
    assert mode_of(plain) == 0o666 & ~umask
    for path in (paths.config, paths.history, paths.metrics):
        assert mode_of(path) == mode_of(plain), path.name


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_write_on_a_full_disk_keeps_the_old_file_and_leaves_no_temporary_file(
    code, tmp_path, monkeypatch
):
    target = tmp_path / "history.csv"
    target.write_text("old\n")
    saved = tmp_path / "last.keras"
    saved.write_text("old model")

    def write_half_then_fail(tmp):
        tmp.write_text("half a mod")
        raise OSError(code, os.strerror(code))

    with pytest.raises(DiskFullError) as raised:
        files.atomic_save(saved, write_half_then_fail)
    assert str(raised.value) == f"{saved}: cannot write: {os.strerror(code).lower()}"

    def full_disk(fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(files.os, "fsync", full_disk)
    with pytest.raises(DiskFullError) as raised:
        files.atomic_write_text(target, "new\n")
    assert raised.value.path == target
    assert target.read_text() == "old\n" and saved.read_text() == "old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv", "last.keras"]


def test_other_write_errors_pass_through_unchanged(tmp_path):
    def refuse(tmp):
        raise PermissionError(errno.EACCES, "Permission denied")

    with pytest.raises(PermissionError):
        files.atomic_save(tmp_path / "x.keras", refuse)
    assert list(tmp_path.iterdir()) == []
