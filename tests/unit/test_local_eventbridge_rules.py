"""`make run`'s EventBridge: which rules of template.yaml it delivers to, and the banner's examples, which
must be events the sources' mappings take."""

from __future__ import annotations

import json
import re

import pytest

from tweakwise import source_commercetools, source_shopify
from tweakwise.settings import SourceSettings
from tweakwise_local import eventbridge
from tweakwise_local.template import Resolver, load_template

TEMPLATE = load_template()
SETTINGS = SourceSettings(
    queue_url="q", source_map_table="t", dead_letter_queue_url="d", commercetools_locale="en",
    commercetools_currency="EUR", commercetools_country="", shopify_item_per="product",
)  # fmt: skip


def test_every_active_rule_is_delivered_to_its_target_on_its_bus():
    found = {rule.logical_id: (rule.bus, rule.target) for rule in eventbridge.rules(Resolver(TEMPLATE))}
    assert found == {
        "SnapshotUploadedRule": ("default", "SnapshotStateMachine"),
        "CommercetoolsRule": (Resolver.LOCAL["CommercetoolsEventBusName"], "CatalogSourceFunction"),
        "ShopifyRule": (Resolver.LOCAL["ShopifyEventBusName"], "CatalogSourceFunction"),
    }
    off = Resolver(TEMPLATE, {"CommercetoolsEventBusName": "", "ShopifyEventBusName": ""})
    assert [rule.logical_id for rule in eventbridge.rules(off)] == ["SnapshotUploadedRule"]


def _pasted(command: str) -> dict:
    """The body curl sends, with the shell's substitutions made as bash makes them."""
    body = re.search(r"-d '(.*)'$", command)[1]
    body = body.replace("'\"$(date +%s%N)\"'", "1796428069943000000")
    return json.loads(body.replace("'\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"'", "2026-12-04T23:47:49Z"))


@pytest.mark.parametrize("bus", sorted(Resolver.LOCAL.values()))
def test_the_banners_example_per_source_is_an_event_its_mapping_takes(bus):
    [entry] = _pasted(eventbridge.example_command("http://127.0.0.1:3000", bus))["Entries"]
    assert entry["Source"] == bus
    detail = json.loads(entry["Detail"])
    if "shopify" in bus:
        mapped = source_shopify.events(detail, {}, SETTINGS)
        assert [e["type"] for e in mapped.events] == ["category.upsert", "item.upsert"]
    else:
        mapped = source_commercetools.events(entry["DetailType"], detail, {}, SETTINGS)
        assert [(e["type"], e["item"]["id"]) for e in mapped.events] == [("item.upsert", "CT-SKU-1")]
    assert eventbridge.example_command("http://127.0.0.1:3000", "my-own-bus") is None


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (None, "PutEvents request"),
        ({"Entries": []}, "PutEvents request"),
        ({"Entries": ["text"]}, "PutEvents request"),
        ({"Entries": [{"Source": "s", "DetailType": "d", "Detail": "{}"}] * 11}, "at most 10"),
    ],
)
def test_a_body_that_is_no_put_events_request_is_refused_with_what_it_must_be(body, says):
    bus = eventbridge.Bus([], lambda _rule, _event: "")
    with pytest.raises(eventbridge.EntryError, match=says):
        bus.put(body)


def test_an_entry_for_a_bus_no_rule_listens_on_is_refused_naming_the_buses():
    rules = eventbridge.rules(Resolver(TEMPLATE))
    bus = eventbridge.Bus(rules, lambda _rule, _event: "")
    with pytest.raises(eventbridge.EntryError, match=r"default, aws\.partner/commercetools\.com/"):
        bus.put({"Entries": [{"Source": "s", "DetailType": "d", "Detail": "{}", "EventBusName": "nope"}]})
