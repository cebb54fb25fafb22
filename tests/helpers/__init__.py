"""What several test modules share: fake CIFAR-10 archives and the tiny training runs."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
