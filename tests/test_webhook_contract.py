"""docs/catalog-webhook.openapi.yaml and the code say the same thing."""

from __future__ import annotations

import json

import yaml
from openapi_spec_validator import validate

from conftest import ROOT, load_event
from tweakwise.events import Category, Item, ItemDelete, WebhookBody

SPEC = yaml.safe_load((ROOT / "docs" / "catalog-webhook.openapi.yaml").read_text())
SCHEMAS = SPEC["components"]["schemas"]


def test_the_document_is_valid_openapi():
    validate(SPEC)


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
        (Category, SCHEMAS["CategoryUpsert"]["properties"]["category"]),
    ):
        schema = model.model_json_schema()
        assert set(schema["properties"]) == set(documented["properties"]), model.__name__
        assert set(schema["required"]) == set(documented["required"]), model.__name__
    item = _limits(Item)
    assert ("maxLength", 500) in item["name"] and ("maxLength", 250) in item["brand"]
    assert ("maxLength", 100) in item["id"] and ("maxLength", 100) in item["groupCode"]
    assert SCHEMAS["ItemDelete"]["properties"]["itemId"]["maxLength"] == 100
    assert set(ItemDelete.model_json_schema()["required"]) == set(SCHEMAS["ItemDelete"]["required"])
    events = SCHEMAS["WebhookBody"]["properties"]["events"]
    body = WebhookBody.model_json_schema()["properties"]["events"]
    assert (events["minItems"], events["maxItems"]) == (body["minItems"], body["maxItems"]) == (1, 100)


def test_the_sample_event_body_validates_against_the_document():
    from openapi_schema_validator import OAS30Validator

    body = json.loads(load_event("catalog_webhook.json")["body"])
    resolver_spec = {"components": SPEC["components"], **SCHEMAS["WebhookBody"]}
    OAS30Validator(resolver_spec).validate(body)
