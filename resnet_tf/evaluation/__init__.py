"""Evaluation of a trained model: metrics, test-time augmentation, reports."""
