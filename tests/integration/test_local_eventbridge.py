"""`make run`'s EventBridge over moto: PutEvents bodies delivered to exactly the rules of template.yaml
whose patterns match, and a function that keeps failing retried, then dead-lettered, as Lambda does."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import boto3
import pytest

from conftest import REGION, drain
from tweakwise_local import eventbridge
from tweakwise_local.provision import provision
from tweakwise_local.template import ROOT, Resolver, load_template

FIXTURES = sorted((ROOT / "events" / "sources").glob("*.json"))


@pytest.fixture
def bus(aws):
    resolver = Resolver(load_template())
    provision(resolver.template, resolver)
    delivered: list[tuple[str, dict]] = []

    def deliver(rule, event):
        delivered.append((rule.logical_id, event))
        return "ok"

    made = eventbridge.Bus(eventbridge.create(eventbridge.rules(resolver), "test"), deliver)
    return SimpleNamespace(put=made.put, delivered=delivered, resolver=resolver)


def _fixture(path):
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_each_documented_event_reaches_its_sources_rule_and_no_other(bus, path):
    event = _fixture(path)
    answer = bus.put({"Entries": [eventbridge.entry(event)]})  # no bus: tried on every source's bus
    rule = "ShopifyRule" if path.stem.startswith("shopify") else "CommercetoolsRule"
    assert answer["FailedEntryCount"] == 0
    assert [(d["rule"], d["target"], d["result"]) for d in answer["Deliveries"]] == [
        (rule, "CatalogSourceFunction", "ok")
    ]
    [(_, delivered)] = bus.delivered
    assert answer["Entries"] == [{"EventId": delivered["id"]}]
    assert {k: delivered[k] for k in ("source", "detail-type", "detail")} == {
        k: event[k] for k in ("source", "detail-type", "detail")
    }
    assert {"version", "id", "account", "time", "region", "resources"} <= set(delivered)
    assert "ingestion-time" not in delivered


def test_an_event_on_the_other_sources_bus_or_of_a_topic_not_mapped_is_not_delivered(bus):
    shopify = _fixture(ROOT / "events" / "sources" / "shopify-products-update.json")
    on_commercetools = eventbridge.entry(shopify, Resolver.LOCAL["CommercetoolsEventBusName"])
    orders = copy.deepcopy(shopify)
    orders["detail"]["metadata"]["X-Shopify-Topic"] = "orders/create"
    answer = bus.put({"Entries": [on_commercetools, eventbridge.entry(orders)]})
    assert answer["FailedEntryCount"] == 0 and len(answer["Entries"]) == 2
    assert answer["Deliveries"] == [] and bus.delivered == []


def test_an_entry_eventbridge_refuses_is_answered_as_it_answers_and_the_others_are_delivered(bus):
    good = eventbridge.entry(_fixture(ROOT / "events" / "sources" / "commercetools-ProductPublished.json"))
    answer = bus.put({"Entries": [{**good, "Detail": "not json"}, good]})
    assert answer["FailedEntryCount"] == 1
    assert answer["Entries"][0]["ErrorCode"] == "MalformedDetail" and "EventId" in answer["Entries"][1]
    assert [rule for rule, _ in bus.delivered] == ["CommercetoolsRule"]


def test_an_s3_event_on_the_default_bus_starts_the_snapshot_state_machine(bus):
    bucket = bus.resolver.resources["SnapshotBucket"]["Ref"]
    detail = {"bucket": {"name": bucket}, "object": {"key": "snapshots/catalog.jsonl"}}
    entry = {"Source": "aws.s3", "DetailType": "Object Created", "Detail": json.dumps(detail)}
    answer = bus.put({"Entries": [{**entry, "EventBusName": "default"}]})
    assert [(d["rule"], d["target"]) for d in answer["Deliveries"]] == [
        ("SnapshotUploadedRule", "SnapshotStateMachine")
    ]
    other = {**detail, "object": {"key": "elsewhere/catalog.jsonl"}}
    elsewhere = bus.put({"Entries": [{**entry, "Detail": json.dumps(other), "EventBusName": "default"}]})
    assert elsewhere["Deliveries"] == []


def test_a_function_that_keeps_failing_is_retried_then_its_event_dead_lettered(bus):
    attempts = []

    def run(_function, event, _kind):
        attempts.append(event["id"])

    function = SimpleNamespace(logical_id="CatalogSourceFunction")
    said = eventbridge.invoke_async(function, {"id": "e-1"}, run, bus.resolver)
    assert attempts == ["e-1"] * 3  # the first try and the EventInvokeConfig's 2 retries
    queue = bus.resolver.resources["SourceDeadLetterQueue"]["Ref"]
    assert said == f"failed 3 times; sent to its dead-letter queue {queue.rsplit('/', 1)[1]}"
    [letter] = drain(boto3.client("sqs", region_name=REGION), queue)
    assert json.loads(letter["Body"]) == {"id": "e-1"}
