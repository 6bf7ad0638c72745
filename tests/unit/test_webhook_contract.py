"""docs/catalog-webhook.openapi.yaml and the code say the same thing."""

from __future__ import annotations

import functools
import json

import pytest
import yaml
from openapi_spec_validator import validate

from conftest import ROOT, load_event
from tweakwise.catalog import Category, Item, ItemDelete, ItemPatchFields, WebhookBody

SPEC = yaml.safe_load((ROOT / "docs" / "catalog-webhook.openapi.yaml").read_text())
SCHEMAS = SPEC["components"]["schemas"]


def test_the_document_is_valid_openapi():
    validate(SPEC)


def _flat(schema: dict) -> dict:
    """A schema with its allOf parts and $refs merged into one dict."""
    if "$ref" in schema:
        return _flat(SCHEMAS[schema["$ref"].rsplit("/", 1)[1]])
    merged = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema.get("allOf", []):
        merged.update(_flat(part))
    return merged


def _limits(model) -> dict[str, tuple]:
    schema = model.model_json_schema()
    found = {}
    for name, prop in schema["properties"].items():
        options = prop.get("anyOf", [prop])
        found[name] = tuple(
            sorted((k, v) for o in options for k, v in o.items() if k.startswith(("max", "min")))
        )
    return found


def test_field_names_required_fields_and_limits_match_the_models():
    for model, documented in (
        (Item, SCHEMAS["Item"]),
        (ItemPatchFields, SCHEMAS["ItemPatchFields"]),
        (Category, SCHEMAS["CategoryUpsert"]["properties"]["category"]),
    ):
        schema = model.model_json_schema()
        assert set(schema["properties"]) == set(documented["properties"]), model.__name__
        assert set(schema["required"]) == set(documented["required"]), model.__name__
    item = _limits(Item)
    assert ("maxLength", 500) in item["name"] and ("maxLength", 250) in item["brand"]
    assert ("maxLength", 100) in item["id"] and ("maxLength", 100) in item["groupCode"]
    assert _flat(SCHEMAS["ItemDelete"]["properties"]["itemId"])["maxLength"] == 100
    assert set(ItemDelete.model_json_schema()["required"]) == set(SCHEMAS["ItemDelete"]["required"])
    events = SCHEMAS["WebhookBody"]["properties"]["events"]
    body = WebhookBody.model_json_schema()["properties"]["events"]
    assert (events["minItems"], events["maxItems"]) == (body["minItems"], body["maxItems"]) == (1, 100)


def test_the_sample_event_body_validates_against_the_document():
    from openapi_schema_validator import OAS30Validator

    body = json.loads(load_event("catalog_webhook.json")["body"])
    resolver_spec = {"components": SPEC["components"], **SCHEMAS["WebhookBody"]}
    OAS30Validator(resolver_spec).validate(body)


PROBES = ["ok", "a\x00", "a\tb", "a\nb", "\x7f", "\x85", "\xa0", "\ufffe", "\uffff", ".", "..", "...", "a/.."]


def _event(type_: str, **fields) -> dict:
    return {"id": "e", "type": type_, **fields}


def _upsert(**item) -> dict:
    return _event("item.upsert", item={"id": "A", "name": "N", "price": 1, "stock": 1, **item})


@functools.cache
def _event_validator():
    from openapi_schema_validator import OAS30Validator

    return OAS30Validator({"components": SPEC["components"], "$ref": "#/components/schemas/Event"})


def _patch(**item) -> dict:
    return _event("item.patch", item={"id": "A", **item})


def _category(**category) -> dict:
    return _event("category.upsert", category={"id": 1, "name": "N", **category})


CASES = {
    "event id": lambda v: {**_upsert(), "id": v},
    "item id": lambda v: _upsert(id=v),
    "item name": lambda v: _upsert(name=v),
    "brand": lambda v: _upsert(brand=v),
    "url": lambda v: _upsert(url=v),
    "attribute value": lambda v: _upsert(attributes={"k": v}),
    "attribute list value": lambda v: _upsert(attributes={"k": [v]}),
    "itemId": lambda v: _event("item.delete", itemId=v),
    "category key": lambda v: _category(id=v),
    "category name": lambda v: _category(name=v),
    "parent key": lambda v: _category(parents=[v]),
    "categoryId": lambda v: _event("category.delete", categoryId=v),
    "price": lambda v: _upsert(price=v),
    "stock": lambda v: _upsert(stock=v),
    "patch stock": lambda v: _patch(stock=v),
    "patch price": lambda v: _patch(price=v),
    "patch name": lambda v: _patch(name=v),
    "patch brand": lambda v: _patch(brand=v),
    "rank": lambda v: _category(rank=v),
    "category id": lambda v: _category(id=v),
    "occurredAt": lambda v: {**_upsert(), "occurredAt": v},
}
NUMBERS = [-(2**31) - 1, -(2**31), -1, 0, 2**31 - 1, 2**31, 10**12, 10**12 + 1, 1.5, 3.0]
DATES = [
    "2026-01-01T00:00:00Z",
    "2026-01-01 00:00:00+02:00",
    "2026-01-01T00:00:00",
    "1700000000",
    "2026-01-01",
]


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_document_and_the_models_accept_and_refuse_the_same_values(case):
    from pydantic import ValidationError

    from tweakwise.catalog import EVENT_ADAPTER

    validator = _event_validator()
    numeric = ("price", "stock", "rank", "category id", "patch stock", "patch price")
    values = NUMBERS if case in numeric else PROBES
    if case == "occurredAt":
        values = DATES
    verdicts = set()
    for value in values:
        event = CASES[case](value)
        documented = validator.is_valid(event)
        try:
            EVENT_ADAPTER.validate_python(event)
            coded = True
        except ValidationError:
            coded = False
        assert documented == coded, (case, value, documented, coded)
        verdicts.add(coded)
    assert verdicts == {True, False}  # each case has values on both sides of its rule


def test_free_text_refuses_exactly_the_characters_sqs_refuses():
    # SQS accepts #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF; every other code point
    # is refused, and none of those.
    from tweakwise.contract_rules import SQS_REFUSED as _SQS_REFUSED

    accepted = (range(0x9, 0xB), range(0xD, 0xE), range(0x20, 0xD800), range(0xE000, 0xFFFE))
    accepted += (range(0x10000, 0x110000),)
    every = "".join(map(chr, range(0x110000)))  # each code point once, at its own index
    refused = [match.start() for match in _SQS_REFUSED.finditer(every)]
    taken = set().union(*accepted)
    assert refused == [c for c in range(0x110000) if c not in taken]


NULLS = {
    "an upsert's brand": _upsert(brand=None),
    "an upsert's categories": _upsert(categories=None),
    "a patch's attributes": _patch(attributes=None),
    "a patch's url": _patch(url=None),
    "a patch's name": _patch(name=None),
    "a patch's stock": _patch(stock=None),
    "an upsert's price": _upsert(price=None),
    "a patch of nothing": _patch(),
}


@pytest.mark.parametrize("case", sorted(NULLS))
def test_the_document_and_the_models_agree_on_null_and_on_a_patch_of_nothing(case):
    from pydantic import ValidationError

    from tweakwise.catalog import EVENT_ADAPTER

    validator = _event_validator()
    try:
        EVENT_ADAPTER.validate_python(NULLS[case])
        coded = True
    except ValidationError:
        coded = False
    assert validator.is_valid(NULLS[case]) == coded
    # Optional fields may be cleared; name, price and stock never; a patch names a field.
    assert coded == (
        case in ("an upsert's brand", "an upsert's categories", "a patch's attributes", "a patch's url")
    )
