"""docs/configuration.md is the schema's own description, and describes every key."""

from __future__ import annotations

import dataclasses
import typing

from resnet_tf.config import schema
from resnet_tf.config.reference import field_comments, reference_markdown
from tests.helpers import REPO_ROOT

REFERENCE = REPO_ROOT / "docs" / "configuration.md"


def leaf_keys(cls: type = schema.Config, prefix: str = "") -> list[str]:
    hints = typing.get_type_hints(cls)
    keys = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            keys += leaf_keys(hints[f.name], f"{prefix}{f.name}.")
        else:
            keys.append(prefix + f.name)
    return keys


def test_the_reference_file_is_what_the_schema_writes():
    """Regenerate with: python -m resnet_tf.config.reference > docs/configuration.md"""
    assert REFERENCE.read_text() == reference_markdown()


def test_every_key_has_a_row_with_its_default_and_a_meaning():
    text = reference_markdown()
    rows = {
        line.split("|")[1].strip(" `"): line for line in text.splitlines() if line.startswith("| `")
    }
    assert sorted(rows) == sorted(leaf_keys())
    for key, line in rows.items():
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        assert all(cells), f"{key}: an empty cell in {line}"
    assert "| `train.optimizer.beta_2` | `0.999` | a number in [0, 1] |" in text
    assert "one of `sgd`, `adam`, `adamw`, `muon`" in text
    assert "`runtime.seed` | `0` | an integer in [0, 2,147,483,647]" in text


def test_comments_are_read_per_field_and_shared_by_a_group():
    comments = field_comments(schema.OptimizerConfig)
    assert comments["lr"].startswith("The peak learning rate")
    assert comments["beta_2"] == comments["beta_1"] != comments["weight_decay"]
    assert comments["muon_ns_steps"] == comments["muon_lr"]
