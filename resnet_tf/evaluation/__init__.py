"""Evaluation of a trained model: metrics, test-time augmentation, reports."""

# TEMPORARY until the evaluation room lands: the training's final test score.
from resnet_tf.evaluation.evaluate import evaluate_saved_model as _evaluate_saved_model  # noqa


def score_checkpoint(path, images, labels, *, normalization, tta, batch_size):
    from resnet_tf.data import make_eval_dataset

    dataset = make_eval_dataset(images, labels, batch_size=batch_size, normalization=normalization)
    return _evaluate_saved_model(path, dataset.map(lambda x, y: x), labels, tta=tta)
