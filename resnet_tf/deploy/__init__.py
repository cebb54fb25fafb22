"""Deployment: a trained checkpoint -> files that run without resnet_tf, and predictions.

formats.py    the export formats: names, default file names, runtimes, tolerances
serving.py    the model that is exported: uint8 pixels in, normalization inside, probabilities out
export.py     export_checkpoint: export, check against the checkpoint, then put in place
output.py     where an export goes: what --overwrite may replace, the temporary work folder
agreement.py  how closely an export reproduces its checkpoint, and when that is too little
runtimes.py   load_classifier: any model file (checkpoint or export) behind one call, with the
              checks every command and the server share (file limits, probabilities)
saved_model_ops.py  a SavedModel's ops against an image classifier's allow-list, before loading
predict.py    predict_images: image files -> their top classes, for predict.py
scoring.py    evaluate_exported: evaluate.py's report of an exported model
pretrained.py DEFAULT_MODEL: the model that ships in pretrained/, predict.py's and serve.py's
serve/        the model server behind serve.py (TF Serving's REST API); its own front door,
              `from resnet_tf.deploy import serve`, as it needs the server packages
"""

from resnet_tf.deploy.export import (
    DEFAULT_CALIBRATION_IMAGES,
    DEFAULT_CHECK_IMAGES,
    ExportResult,
    export_checkpoint,
)
from resnet_tf.deploy.formats import EXPORT_FORMATS, is_exported_model
from resnet_tf.deploy.predict import (
    DEFAULT_PREDICT_BATCH,
    DEFAULT_TOP_K,
    ImagePrediction,
    format_prediction,
    predict_images,
    predictions_to_json,
)
from resnet_tf.deploy.pretrained import DEFAULT_MODEL
from resnet_tf.deploy.runtimes import Classifier, load_classifier, load_exported
from resnet_tf.deploy.scoring import evaluate_exported

__all__ = [
    "DEFAULT_CALIBRATION_IMAGES",
    "DEFAULT_CHECK_IMAGES",
    "DEFAULT_MODEL",
    "DEFAULT_PREDICT_BATCH",
    "DEFAULT_TOP_K",
    "EXPORT_FORMATS",
    "Classifier",
    "ExportResult",
    "ImagePrediction",
    "evaluate_exported",
    "export_checkpoint",
    "format_prediction",
    "is_exported_model",
    "load_classifier",
    "load_exported",
    "predict_images",
    "predictions_to_json",
]
