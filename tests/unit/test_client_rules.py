"""The client's pure helpers: paths, counts."""

from __future__ import annotations

import pytest

from tweakwise.client import render_path
from tweakwise.responses import parse_count


def test_render_path_hides_secret_parameters():
    path, shown = render_path("/task/trigger/{instance_key}/{task_guid}", instance_key="k 1", task_guid="g")
    assert path == "/task/trigger/k%201/g"
    assert shown == "/task/trigger/{instance_key}/{task_guid}"


@pytest.mark.parametrize(
    ("payload", "count"),
    [(5, 5), (5.0, 5), ("17", 17), ({"TotalProducts": 9}, 9), ({"total": "3", "unit": "items"}, 3)],
)
def test_parse_count_accepts_every_plausible_shape(payload, count):
    assert parse_count(payload) == count


@pytest.mark.parametrize("payload", [True, None, "many", {"a": 1, "b": 2}, {}, [3], 1.5])
def test_parse_count_refuses_ambiguous_answers(payload):
    with pytest.raises(ValueError):
        parse_count(payload)
