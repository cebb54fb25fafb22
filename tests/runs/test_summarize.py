"""python summarize.py (resnet_tf.runs.summarize): the seeds table and the time-to-accuracy plot."""

import json

import pytest
import yaml

from resnet_tf.runs import summarize
from resnet_tf.runs.history import write_history
from resnet_tf.runs.plots import accuracy_axis_label


def fake_run(root, name, seed, val_accs, test, wall):
    folder = root / name
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump({"runtime": {"seed": seed}}))
    rows = [
        {
            "epoch": i + 1,
            "lr": 0.1,
            "loss": 1.0,
            "accuracy": 0.5,
            "val_loss": 1.0,
            "val_accuracy": acc,
            "epoch_seconds": 120.0,
            "images_per_s": 100.0,
        }
        for i, acc in enumerate(val_accs)
    ]
    write_history(folder / "history.csv", rows)
    metrics = {
        "status": "completed",
        "model": "fastnet",
        "epochs_completed": len(rows),
        "epochs_planned": len(rows),
        "best_val_accuracy": max(val_accs),
        "best_epoch": 1,
        "final_val_accuracy": val_accs[-1],
        "final_train_accuracy": 0.5,
        "train_seconds": 120.0 * len(rows),
        "session_wall_seconds": 120.0 * len(rows),
        "train_images_per_s": 100.0,
        "command_wall_seconds": wall,
        "test_accuracy": test,
        "test_tta": "flip",
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_table_has_a_row_per_seed_the_mean_and_std_and_the_median_and_range(tmp_path, capsys):
    folders = [
        fake_run(tmp_path, "s0", 0, [0.6, 0.9], 0.901, 300.0),
        fake_run(tmp_path, "s1", 1, [0.5, 0.88], 0.895, 330.0),
        fake_run(tmp_path, "s2", 2, [0.7, 0.91], 0.910, 360.0),
    ]
    plot = tmp_path / "plot.png"
    assert summarize.main([str(f) for f in folders] + ["--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "| s1 | 1 | 2 | 4.0 min | 5.5 min | 89.50% (flip TTA) | 50.0%, 88.0% |" in out
    assert "| **median (range)** | | | 4.0 min (4.0 min - 4.0 min) " in out
    assert "| 5.5 min (5.0 min - 6.0 min) | 90.10 % (89.50 % - 91.00 %) |" in out
    # mean +- sample std: tests 90.1, 89.5, 91.0 -> 90.20 +- 0.755; walls 5, 5.5, 6 -> +- 0.5
    assert "| **mean +- std** | | | 4.0 min +- 0.0 min | 5.5 min +- 0.5 min " in out
    assert "| 90.20 % +- 0.75 % |" in out
    assert plot.stat().st_size > 10_000
    assert summarize.load_run(folders[0]).minutes == [2.0, 4.0]


def test_a_run_without_validation_shows_its_training_accuracy(tmp_path, capsys):
    folder = fake_run(tmp_path, "all50k", 0, [float("nan")] * 2, 0.94, 3000.0)
    run = summarize.load_run(folder)
    assert not run.has_validation and run.curve == [0.5, 0.5]
    assert summarize.main([str(folder), "--plot", str(tmp_path / "p.png")]) == 0
    assert "| (no validation split; training accuracy) 50.0%, 50.0% |" in capsys.readouterr().out
    with_validation = summarize.load_run(fake_run(tmp_path, "v", 1, [0.5, 0.9], 0.9, 60.0))
    assert accuracy_axis_label([run]) == "training accuracy (stars: test)"
    assert accuracy_axis_label([with_validation]) == "validation accuracy (stars: test)"
    assert accuracy_axis_label([run, with_validation]).startswith("validation accuracy (dashed")


def test_a_folder_that_is_not_a_finished_run_is_one_line_and_exit_1(tmp_path, capsys):
    assert summarize.main([str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "metrics.json is missing" in err


def test_run_plot_draws_no_validation_line_for_a_run_without_one(tmp_path, monkeypatch):
    from resnet_tf.runs import plots

    drawn = []

    class KeptFigure(plots.Figure):  # keeps each figure drawn, to look at it
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            drawn.append(self)

    monkeypatch.setattr(plots, "Figure", KeptFigure)
    nan = float("nan")
    row = {"accuracy": 0.5, "loss": 1.0, "val_accuracy": nan, "val_loss": nan}
    plots.plot_accuracy_loss([{"epoch": 1, **row}, {"epoch": 2, **row}], tmp_path / "a.png")
    labels = [line.get_label() for ax in drawn[0].axes for line in ax.get_lines()]
    assert labels == ["train", "train"] and not drawn[0].axes[0].texts
    assert (tmp_path / "a.png").stat().st_size > 0

    with_val = [
        {"epoch": e, **row, "val_accuracy": a, "val_loss": 1.0} for e, a in ((1, 0.6), (2, 0.7))
    ]
    plots.plot_accuracy_loss(with_val, tmp_path / "b.png")
    assert [line.get_label() for line in drawn[1].axes[0].get_lines()] == ["train", "validation"]
    assert drawn[1].axes[0].texts[0].get_text() == "best 70.00% (epoch 2)"


def broken(folder, kind):
    history, metrics = folder / "history.csv", folder / "metrics.json"
    lines = history.read_text().splitlines()
    if kind == "cell":
        lines[1] = lines[1].replace("0.6", "abc", 1)
    elif kind == "extra_column":
        lines[2] += ",9"
    elif kind == "no_epoch":
        lines = [line.split(",", 1)[1] for line in lines]
    elif kind == "list":
        metrics.write_text("[1, 2]")
    elif kind == "wrong_type":
        text = metrics.read_text().replace('"test_accuracy": 0.901', '"test_accuracy": "high"')
        metrics.write_text(text)
    history.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "kind, message",
    [
        ("cell", "history.csv: line 2, column val_accuracy: expected a number, found 'abc'"),
        ("extra_column", "history.csv: line 3 has 9 cells, the header 8"),
        (
            "no_epoch",
            "history.csv: no 'epoch' column in the header; expected epoch,lr,loss,"
            "accuracy,val_loss,val_accuracy,epoch_seconds,images_per_s",
        ),
        ("list", "metrics.json: expected a JSON object of the run's metrics, found a list"),
        ("wrong_type", "metrics.json: test_accuracy: expected a number, found 'high'"),
    ],
)
def test_broken_run_records_are_one_line(kind, message, tmp_path, capsys):
    folder = fake_run(tmp_path, "s0", 0, [0.6, 0.9], 0.901, 300.0)
    broken(folder, kind)
    assert summarize.main([str(folder)]) == 1
    out = capsys.readouterr()
    assert out.out == "" and out.err == f"error: {folder / message}\n"


def test_a_plot_path_that_cannot_be_written_is_one_line_before_the_table(tmp_path, capsys):
    folder = fake_run(tmp_path, "s0", 0, [0.6, 0.9], 0.901, 300.0)
    (tmp_path / "a_file").write_text("")
    cases = [
        (tmp_path, "is a folder; expected an image file such as runs.png"),
        (tmp_path / "a_file" / "p.png", f"{tmp_path / 'a_file'}: cannot create the output folder"),
        (tmp_path / "runs.txt", "expected a file name ending in .png (or "),
    ]
    for plot, message in cases:
        assert summarize.main([str(folder), "--plot", str(plot)]) == 1
        out = capsys.readouterr()
        assert out.out == "" and out.err.count("\n") == 1, out
        assert out.err.startswith(f"error: --plot {plot}: ") and message in out.err
    assert summarize.main([str(folder), "--plot", str(tmp_path / "new" / "runs.svg")]) == 0
    assert (tmp_path / "new" / "runs.svg").stat().st_size > 1000
