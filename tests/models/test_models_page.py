"""docs/models.md's table is what the models count: parameters and MACs of every model."""

from __future__ import annotations

import re

import pytest

from resnet_tf.config.choices import MODEL_NAMES
from resnet_tf.models import build_model
from resnet_tf.models.summary import count_macs, count_trainable_params
from tests.helpers import REPO_ROOT

ROW = re.compile(
    r"^\| `(\w+)`( at `width_multiplier: ([\d.]+)`)? \|[^|]*\| ([\d,]+) \| ([\d,]+) M \|$"
)


def table_rows() -> list[tuple[str, float, int, int]]:
    rows = []
    for line in (REPO_ROOT / "docs" / "models.md").read_text().splitlines():
        if match := ROW.match(line):
            name, _, width, params, macs = match.groups()
            rows.append(
                (
                    name,
                    float(width or 1.0),
                    int(params.replace(",", "")),
                    int(macs.replace(",", "")),
                )
            )
    return rows


def test_the_table_lists_every_model():
    assert {name for name, width, _, _ in table_rows() if width == 1.0} == set(MODEL_NAMES)


@pytest.mark.parametrize("name, width, params, macs", table_rows(), ids=lambda v: str(v))
def test_each_row_is_what_the_model_counts(name, width, params, macs):
    model = build_model(name, 10, width_multiplier=width)
    assert count_trainable_params(model) == params
    assert round(count_macs(model) / 1e6) == macs
