"""Structured pruning: the narrower model computes what the original does with the kept channels,
its size is that of the narrower architecture, and prune.py's file fine-tunes like any model."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest

import evaluate as evaluate_cli
import prune as prune_cli
import train as train_cli
from resnet_tf import experiment
from resnet_tf.compress import prune_model
from resnet_tf.compress.channels import channel_groups
from resnet_tf.compress.prune import channels_to_keep
from resnet_tf.errors import CompressError
from resnet_tf.models import MODEL_NAMES, ResNet, build_model
from resnet_tf.models.summary import count_macs, count_trainable_params
from resnet_tf.training import ImageClassificationTask
from tests.helpers.tiny_runs import QUICK_MODEL, tiny_run_args

IMAGES = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")

# One of each family and block, small: option-A CIFAR ResNet (resnet20), Bottleneck with
# projection shortcuts, biased convs with the tutorial stem, FastNet.
FAMILIES = [
    ("resnet20", {"width_multiplier": 0.5}),
    ("bottleneck", {"block_type": "bottleneck", "stage_blocks": (1, 2), "stage_widths": (8, 16)}),
    (
        "biased",
        {
            "stage_blocks": (1, 1),
            "stage_widths": (8, 16),
            "stem": "seed",
            "shortcut": "conv",
            "conv_bias": True,
        },
    ),
    ("fastnet", {"width_multiplier": 0.25}),
]


def trained_looking(name: str, options: dict) -> keras.Model:
    """A model whose BN statistics and shifts are not their initial 0/1, so that a wrong slice
    of any of them changes the outputs."""
    if name in MODEL_NAMES:
        model = build_model(name, **options)
    else:
        model = ResNet(**options, name=name)
        model.build((None, 32, 32, 3))
    rng = np.random.default_rng(1)
    for weight in model.weights:
        leaf = weight.path.rsplit("/", 1)[-1]
        if leaf == "moving_variance":
            weight.assign(rng.uniform(0.5, 2.0, weight.shape))
        elif leaf in ("moving_mean", "beta", "gamma", "bias"):
            weight.assign(rng.normal(size=weight.shape))
    return model


def outputs(model: keras.Model) -> np.ndarray:
    return np.asarray(model(IMAGES, training=False))


@pytest.mark.parametrize("name, options", FAMILIES)
def test_amount_zero_gives_the_same_outputs_exactly(name, options):
    model = trained_looking(name, options)
    pruned, cuts = prune_model(model, [0.0])
    assert all(len(cut.kept) == cut.width for cut in cuts)
    assert pruned is not model and pruned.count_params() == model.count_params()
    np.testing.assert_array_equal(outputs(pruned), outputs(model))


@pytest.mark.parametrize("name, options", FAMILIES)
def test_removing_dead_channels_leaves_the_outputs_unchanged(name, options):
    """A channel whose filter is zero and whose norm outputs zero (beta 0, mean 0) adds nothing
    downstream; pruning exactly those channels of stage 2 keeps every output."""
    model = trained_looking(name, options)
    groups = [group for group in channel_groups(model) if group.stage == 1]
    width = groups[0].width
    assert all(group.width == width for group in groups)
    dead = {}
    for index, group in enumerate(groups):
        channel = (3 * index + 1) % width
        kernel = np.asarray(group.producer.kernel).copy()
        kernel[..., channel] = 0.0
        group.producer.kernel.assign(kernel)
        for weight in group.norm.weights:
            if weight.path.rsplit("/", 1)[-1] in ("beta", "moving_mean"):
                value = np.asarray(weight).copy()
                value[channel] = 0.0
                weight.assign(value)
        if group.producer.use_bias:
            bias = np.asarray(group.producer.bias).copy()
            bias[channel] = 0.0
            group.producer.bias.assign(bias)
        dead[group.name] = channel
    stages = 1 + max(group.stage for group in channel_groups(model))
    amounts = [0.0] * stages
    amounts[1] = 1 / width
    pruned, cuts = prune_model(model, amounts)
    for cut in cuts:
        if cut.name in dead:
            assert cut.kept == tuple(c for c in range(cut.width) if c != dead[cut.name])
        else:
            assert len(cut.kept) == cut.width
    expected = outputs(model)  # float32 sums in another order: equal up to rounding
    np.testing.assert_allclose(outputs(pruned), expected, atol=1e-6 * np.abs(expected).max())


def test_the_smallest_filters_go_first_and_ties_keep_the_earlier_channel():
    scores = np.array([5.0, 1.0, 3.0, 1.0, 9.0, 0.5, 3.0, 2.0])
    np.testing.assert_array_equal(channels_to_keep(scores, 0.5), [0, 2, 4, 6])
    np.testing.assert_array_equal(channels_to_keep(scores, 0.25), [0, 1, 2, 4, 6, 7])
    np.testing.assert_array_equal(channels_to_keep(scores, 0.0), np.arange(8))
    assert list(channels_to_keep(scores, 0.99)) == [4]  # never a layer without channels


def resnet20_size(stage_widths, inner_widths) -> tuple[int, int]:
    """Trainable parameters and MACs of a CIFAR ResNet-20 (option-A shortcuts), by hand."""
    params = 3 * 3 * 3 * stage_widths[0] + 2 * stage_widths[0]
    macs = 32 * 32 * 27 * stage_widths[0]
    channels, size = stage_widths[0], 32
    for stage, (width, inner) in enumerate(zip(stage_widths, inner_widths)):
        for block in range(3):
            if stage > 0 and block == 0:
                size //= 2
            params += 9 * channels * inner + 2 * inner + 9 * inner * width + 2 * width
            macs += size * size * 9 * (channels * inner + inner * width)
            channels = width
    return params + channels * 10 + 10, macs + channels * 10


def fastnet_size(widths, mid_widths) -> tuple[int, int]:
    """Trainable parameters and MACs of a FastNet (2x2 whitening to 24 channels, 31x31), by hand."""
    params, macs = 24, 31 * 31 * 2 * 2 * 3 * 24  # the whitening kernel is fixed: only its bias
    channels, size = 24, 31
    for width, mid in zip(widths, mid_widths):
        params += 9 * channels * mid + mid + 9 * mid * width + width  # convs, BN shifts
        macs += size * size * 9 * channels * mid
        size //= 2
        macs += size * size * 9 * mid * width
        channels = width
    return params + channels * 10, macs + channels * 10


def test_parameter_and_mac_counts_are_those_of_the_narrower_architecture():
    model = trained_looking("resnet20", {"width_multiplier": 0.5})  # stages 8, 16, 32
    assert (count_trainable_params(model), count_macs(model)) == resnet20_size(
        [8, 16, 32], [8, 16, 32]
    )
    pruned, _ = prune_model(model, [0.0, 0.5, 0.25])
    assert (count_trainable_params(pruned), count_macs(pruned)) == resnet20_size(
        [8, 16, 32], [8, 8, 24]
    )
    fast = trained_looking("fastnet", {"width_multiplier": 0.25})  # groups 16, 64, 64
    assert (count_trainable_params(fast), count_macs(fast)) == fastnet_size(
        [16, 64, 64], [16, 64, 64]
    )
    pruned, _ = prune_model(fast, [0.5])
    assert (count_trainable_params(pruned), count_macs(pruned)) == fastnet_size(
        [8, 32, 32], [8, 32, 32]
    )


def test_other_models_and_bad_amounts_are_refused():
    functional = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Dense(10)])
    with pytest.raises(CompressError, match="ResNet and FastNet"):
        prune_model(functional, [0.3])
    with pytest.raises(CompressError, match="one per stage"):
        prune_model(build_model("resnet20", width_multiplier=0.25), [0.1, 0.2])


def test_prune_py_writes_a_model_that_reloads_and_evaluates(
    finished_run, tiny_cifar_archive, tmp_path, capsys
):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    assert prune_cli.main(["--checkpoint", str(run), "--amount", "0.5"]) == 0
    pruned = run / "pruned" / "l1-0.50.keras"
    record = json.loads(pruned.with_suffix(".json").read_text())
    assert record["params"]["after"] < record["params"]["before"]
    assert record["macs_per_image"]["after"] < 0.55 * record["macs_per_image"]["before"]
    assert "MACs/image" in capsys.readouterr().out

    # A fresh load computes what prune_model computed in memory.
    original = keras.models.load_model(run / "checkpoints" / "best.keras")
    expected, _ = prune_model(original, [0.5])
    np.testing.assert_array_equal(outputs(keras.models.load_model(pruned)), outputs(expected))

    # evaluate.py finds the run (normalization, data) and reports beside the file.
    assert evaluate_cli.main(["--checkpoint", str(pruned), "--batch-size", "40"]) == 0
    report = json.loads((run / "pruned" / "eval-l1-0.50" / "report.json").read_text())
    assert report["images"] == 40

    # An existing output is refused, a bad amount is one line.
    for args, reason in [
        (["--amount", "0.5"], "exists"),
        (["--amount", "1.5"], "< 1"),
        (["--amount", "half"], "expected a fraction"),
        (["--amount", "0.1,0.2"], "one per stage (3"),
    ]:
        assert prune_cli.main(["--checkpoint", str(run), *args]) == 1
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and reason in error[0], (args, error)


def test_the_record_beside_the_output_is_checked_like_it_and_no_input_is_pruned_onto(
    finished_run, tmp_path, capsys
):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    kept = {p: p.read_bytes() for p in (run / "metrics.json", run / "checkpoints" / "last.keras")}

    def prune(*args) -> tuple[int, list[str]]:
        code = prune_cli.main([str(a) for a in args])
        return code, capsys.readouterr().err.strip().splitlines()

    code, err = prune("--checkpoint", run, "--amount", "0.3", "--output", run / "metrics.keras")
    assert code == 1 and err == [
        f"error: {run / 'metrics.json'}: exists (prune.py writes its record beside the .keras); "
        "choose another --output or pass --overwrite"
    ]
    for output in (run / "metrics.keras", run / "checkpoints" / "last.keras"):
        code, err = prune("--checkpoint", run, "--amount", "0.3", "--output", output, "--overwrite")
        assert code == 1 and len(err) == 1, err
        assert err[0].startswith(f"error: {output}: --overwrite replaces only a model prune.py ")
    assert {p: p.read_bytes() for p in kept} == kept and not (run / "metrics.keras").exists()

    # A pruned model pruned again gets a name of its own, never its own name.
    first = run / "pruned" / "l1-0.30.keras"
    assert prune("--checkpoint", run, "--amount", "0.3")[0] == 0
    assert prune("--checkpoint", first, "--amount", "0.3")[0] == 0
    assert (run / "pruned" / "l1-0.30-l1-0.30.keras").is_file()
    code, err = prune("--checkpoint", first, "--amount", "0.3", "--output", first, "--overwrite")
    assert code == 1 and err == [
        f"error: {first}: is the checkpoint being pruned; choose another --output"
    ]
    # What prune.py wrote, it may replace; an amount is named as given, never rounded up.
    assert prune("--checkpoint", run, "--amount", "0.3", "--overwrite")[0] == 0
    assert prune("--checkpoint", run, "--amount", "0,0.25,0.999")[0] == 0
    assert sorted(p.name for p in (run / "pruned").iterdir()) == [
        "l1-0.00-0.25-0.999.json",
        "l1-0.00-0.25-0.999.keras",
        "l1-0.30-l1-0.30.json",
        "l1-0.30-l1-0.30.keras",
        "l1-0.30.json",
        "l1-0.30.keras",
    ]


def test_a_pruned_model_fine_tunes_through_train_py(tiny_cifar_archive, tmp_path):
    """model.init_from: the run starts from the file's architecture and weights (here a pruned
    quarter-width FastNet, quick to train); model.reinitialize: the same architecture afresh."""
    narrow, _ = prune_model(build_model("fastnet_relu", width_multiplier=0.25), [0.5])
    pruned = tmp_path / "pruned.keras"
    narrow.save(pruned)
    sets = [*QUICK_MODEL, f"model.init_from={pruned}"]
    start = ImageClassificationTask(experiment.resolve_config(None, sets)).build_model()
    for a, b in zip(start.weights, narrow.weights, strict=True):
        np.testing.assert_array_equal(a, b)

    out = tmp_path / "runs"
    assert train_cli.main(tiny_run_args(tiny_cifar_archive, out, "fine-tune", 1, sets)) == 0
    tuned = keras.models.load_model(out / "fine-tune" / "checkpoints" / "last.keras")
    assert tuned.count_params() == narrow.count_params()
    assert f"init_from: {pruned}" in (out / "fine-tune" / "config.yaml").read_text()

    config = experiment.resolve_config(None, [*sets, "model.reinitialize=true"])
    scratch = ImageClassificationTask(config).build_model()
    assert [w.shape for w in scratch.weights] == [w.shape for w in narrow.weights]
    kernel = scratch.get_layer("group2").conv2.kernel
    assert not np.allclose(kernel, narrow.get_layer("group2").conv2.kernel, atol=0.01)


@pytest.mark.parametrize(
    "extra, reason",
    [
        (["model.name=resnet20"], "holds a 'fastnet_relu' model, but model.name is 'resnet20'"),
        (["model.reinitialize=true", "model.init_from=null"], "model.init_from is null"),
    ],
)
def test_init_from_mismatches_are_one_line(
    extra, reason, finished_run, tiny_cifar_archive, tmp_path, capsys
):
    small = tmp_path / "small.keras"
    build_model("fastnet_relu", width_multiplier=0.25).save(small)
    sets = [*QUICK_MODEL, f"model.init_from={small}", *extra]
    args = tiny_run_args(tiny_cifar_archive, tmp_path / "runs", "mismatch", extra=sets)
    assert train_cli.main(args) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and reason in error[0], error
    assert not (tmp_path / "runs" / "mismatch").exists()


def test_init_from_with_another_class_count_is_one_line(tiny_cifar_archive, tmp_path, capsys):
    hundred = tmp_path / "hundred.keras"
    build_model("fastnet_relu", num_classes=100, width_multiplier=0.25).save(hundred)
    sets = [*QUICK_MODEL, f"model.init_from={hundred}"]
    args = tiny_run_args(tiny_cifar_archive, tmp_path / "runs", "hundred", extra=sets)
    assert train_cli.main(args) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "model.init_from" in error and "found 100" in error
