"""The one TTA/logits path: one function per level, the choices of the config schema, and the
plain loop that evaluate.py and training's test score share."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from resnet_tf.config.choices import TTA_CHOICES
from resnet_tf.data import make_eval_dataset
from resnet_tf.errors import EvaluationError
from resnet_tf.evaluation import tta, views_logits
from resnet_tf.evaluation.tta import least_confident, predict


@pytest.fixture(scope="module")
def model() -> keras.Model:
    """A tiny model that is neither mirror- nor shift-invariant."""
    keras.utils.set_random_seed(0)
    net = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten()]
        + [keras.layers.Dense(10)]
    )
    return net


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(10, 8, 8, 3)).astype(np.float32)


def test_one_function_per_choice_of_the_config_schema():
    assert tuple(tta.TTA_LEVELS) == TTA_CHOICES
    assert set(tta.TTA_METHODS) == set(TTA_CHOICES) - {"none"}
    with pytest.raises(EvaluationError, match="tta must be one of none, flip, flip_translate"):
        tta.tta_level("rotate")


def test_levels_average_the_views_in_float32_in_a_fixed_order(model, images):
    def forward(x):
        return np.asarray(model(x, training=False), np.float32)

    x = tf.constant(images)
    plain, mirrored = forward(x), forward(x[:, :, ::-1])
    np.testing.assert_array_equal(tta.logits_none(model, x), plain)
    expected_flip = np.float32(0.5) * plain + np.float32(0.5) * mirrored
    np.testing.assert_array_equal(tta.logits_flip(model, x), expected_flip)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    expected = np.zeros_like(plain)
    for weight, view in [(0.25, images), (0.25, images[:, :, ::-1])] + [
        (0.125, v)
        for offset in (0, 2)
        for moved in [padded[:, offset : offset + 8, offset : offset + 8]]
        for v in (moved, moved[:, :, ::-1])
    ]:
        expected += weight * forward(view)
    got = tta.logits_flip_translate(model, x)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("level", TTA_CHOICES)
def test_predict_reuses_the_plain_logits_and_takes_either_batch_form(model, images, level):
    labels = np.arange(len(images)) % 10
    pairs = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)
    images_only = tf.data.Dataset.from_tensor_slices(images).batch(4)
    plain, seconds = tta.predict(model, pairs)
    assert plain.shape == (10, 10) and plain.dtype == np.float32 and seconds > 0
    full, _ = tta.predict(model, images_only, level)
    reused, _ = tta.predict(model, pairs, level, plain=plain)
    np.testing.assert_array_equal(full, reused)
    if level == "none":
        np.testing.assert_array_equal(full, plain)
    else:
        assert not np.array_equal(full, plain)


def test_traced_inference_matches_eager_calls_and_traces_at_most_twice(images):
    keras.utils.set_random_seed(0)
    traced_batches = []

    class ConvBnRelu(keras.Model):
        """Conv -> BN -> ReLU, which the graph optimizer fuses; records each trace."""

        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3, padding="same")
            self.bn = keras.layers.BatchNormalization()
            self.head = keras.layers.Dense(10)

        def call(self, x, training=False):
            traced_batches.append(x.shape[0])
            features = keras.activations.relu(self.bn(self.conv(x), training=training))
            return self.head(keras.ops.mean(features, axis=(1, 2)))

    net = ConvBnRelu()
    net(images[:1])  # builds it
    net.bn.moving_mean.assign(np.linspace(-1, 1, 4).astype(np.float32))
    batches = tf.data.Dataset.from_tensor_slices(images).batch(4)  # batches of 4, 4 and 2
    eager, _ = tta.predict(net, batches)
    eager_flip, _ = tta.predict(net, batches, "flip")
    traced_batches.clear()
    forward = tta.traced_inference(net)
    np.testing.assert_allclose(tta.predict(forward, batches)[0], eager, rtol=1e-5, atol=1e-6)
    flip, _ = tta.predict(forward, batches, "flip")
    np.testing.assert_allclose(flip, eager_flip, rtol=1e-5, atol=1e-6)
    assert traced_batches == [4, None]  # the first shape, then one trace for any batch size
    with pytest.raises(ValueError, match="only runs in inference"):
        forward(images, training=True)


def test_least_confident_picks_the_lowest_top_probabilities():
    logits = np.array(
        [[5.0, 0.0], [0.1, 0.0], [0.0, 3.0], [1.0, 1.0], [2.0, 0.0]], dtype=np.float32
    )  # top probabilities: 0.99, 0.52, 0.95, 0.50, 0.88
    assert least_confident(logits, 0.4).tolist() == [1, 3]
    assert least_confident(logits, 0.5).tolist() == [1, 3, 4]  # ceil(2.5)
    assert least_confident(logits, 1.0).tolist() == [0, 1, 2, 3, 4]


def test_a_tta_fraction_gives_the_views_to_the_least_confident_images_only():
    """The chosen rows equal their full-TTA logits; the rest keep the plain ones."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(20, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=20)
    weights = rng.normal(size=(32 * 32 * 3, 10)).astype("float32") * 0.002

    def model(x, training=False):  # a linear model: moved and mirrored views change its logits
        return tf.reshape(x, (x.shape[0], -1)) @ weights

    dataset = make_eval_dataset(images, labels, batch_size=8, normalization="cifar10")
    plain, _ = predict(model, dataset)
    full, _ = predict(model, dataset, "flip_translate")
    logits, _, count = views_logits(
        model, images, labels, plain, "cifar10", 8, "flip_translate", 0.25
    )
    chosen = least_confident(plain, 0.25)
    assert count == 5 and len(chosen) == 5
    np.testing.assert_allclose(logits[chosen], full[chosen], rtol=1e-5, atol=1e-6)
    rest = np.setdiff1d(np.arange(20), chosen)
    np.testing.assert_array_equal(logits[rest], plain[rest])
    assert not np.allclose(full[rest], plain[rest])  # so the check above can fail


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_a_tta_fraction_outside_0_1_is_refused_before_anything_loads(fraction):
    from resnet_tf.evaluation import check_options

    with pytest.raises(
        EvaluationError, match=f"--tta-fraction must be in \\(0, 1\\], found {fraction}"
    ):
        check_options(500, "flip", fraction)


def test_a_tta_fraction_without_a_tta_is_refused():
    from resnet_tf.evaluation import check_options

    with pytest.raises(EvaluationError, match="--tta-fraction: .* but --tta is none, found 0.2"):
        check_options(500, "none", 0.2)
