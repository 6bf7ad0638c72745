"""The webhook's compiled contract (tweakwise/webhook_contract.py) is the models' contract: generated from
`catalog.WebhookBody` by scripts/webhook_contract.py, and accepting, refusing and queueing every body as
the models do (decision 0014)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from scripts import webhook_contract as generator
from tweakwise import contract_rules, webhook_contract
from tweakwise.catalog import WebhookBody
from tweakwise.contract_rules import error_list
from tweakwise.queueing import queue_entries
from tweakwise.webhook import BODY


def _resolved(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _resolved(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_resolved(v) for v in value)
    if isinstance(value, generator._Name):
        return getattr(contract_rules, value.name)
    return value


def test_the_compiled_contract_is_the_generated_one():
    assert _resolved(generator.schema()) == webhook_contract.SCHEMA, (
        "run: python -m scripts.webhook_contract --write"
    )


def test_a_validator_outside_the_rules_module_stops_the_generator(monkeypatch):
    monkeypatch.setattr(generator, "VALIDATORS", {})
    with pytest.raises(SystemExit, match=r"WebhookBody\._unique_ids' is not in tweakwise\.contract_rules"):
        generator.schema()


def _outcome(validate) -> tuple[str, Any]:
    try:
        events = validate()
    except ValidationError as exc:
        return "refused", error_list(exc)
    return "queued", queue_entries(events)


def _same(payload: Any) -> tuple[str, Any]:
    by_models = _outcome(lambda: WebhookBody.model_validate(payload).events)
    compiled = _outcome(lambda: BODY.validate_python(payload)["events"])
    assert compiled == _model_wording(by_models)
    return compiled


def _model_wording(outcome: tuple[str, Any]) -> tuple[str, Any]:
    """The one wording that differs: where an object belongs, a model's error names its Python class."""
    if outcome[0] == "queued":
        return outcome
    return "refused", json.loads(re.sub(r" or instance of [A-Za-z]+", "", json.dumps(outcome[1])))


ITEM = {"id": "SKU-1", "name": "Shoe", "price": 10, "stock": 3}
CASES = [
    {"events": [{"id": "e1", "type": "item.upsert", "item": ITEM}]},
    {"events": [{"id": "e1", "type": "item.upsert", "item": {**ITEM, "brand": None, "stock": 3.0}}]},
    {"events": [{"id": "e1", "type": "item.patch", "item": {"id": "SKU-1", "stock": 0}}]},
    {"events": [{"id": "e1", "type": "item.patch", "item": {"id": "SKU-1"}}]},
    {"events": [{"id": "e1", "type": "item.patch", "item": {"id": "SKU-1", "name": None}}]},
    {"events": [{"id": "e1", "type": "item.delete", "itemId": "..", "occurredAt": "2026-11-28T10:00:00Z"}]},
    {"events": [{"id": "e1", "type": "category.upsert", "category": {"id": 5, "name": "Shoes"}}]},
    {"events": [{"id": "e1", "type": "category.delete", "categoryId": "shoes"}] * 2},
    {"events": [{"id": "e1", "type": "item.upsert", "item": {**ITEM, "price": float("nan")}}]},
    {"events": [{"id": "e1", "type": "item.upsert", "item": {**ITEM, "price": 10**400}}]},
    {"events": [{"id": "e1", "type": "item.upsert", "item": {**ITEM, "price": 1.5e12, "stock": 2.5}}]},
    {"events": [{"id": "e1", "type": "item.upsert", "item": {**ITEM, "attributes": {"a\n": ["\x00"]}}}]},
    {"events": [{"id": "e1", "type": "item.upsert", "item": "SKU-1", "extra": 1}]},
    {"events": [{"id": "e1", "type": "nope"}, {"type": "item.delete"}]},
    {"events": [{"id": "e1", "type": "item.delete", "itemId": "a", "occurredAt": "2026-11-28"}]},
    {"events": [{"id": "e1", "type": "item.delete", "itemId": "a", "occurredAt": "2999-01-01T00:00:00Z"}]},
    {"events": []},
    {"events": "x"},
    [],
]


