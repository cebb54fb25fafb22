"""Deployment: export, quantization and pruning of trained models (empty for now)."""
