"""Native sources end to end: a platform's event (events/sources/, built from the documented payloads) put
on its bus → the template's rule (moto's EventBridge matching it) → the source function → the catalog
queue → the worker → what the Tweakwise sandbox holds, over sockets, with moto for SQS and DynamoDB."""

from __future__ import annotations

import copy
import json

import boto3
import pytest

from conftest import REGION, SECRET_ID, LambdaContext, drain, load_handler, sqs_event
from tweakwise_local import eventbridge
from tweakwise_local.provision import create_table
from tweakwise_local.template import ROOT, Resolver, load_template

EVENTS = ROOT / "events" / "sources"
PARENT = "c0ffee00-0000-4222-8333-444455556666"


def _event(name: str) -> dict:
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def pipeline(catalog_aws, sandbox, monkeypatch):
    """`send(event)` puts the event on its bus, where the template's rule delivers it to the source
    function (the function's answer, or None when no rule matched); `deliver()` runs the worker over the
    queue until it is empty, redelivering what a batch reported failed (as SQS would)."""
    sqs = catalog_aws["sqs"]
    source_dlq = sqs.create_queue(QueueName="source-dlq")["QueueUrl"]
    create_table(boto3.client("dynamodb", region_name=REGION), "source-map", "SOURCE_MAP_TABLE")
    for name, value in {
        "TWEAKWISE_SECRET_ID": SECRET_ID, "TWEAKWISE_API_URL": sandbox.url,
        "SYNC_STATE_TABLE": catalog_aws["table"], "LEDGER_TABLE": catalog_aws["ledger"],
        "DEAD_LETTER_QUEUE_URL": catalog_aws["dlq"], "CATALOG_QUEUE_URL": catalog_aws["queue"],
        "SOURCE_MAP_TABLE": "source-map", "SOURCE_DEAD_LETTER_QUEUE_URL": source_dlq,
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    source, worker = load_handler("catalog_source"), load_handler("catalog_worker")
    rules = eventbridge.create(eventbridge.rules(Resolver(load_template())), "test")
    bus = eventbridge.Bus(
        rules, lambda _rule, event: json.dumps(source.lambda_handler(event, LambdaContext()))
    )

    class Pipeline:
        dead_letters = source_dlq

        @staticmethod
        def send(event: dict) -> dict | None:
            answer = bus.put({"Entries": [eventbridge.entry(event)]})
            assert answer["FailedEntryCount"] == 0, answer
            results = [json.loads(d["result"]) for d in answer["Deliveries"]]
            assert [d["rule"] for d in answer["Deliveries"]] in ([], [f"{results[0]['source'].title()}Rule"])
            return results[0] if results else None

        @staticmethod
        def deliver() -> None:
            pending = drain(sqs, catalog_aws["queue"])
            for _attempt in range(4):
                if not pending:
                    return
                failed = worker.lambda_handler(sqs_event(pending), LambdaContext())["batchItemFailures"]
                ids = {f["itemIdentifier"] for f in failed}
                pending = [m for m in pending if m["MessageId"] in ids]
            raise AssertionError(f"still failing: {pending}")

    return Pipeline


def _category(category_id: str, parent: str | None) -> dict:
    event = _event("commercetools-CategoryCreated")
    event["detail"]["id"] = f"message-{category_id}"
    event["detail"]["category"]["id"] = event["detail"]["resource"]["id"] = category_id
    if parent is None:
        del event["detail"]["category"]["parent"]
    return event


def test_commercetools_categories_products_and_inventory_reach_tweakwise(pipeline, sandbox):
    pipeline.send(_category(PARENT, None))
    pipeline.send(_category("c0ffee00-1111-4222-8333-444455556666", PARENT))
    pipeline.deliver()
    assert pipeline.send(_event("commercetools-ProductPublished"))["queued"] == 2
    pipeline.deliver()
    jacket = sandbox.items["JKT-BLUE-M"]
    assert (jacket["Name"], jacket["Price"], jacket["Stock"]) == ("Rain Jacket", 129.99, 12)
    assert jacket["GroupCode"] == "e7ba4c75-b1bb-483d-94d8-2c4a10f78472"
    assert len(jacket["Categories"]) == 1 and isinstance(jacket["Categories"][0], int)
    pipeline.send(_event("commercetools-InventoryEntryCreated"))
    pipeline.send(_event("commercetools-InventoryEntryQuantitySet"))  # no SKU: through the inventory map
    pipeline.deliver()
    assert sandbox.items["JKT-BLUE-M"]["Stock"] == 7


def test_an_unresolvable_inventory_message_is_skipped_not_dead_lettered(pipeline, catalog_aws, sandbox):
    before = len(sandbox.requests)
    outcome = pipeline.send(_event("commercetools-InventoryEntryQuantitySet"))
    assert outcome["queued"] == 0 and "SKU is not known" in outcome["skipped"]
    assert drain(catalog_aws["sqs"], catalog_aws["queue"]) == []
    assert drain(catalog_aws["sqs"], pipeline.dead_letters) == []
    assert len(sandbox.requests) == before


def test_an_older_event_arriving_late_or_twice_reverts_nothing(pipeline, sandbox):
    pipeline.send(_category(PARENT, None))
    pipeline.send(_category("c0ffee00-1111-4222-8333-444455556666", PARENT))
    pipeline.deliver()
    pipeline.send(_event("commercetools-ProductPublished"))
    pipeline.deliver()
    pipeline.send(_event("commercetools-ProductPriceChanged"))  # 11:00, a newer price
    pipeline.deliver()
    assert sandbox.items["JKT-BLUE-M"]["Price"] == 99.99
    published = _event("commercetools-ProductPublished")  # 10:15, redelivered under a new message id
    published["detail"]["id"] = "another-delivery"
    published["detail"]["productProjection"]["name"]["en"] = "Rain Jacket (old)"
    pipeline.send(published)
    pipeline.send(copy.deepcopy(published))  # and twice
    pipeline.deliver()
    jacket = sandbox.items["JKT-BLUE-M"]
    assert jacket["Price"] == 99.99  # the newer price's own clock keeps it
    assert jacket["Name"] == "Rain Jacket (old)"  # a field no newer change set still applies


def test_shopify_products_and_inventory_levels_summed_over_locations(pipeline, sandbox):
    assert pipeline.send(_event("shopify-products-update"))["queued"] == 2  # its type as category, the item
    pipeline.deliver()
    shirt = sandbox.items["788032119674292922"]
    assert (shirt["Name"], shirt["Price"], shirt["Stock"], shirt["Brand"]) == (
        "Example T-Shirt",
        19.99,
        125,
        "Acme",
    )
    level = _event("shopify-inventory_levels-update")
    pipeline.send(level)
    other = copy.deepcopy(level)
    other["detail"]["metadata"]["X-Shopify-Event-Id"] = "second-location"
    other["detail"]["payload"].update(location_id=99, available=4)
    pipeline.send(other)
    older = copy.deepcopy(level)  # the first location again, from before: must not undo its 6
    older["detail"]["metadata"]["X-Shopify-Event-Id"] = "late"
    older["detail"]["payload"].update(available=50, updated_at="2026-11-30T05:00:00-05:00")
    assert pipeline.send(older)["queued"] == 0
    pipeline.deliver()
    assert sandbox.items["788032119674292922"]["Stock"] == 10  # 6 + 4: the locations reported


def test_a_payload_missing_a_needed_field_is_dead_lettered_once_with_the_field_named(pipeline, catalog_aws):
    event = _event("shopify-products-update")
    del event["detail"]["payload"]["variants"][0]["price"]
    outcome = pipeline.send(event)
    assert outcome["queued"] == 0
    assert drain(catalog_aws["sqs"], catalog_aws["queue"]) == []
    [letter] = drain(catalog_aws["sqs"], pipeline.dead_letters)
    reason = letter["MessageAttributes"]["ErrorReason"]["StringValue"]
    assert "detail.payload.variants[0].price" in reason
    assert json.loads(letter["Body"])["detail"] == event["detail"]  # the event as the rule delivered it
