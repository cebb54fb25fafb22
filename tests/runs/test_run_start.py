"""What a new run checks and records before it trains: its name, its numbers, its data path."""

import re
import shutil

import pytest
import yaml

from resnet_tf.errors import RunDirError
from resnet_tf.runs.run_dir import create_run_dir, default_run_name
from tests.helpers import REPO_ROOT, assert_one_error_line

QUICK = str(REPO_ROOT / "configs" / "quick.yaml")


@pytest.fixture
def no_data_loading(monkeypatch):
    """Make loading the data set fail the test: what must be refused is refused before it."""
    from resnet_tf import data

    def must_not_load(path=None):
        raise AssertionError(f"the data set was loaded ({path})")

    monkeypatch.setattr(data, "load_cifar10", must_not_load)


@pytest.fixture
def no_training(monkeypatch):
    """A run that stops once set up, its folder made and its data loaded (no model, no epochs)."""
    from resnet_tf.experiment import run

    loaded = []

    def record_instead_of_training(config, paths, arrays, *args):
        loaded.append((paths.root, len(arrays[0][0])))
        return {}

    monkeypatch.setattr(run, "_run", record_instead_of_training)
    return loaded


def train_main(args, capsys) -> tuple[int, str]:
    import train as train_cli  # late: it imports TensorFlow

    code = train_cli.main(args)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "config_file", ["my config.yaml", "über (v2).yaml", "a+b=c@d.yaml", "--.yaml"]
)
def test_a_default_run_name_is_valid_whatever_the_config_file_is_called(tmp_path, config_file):
    name = default_run_name(f"configs/{config_file}", "resnet20")
    assert re.fullmatch(r"[A-Za-z0-9._-]+-resnet20-\d{8}-\d{6}", name), name
    assert create_run_dir(tmp_path, name, explicit_name=False).root.name == name
    if config_file == "my config.yaml":
        assert name.startswith("my-config-resnet20-")


@pytest.mark.parametrize(
    "how", [["--name", "my run"], ["--set", "output.name=../up"], ["--name", "a/b"]]
)
def test_a_bad_run_name_is_refused_before_the_data_loads(tmp_path, capsys, no_data_loading, how):
    args = ["--config", QUICK, "--data-dir", str(tmp_path), "--output-dir", str(tmp_path), *how]
    code, err = train_main(args, capsys)
    assert_one_error_line(code, err, "run name", "expected letters, digits and . _ - + = @ only")
    assert list(tmp_path.iterdir()) == []
    # --dry-run checks it too: it shows the config a real run would take.
    code, err = train_main([*args, "--dry-run"], capsys)
    assert_one_error_line(code, err, "run name")


def test_check_run_name_refuses_what_create_run_dir_refuses(tmp_path):
    from resnet_tf.runs.run_dir import check_run_name

    for bad in ("my run", "..", "a/b", "", "x" * 200 + " "):
        with pytest.raises(RunDirError):
            check_run_name(bad)
        with pytest.raises(RunDirError):
            create_run_dir(tmp_path, bad, explicit_name=True)
    check_run_name("fast-s0_v1.2+x=y@z")


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.optimizer.lr=nan", "train.optimizer.lr"),
        ("train.schedule.div_factor=inf", "train.schedule.div_factor"),
        ("train.distill.temperature=.nan", "train.distill.temperature"),
    ],
)
def test_nan_or_inf_fails_before_a_run_folder_or_the_data(
    tmp_path, capsys, no_data_loading, override, key
):
    args = ["--config", QUICK, "--output-dir", str(tmp_path), "--set", override]
    code, err = train_main(args, capsys)
    assert_one_error_line(code, err, QUICK, key, "expected a finite number")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("how", ["--data-dir", "--set data.path=", "config file"])
def test_a_relative_data_path_is_recorded_absolute_so_resume_works_from_elsewhere(
    tiny_cifar_archive, tmp_path, monkeypatch, capsys, no_training, how
):
    from resnet_tf import experiment
    from resnet_tf.runs.records import read_config
    from resnet_tf.runs.run_dir import open_run_dir

    workdir, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    (workdir / "data").mkdir(parents=True)
    elsewhere.mkdir()
    shutil.copy(tiny_cifar_archive, workdir / "data" / "cifar-10-python.tar.gz")
    monkeypatch.chdir(workdir)
    config = QUICK
    if how == "--data-dir":
        extra = ["--data-dir", "data"]
    elif how == "--set data.path=":
        extra = ["--set", "data.path=data"]
    else:
        config = "quick-here.yaml"
        text = (REPO_ROOT / "configs" / "quick.yaml").read_text()
        (workdir / config).write_text(text.replace("data:\n", "data:\n  path: data\n", 1))
        extra = []
    args = ["--config", config, *extra, "--output-dir", str(tmp_path / "out"), "--name", "rel"]
    code, err = train_main([*args, "--set", "data.subset=200", "--set", "data.val_size=40"], capsys)
    assert code == 0, err
    run = tmp_path / "out" / "rel"
    recorded = yaml.safe_load((run / "config.yaml").read_text())["data"]["path"]
    assert recorded == str(workdir / "data")

    monkeypatch.chdir(elsewhere)
    assert read_config(open_run_dir(run)).data.path == str(workdir / "data")
    experiment.resume(str(run))  # loads the data from the recorded path, then (here) stops
    assert no_training == [(run, 200), (run, 200)]
