"""The models that ship with the repository, under pretrained/ (see pretrained/README.md).

predict.py and serve.py default to DEFAULT_MODEL, so both work on a fresh clone before any
training. Each model has a folder with its file and its card (card.json, README.md).
"""

from __future__ import annotations

from pathlib import Path

PRETRAINED_DIR = Path(__file__).resolve().parents[2] / "pretrained"
DEFAULT_MODEL = PRETRAINED_DIR / "fast" / "fast_int8.tflite"