@pytest.mark.parametrize("payload", CASES, ids=range(len(CASES)))
def test_documented_cases_are_queued_or_refused_alike(payload):
    _same(payload)


def test_queued_bodies_are_byte_for_byte_the_models():
    event = {"id": "é1", "type": "item.upsert", "occurredAt": "2026-11-28T12:00:00.5+02:00", "item": ITEM}
    state, [entry] = _same({"events": [event]})
    assert state == "queued"
    assert entry["MessageBody"] == (
        '{"id":"é1","occurredAt":"2026-11-28T12:00:00.500000+02:00","type":"item.upsert",'
        '"item":{"id":"SKU-1","name":"Shoe","price":10,"stock":3}}'
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _mostly(valid: st.SearchStrategy, odd: st.SearchStrategy) -> st.SearchStrategy:
    """`valid` 19 times in 20, else `odd`: many bodies are queued, many refused for one field."""
    return st.sampled_from(range(20)).flatmap(lambda n: odd if n == 19 else valid)


odd_texts = st.one_of(st.text(max_size=12), st.sampled_from(["", ".", "..", "x" * 101, "a\u0085", "\ufffe"]))
texts = _mostly(
    st.text(st.characters(max_codepoint=0x2FF, exclude_categories=["Cc"]), min_size=1, max_size=12), odd_texts
)
odd_numbers = st.one_of(st.floats(), st.integers(), st.sampled_from([-1, 2.5, 10**13, 2**31, float("inf")]))
numbers = _mostly(st.one_of(st.integers(0, 1000), st.sampled_from([3.0, 10.5, 10**12])), odd_numbers)
refs = st.one_of(texts, numbers)
dates = _mostly(
    st.sampled_from(["2026-11-28T10:00:00Z", "2026-11-28 10:00:00.5+01:00"]),
    st.sampled_from(["2026-11-28", "2999-01-01T00:00:00Z"]),
)


def _maybe(valid: st.SearchStrategy) -> st.SearchStrategy:
    return _mostly(valid, json_values)


_item_optional = {
    "brand": _maybe(texts),
    "groupCode": _maybe(texts),
    "url": _maybe(texts),
    "image": st.none(),
    "categories": _maybe(st.lists(refs, max_size=3)),
    "attributes": _maybe(st.dictionaries(texts, st.one_of(texts, st.lists(texts, max_size=2)), max_size=2)),
}
_required = {"name": _maybe(texts), "price": _maybe(numbers), "stock": _maybe(numbers)}
items = st.fixed_dictionaries({"id": _maybe(texts), **_required}, optional=_item_optional)
patches = st.fixed_dictionaries({"id": _maybe(texts)}, optional={**_required, **_item_optional})
categories = st.fixed_dictionaries(
    {"id": _maybe(refs), "name": _maybe(texts)},
    optional={"rank": _maybe(numbers), "parents": _maybe(st.lists(refs, max_size=2)), "url": texts},
)
_shapes = {
    "item.upsert": ("item", items),
    "item.patch": ("item", patches),
    "item.delete": ("itemId", refs),
    "category.upsert": ("category", categories),
    "category.delete": ("categoryId", refs),
}
_event_ids = _mostly(st.sampled_from(["e1", "e2", "e3", "e4", "e5"]), st.sampled_from(["", "\x00"]))
events = st.one_of(
    *(
        st.fixed_dictionaries(
            {"id": _event_ids, "type": st.just(kind), field: shape},
            optional={"occurredAt": _maybe(dates)},
        )
        for kind, (field, shape) in _shapes.items()
    ),
    st.fixed_dictionaries(  # any field with any type
        {"id": _event_ids, "type": st.sampled_from([*_shapes, "x"])},
        optional={"unknown": json_values, **{name: json_values for name, _ in _shapes.values()}},
    ),
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=st.one_of(
        st.fixed_dictionaries(
            {"events": st.lists(events, min_size=1, max_size=3, unique_by=lambda event: event["id"])}
        ),
        st.fixed_dictionaries({"events": st.lists(events, max_size=4)}),
        json_values,
    )
)
def test_any_body_is_queued_or_refused_alike(payload):
    _same(payload)
