"""Field patches: `item.patch` events and patch snapshot lines set only the fields they name, each field has
its own clock, only fields that differ from what this stack sent are sent, and a new item costs one request.
Through the worker (SQS events, moto) and the apply core, against the sandbox over real sockets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from conftest import (
    SECRET_ID,
    WEBHOOK_SECRET_ID,
    LambdaContext,
    api_event,
    drain,
    load_handler,
    queue_messages,
    signed_headers,
    sqs_event,
)

T0 = datetime.now(UTC) - timedelta(hours=1)


def _at(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def _upsert(event_id: str, minutes: int, **item) -> dict:
    fields = {"id": "SKU-1", "name": "Trail runner", "price": 10, "stock": 5, "brand": "Acme", **item}
    return {"id": event_id, "type": "item.upsert", "occurredAt": _at(minutes), "item": fields}


def _patch(event_id: str, minutes: int, **item) -> dict:
    return {"id": event_id, "type": "item.patch", "occurredAt": _at(minutes), "item": {"id": "SKU-1", **item}}


@pytest.fixture
def worker(catalog_aws, sandbox, monkeypatch):
    monkeypatch.setenv("TWEAKWISE_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("TWEAKWISE_API_URL", sandbox.url)
    monkeypatch.setenv("SYNC_STATE_TABLE", catalog_aws["table"])
    monkeypatch.setenv("LEDGER_TABLE", catalog_aws["ledger"])
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", catalog_aws["dlq"])
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "catalog-worker")
    module = load_handler("catalog_worker")

    def send(*events: dict) -> dict:
        return module.lambda_handler(sqs_event(queue_messages(list(events))), LambdaContext())

    return send


def _writes(sandbox, since: int = 0) -> list[tuple[str, str, dict]]:
    return [
        (m, p, b or {}) for m, p, b in sandbox.requests[since:] if m in ("POST", "PATCH", "DELETE", "PUT")
    ]


# -- fields have their own clocks ------------------------------------------------------------------------


def test_a_late_upsert_changes_the_fields_a_newer_stock_patch_did_not_set(worker, sandbox):
    worker(_upsert("e0", 0))
    worker(_patch("e2", 5, stock=3))  # 10:05: stock
    before = len(sandbox.requests)
    assert worker(_upsert("e1", 1, name="Trail runner 2", brand="Acme Pro", stock=9)) == {
        "batchItemFailures": []
    }
    item = sandbox.items["SKU-1"]
    assert item["Name"] == "Trail runner 2" and item["Brand"] == "Acme Pro"
    assert item["Stock"] == 3  # the newer patch's
    [(method, _path, body)] = _writes(sandbox, before)
    assert method == "PATCH" and body == {"Name": "Trail runner 2", "Brand": "Acme Pro"}


def test_a_late_stock_patch_after_a_newer_upsert_changes_nothing(worker, sandbox, capsys):
    worker(_upsert("e0", 5, stock=7))
    before = len(sandbox.requests)
    capsys.readouterr()
    worker(_patch("e1", 1, stock=3))
    assert sandbox.items["SKU-1"]["Stock"] == 7 and _writes(sandbox, before) == []
    assert "StaleEventsSkipped" in capsys.readouterr().out


def test_a_patch_that_finds_every_field_newer_is_stale_and_one_with_some_sends_only_those(worker, sandbox):
    worker(_upsert("e0", 5))
    worker(_patch("e1", 1, stock=1, price=1))  # both newer already: stale
    assert sandbox.items["SKU-1"]["Stock"] == 5 and sandbox.items["SKU-1"]["Price"] == 10
    worker(_patch("e2", 7, price=12))
    worker(_patch("e3", 6, stock=2, price=11))  # price was set at 10:07, stock at 10:05: stock only
    assert sandbox.items["SKU-1"]["Stock"] == 2 and sandbox.items["SKU-1"]["Price"] == 12


def test_a_delete_loses_to_any_field_set_after_it(worker, sandbox):
    worker(_upsert("e0", 0))
    worker(_patch("e1", 5, stock=3))
    worker({"id": "d", "type": "item.delete", "occurredAt": _at(2), "itemId": "SKU-1"})
    assert "SKU-1" in sandbox.items  # the stock set at 10:05 is newer than the delete at 10:02


# -- only what changed is sent, with the right verb ------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "sent"),
    [
        ({"price": 12.5}, {"Price": 12.5}),
        ({"stock": 3}, {"Stock": 3}),
        ({"price": 12.5, "stock": 3}, {"Price": 12.5, "Stock": 3}),
        ({"brand": None}, {"Brand": ""}),  # null clears
        ({"stock": 3.0}, {"Stock": 3}),  # an integral number is that integer
    ],
)
def test_a_patch_sends_only_its_fields_in_one_request(worker, sandbox, fields, sent):
    worker(_upsert("e0", 0))
    before = len(sandbox.requests)
    assert worker(_patch("e1", 1, **fields)) == {"batchItemFailures": []}
    assert _writes(sandbox, before) == [("PATCH", "/item/SKU-1", sent)]
    item = sandbox.items["SKU-1"]
    assert item["Name"] == "Trail runner"  # the fields it does not name are kept
    for name, value in sent.items():
        assert item[name] == value


def test_a_new_item_is_one_post_and_an_unchanged_upsert_sends_nothing(worker, sandbox, capsys):
    worker(_upsert("e0", 0))
    assert [(m, p) for m, p, _b in _writes(sandbox)] == [("POST", "/item")]
    before = len(sandbox.requests)
    capsys.readouterr()
    worker(_upsert("e1", 1))  # the same values again
    assert _writes(sandbox, before) == []
    assert '"EventsUnchanged":[1.0]' in capsys.readouterr().out.replace(" ", "")


def test_a_post_refused_because_the_item_exists_is_followed_by_one_patch(worker, sandbox):
    sandbox.items["SKU-1"] = {"ArticleNumber": "SKU-1", "Name": "Made in the Tweakwise app"}
    worker(_upsert("e0", 0))
    assert [(m, p) for m, p, _b in _writes(sandbox)] == [("POST", "/item"), ("PATCH", "/item/SKU-1")]
    assert sandbox.items["SKU-1"]["Name"] == "Trail runner"


def test_a_patch_of_an_item_tweakwise_lacks_is_skipped_counted_and_not_dead_lettered(
    worker, sandbox, catalog_aws, capsys, tweakwise_log
):
    capsys.readouterr()
    assert worker(_patch("e1", 1, stock=3)) == {"batchItemFailures": []}  # not retried
    out = capsys.readouterr().out
    assert "SKU-1" not in sandbox.items
    assert drain(catalog_aws["sqs"], catalog_aws["dlq"]) == []
    assert '"PatchesSkipped":[1.0]' in out.replace(" ", "")
    [logged] = [m for m in tweakwise_log if "is not in Tweakwise, and a patch cannot create it" in m]
    assert "'SKU-1'" in logged
    worker(_upsert("e2", 2))  # the next full upsert creates it
    assert sandbox.items["SKU-1"]["Stock"] == 5


# -- the webhook takes item.patch ------------------------------------------------------------------------


@pytest.fixture
def webhook(catalog_aws, monkeypatch):
    monkeypatch.setenv("WEBHOOK_SECRET_ID", WEBHOOK_SECRET_ID)
    monkeypatch.setenv("CATALOG_QUEUE_URL", catalog_aws["queue"])
    module = load_handler("catalog_webhook")

    def post(*events: dict) -> dict:
        raw = json.dumps({"events": list(events)}).encode()
        answer = module.lambda_handler(api_event(raw, signed_headers(raw)), LambdaContext())
        return {"status": answer["statusCode"], **json.loads(answer["body"])}

    return post


def test_the_webhook_queues_a_stock_patch_and_keeps_a_null(webhook, catalog_aws):
    assert webhook(_patch("e1", 1, stock=3.0, brand=None))["status"] == 202
    [message] = drain(catalog_aws["sqs"], catalog_aws["queue"])
    assert json.loads(message["Body"])["item"] == {"id": "SKU-1", "stock": 3, "brand": None}


@pytest.mark.parametrize(
    ("item", "path"),
    [
        ({"id": "SKU-1", "stock": 2.5}, "events[0].item.stock"),
        ({"id": "SKU-1"}, "events[0].item"),
        ({"id": "SKU-1", "name": None}, "events[0].item.name"),
        ({"id": "SKU-1", "colour": "red"}, "events[0].item.colour"),
    ],
)
def test_the_webhook_refuses_a_patch_it_cannot_apply_naming_the_field(webhook, item, path):
    answer = webhook({"id": "e1", "type": "item.patch", "item": item})
    assert answer["status"] == 400
    assert [error["path"] for error in answer["errors"]] == [path]
