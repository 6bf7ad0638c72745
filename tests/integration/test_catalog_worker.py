"""The catalog worker, and the whole path: signed webhook -> SQS FIFO (moto) -> worker -> Tweakwise."""

from __future__ import annotations

import functools
import json
import threading
import time

import boto3
import pytest
from werkzeug import Response

from conftest import (
    REGION,
    SECRET_ID,
    WEBHOOK_SECRET_ID,
    LambdaContext,
    api_event,
    drain,
    emf_blobs,
    load_event,
    load_handler,
    queue_messages,
    signed_headers,
    sqs_event,
)


def _worker_env(monkeypatch, catalog_aws, api_url, **extra):
    monkeypatch.setenv("TWEAKWISE_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("TWEAKWISE_API_URL", api_url)
    monkeypatch.setenv("TWEAKWISE_MAX_RETRIES", "0")
    monkeypatch.setenv("SYNC_STATE_TABLE", catalog_aws["table"])
    monkeypatch.setenv("LEDGER_TABLE", catalog_aws["ledger"])
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", catalog_aws["dlq"])
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "catalog-worker")
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    return load_handler("catalog_worker")


@pytest.fixture
def worker(catalog_aws, sandbox, monkeypatch):
    return _worker_env(monkeypatch, catalog_aws, sandbox.url)


def _known(catalog_aws, *item_ids):
    """Items this stack wrote before (in the ledger, with other values): the worker PATCHes them."""
    from tweakwise.entity import EntityKey
    from tweakwise.ledger import Ledger

    ledger = Ledger(boto3.client("dynamodb", region_name=REGION), catalog_aws["ledger"])
    for item_id in item_ids:
        ledger.record(EntityKey.item(item_id), {"Name": "before"}, 0.0)


def _records(*events):
    """The SQS event for catalog events, as the webhook queues them."""
    return sqs_event(queue_messages(list(events)))


def _upsert(event_id, item_id, at=None, **item):
    event = {
        "id": event_id,
        "type": "item.upsert",
        "item": {"id": item_id, "name": "N", "price": 1, "stock": 1},
    }
    event["item"].update(item)
    if at:
        event["occurredAt"] = at
    return event


def _emf(out: str) -> dict:
    [blob] = emf_blobs(out)
    return blob


def test_webhook_to_worker_to_tweakwise_end_to_end(catalog_aws, sandbox, monkeypatch, capsys):
    # 1. the shop posts the sample webhook, signed
    monkeypatch.setenv("WEBHOOK_SECRET_ID", WEBHOOK_SECRET_ID)
    monkeypatch.setenv("CATALOG_QUEUE_URL", catalog_aws["queue"])
    webhook = load_handler("catalog_webhook")
    raw = load_event("catalog_webhook.json")["body"].encode()
    answer = webhook.lambda_handler(api_event(raw, signed_headers(raw)), LambdaContext())
    assert answer["statusCode"] == 202
    # 2. the real messages, read back from the queue, become the worker's SQS event
    messages = drain(catalog_aws["sqs"], catalog_aws["queue"])
    assert len(messages) == 3
    sandbox.items["SKU-7"] = {"ArticleNumber": "SKU-7", "Name": "Old"}
    worker = _worker_env(monkeypatch, catalog_aws, sandbox.url)
    capsys.readouterr()
    response = worker.lambda_handler(sqs_event(messages), LambdaContext())
    # 3. Tweakwise received the changes
    assert response == {"batchItemFailures": []}
    assert sandbox.categories[100] == {"CategoryId": 100, "Name": "Shoes", "Rank": 1}
    item = sandbox.items["SKU-42/blue"]
    assert item == {
        "ArticleNumber": "SKU-42/blue",
        "Name": "Trail runner",
        "Price": 89.95,
        "Stock": 12,
        "Brand": "Acme",
        "Url": "https://shop.example/p/sku-42-blue",
        "Categories": [100],
        "Attributes": [{"Key": "color", "Values": ["blue"]}, {"Key": "sizes", "Values": ["41", "42", "43"]}],
    }
    assert "SKU-7" not in sandbox.items
    paths = [(m, p) for m, p, _ in sandbox.requests]
    assert ("POST", "/item") in paths  # new items: one POST each, no PATCH first
    assert ("DELETE", "/item/SKU-7") in paths
    blob = _emf(capsys.readouterr().out)
    assert blob["EventsApplied"] == [3.0] and blob["EventsRetried"] == [0.0]


def test_sample_worker_event(worker, sandbox):
    response = worker.lambda_handler(load_event("catalog_worker.json"), LambdaContext())
    assert response == {"batchItemFailures": []}
    assert sandbox.items["SKU-42/blue"]["Price"] == 84.95


def test_older_event_never_reverts_newer_data(worker, sandbox, capsys, tweakwise_log):
    newer = _upsert("e2", "A", at="2026-11-28T10:00:00Z", name="New")
    older = _upsert("e1", "A", at="2026-11-28T09:00:00+00:00", name="Old")
    worker.lambda_handler(_records(newer), LambdaContext())
    capsys.readouterr()
    response = worker.lambda_handler(_records(older), LambdaContext())
    assert response == {"batchItemFailures": []}
    assert sandbox.items["A"]["Name"] == "New"
    assert _emf(capsys.readouterr().out)["StaleEventsSkipped"] == [1.0]
    assert "Skipped stale item.upsert e1 for item#A" in tweakwise_log


def test_stale_guard_covers_deletes_and_same_time_retries(worker, sandbox):
    worker.lambda_handler(
        _records({"id": "d", "type": "item.delete", "itemId": "B", "occurredAt": "2026-11-28T10:00:00Z"}),
        LambdaContext(),
    )
    worker.lambda_handler(_records(_upsert("u-old", "B", at="2026-11-28T09:59:59Z")), LambdaContext())
    assert "B" not in sandbox.items  # the late upsert did not resurrect the deleted item
    worker.lambda_handler(_records(_upsert("u-new", "B", at="2026-11-28T10:00:00Z")), LambdaContext())
    assert "B" in sandbox.items  # equal time is not older: a redelivery applies again


def test_tweakwise_400_goes_to_the_dead_letter_queue_at_once(catalog_aws, tweakwise, monkeypatch, capsys):
    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"))
    _known(catalog_aws, "BAD", "GOOD")
    tweakwise.expect_request("/item/BAD", method="PATCH").respond_with_json(
        {"Message": "The request is invalid.", "Errors": [{"Error": "Name is too long"}]}, status=400
    )
    tweakwise.expect_request("/item/GOOD", method="PATCH").respond_with_json({})
    response = worker.lambda_handler(
        _records(_upsert("e-bad", "BAD"), _upsert("e-good", "GOOD")), LambdaContext()
    )
    assert response == {"batchItemFailures": []}  # not retried: it would fail the same way
    [parked] = drain(catalog_aws["sqs"], catalog_aws["dlq"])
    assert json.loads(parked["Body"])["id"] == "e-bad"
    reason = parked["MessageAttributes"]["ErrorReason"]["StringValue"]
    assert "PATCH /item/BAD answered 400" in reason and "Name is too long" in reason
    assert parked["MessageAttributes"]["EventType"]["StringValue"] == "item.upsert"
    blob = _emf(capsys.readouterr().out)
    assert blob["EventsRejected"] == [1.0] and blob["EventsApplied"] == [1.0]


def test_a_503_is_retried_and_later_records_of_that_entity_wait(catalog_aws, tweakwise, monkeypatch):
    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"))
    _known(catalog_aws, "A", "B")
    tweakwise.expect_request("/item/A", method="PATCH").respond_with_data("", status=503)
    tweakwise.expect_request("/item/B", method="PATCH").respond_with_json({})
    event = _records(_upsert("a1", "A"), _upsert("b1", "B"), _upsert("a2", "A"), _upsert("b2", "B", stock=2))
    response = worker.lambda_handler(event, LambdaContext())
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == ["m-0", "m-2"]
    patched = [r.path for r, _ in tweakwise.log]
    assert patched.count("/item/A") == 1  # a2 was not tried: it must not overtake a1
    assert patched.count("/item/B") == 2


def test_each_failed_attempt_keeps_its_reason_by_event_id_for_the_operator(
    catalog_aws, tweakwise, monkeypatch
):
    from tweakwise.state import SyncState

    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"))
    _known(catalog_aws, "A")
    tweakwise.expect_request("/item/A", method="PATCH").respond_with_data("", status=503)
    for _delivery in range(2):  # SQS delivers it again; after maxReceiveCount it dead-letters it, bare
        response = worker.lambda_handler(_records(_upsert("a1", "A")), LambdaContext())
        assert response["batchItemFailures"] == [{"itemIdentifier": "m-0"}]
    state = SyncState(boto3.client("dynamodb", region_name=REGION), catalog_aws["table"])
    [failure] = state.failures(["a1", "never-failed"]).values()
    assert (failure.event_id, failure.attempts) == ("a1", 2)
    assert failure.reason.startswith("ServerError: ") and "PATCH /item/A" in failure.reason
    assert abs(failure.failed_at - time.time()) < 60


def test_a_failure_record_that_cannot_be_written_leaves_the_events_own_error_reported(
    catalog_aws, tweakwise, monkeypatch, tweakwise_log
):
    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"))
    _known(catalog_aws, "A")
    tweakwise.expect_request("/item/A", method="PATCH").respond_with_data("", status=503)

    def refuse(*_args, **_kwargs):
        raise RuntimeError("DynamoDB is down")

    monkeypatch.setattr(worker.state, "record_failure", refuse)
    response = worker.lambda_handler(_records(_upsert("a1", "A")), LambdaContext())
    assert response["batchItemFailures"] == [{"itemIdentifier": "m-0"}]
    [failed] = [m for m in tweakwise_log if m.startswith("Message m-0 failed")]
    assert "ServerError" in failed and "DynamoDB is down" not in failed
    assert "Could not keep why event a1 failed: RuntimeError" in tweakwise_log


def test_each_applied_change_emits_its_sync_lag_from_occurred_at(worker, sandbox, capsys):
    from datetime import UTC, datetime, timedelta

    ago = (datetime.now(UTC) - timedelta(seconds=90)).isoformat()
    events = [
        _upsert("e1", "A", at=ago),
        _upsert("e2", "B", at=ago),
        _upsert("e0", "A", at="2026-01-01T00:00:00Z"),
    ]
    capsys.readouterr()
    worker.lambda_handler(_records(*events), LambdaContext())
    lags = _emf(capsys.readouterr().out)["SyncLagSeconds"]
    assert len(lags) == 2  # the stale one applied nothing: no lag
    assert all(90 <= lag < 150 for lag in lags)


@pytest.mark.parametrize("status", [429, 500, 504])
def test_transient_statuses_fail_the_record_for_a_later_retry(catalog_aws, tweakwise, monkeypatch, status):
    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"))
    _known(catalog_aws, "A")
    tweakwise.expect_request("/item/A", method="PATCH").respond_with_data("", status=status)
    response = worker.lambda_handler(_records(_upsert("a1", "A")), LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert drain(catalog_aws["sqs"], catalog_aws["dlq"]) == []


def test_category_keys_are_resolved_once_per_container(catalog_aws, tweakwise, monkeypatch):
    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"))
    _known(catalog_aws, "A", "B")
    tweakwise.expect_request("/category/getbykey/shoes").respond_with_json({"CategoryId": 7, "Key": "shoes"})
    tweakwise.expect_request(
        "/item/A", method="PATCH", json={"Name": "N", "Price": 1, "Stock": 1, "Categories": [7, 3]}
    ).respond_with_json({})
    tweakwise.expect_request("/item/B", method="PATCH").respond_with_json({})
    response = worker.lambda_handler(
        _records(_upsert("a", "A", categories=["shoes", 3]), _upsert("b", "B", categories=["shoes"])),
        LambdaContext(),
    )
    assert response == {"batchItemFailures": []}
    assert [r.path for r, _ in tweakwise.log].count("/category/getbykey/shoes") == 1


def test_unknown_category_key_is_retried_not_dropped(catalog_aws, tweakwise, monkeypatch):
    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"))
    tweakwise.expect_request("/category/getbykey/new").respond_with_data("", status=404)
    response = worker.lambda_handler(_records(_upsert("a", "A", categories=["new"])), LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}


def test_category_upserts_by_id_and_by_key(worker, sandbox):
    events = _records(
        {"id": "c1", "type": "category.upsert", "category": {"id": 1, "name": "Root"}},
        {
            "id": "c2",
            "type": "category.upsert",
            "category": {"id": "men", "name": "Men", "parents": [1], "rank": 2, "url": "https://s/men"},
        },
    )
    assert worker.lambda_handler(events, LambdaContext()) == {"batchItemFailures": []}
    assert sandbox.categories[1] == {"CategoryId": 1, "Name": "Root"}
    [men] = [c for c in sandbox.categories.values() if c.get("Key") == "men"]
    assert {k: v for k, v in men.items() if k != "CategoryId"} == {
        "Key": "men",
        "Name": "Men",
        "Rank": 2,
        "Parents": [1],
        "Url": "https://s/men",
    }


def test_category_key_upsert_patches_when_the_key_exists(catalog_aws, tweakwise, monkeypatch):
    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"))
    tweakwise.expect_request("/category/getbykey/men").respond_with_json({"CategoryId": 12})
    tweakwise.expect_request("/category/12", method="PATCH", json={"Name": "Men"}).respond_with_json({})
    event = _records({"id": "c", "type": "category.upsert", "category": {"id": "men", "name": "Men"}})
    assert worker.lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}


def test_deletes_of_missing_things_are_done(catalog_aws, tweakwise, monkeypatch):
    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"))
    tweakwise.expect_request("/item/gone", method="DELETE").respond_with_data("", status=404)
    tweakwise.expect_request("/category/9", method="DELETE").respond_with_data("", status=404)
    tweakwise.expect_request("/category/getbykey/old").respond_with_data("", status=404)
    events = _records(
        {"id": "1", "type": "item.delete", "itemId": "gone"},
        {"id": "2", "type": "category.delete", "categoryId": 9},
        {"id": "3", "type": "category.delete", "categoryId": "old"},
    )
    assert worker.lambda_handler(events, LambdaContext()) == {"batchItemFailures": []}


def test_entities_of_one_batch_are_applied_concurrently(catalog_aws, tweakwise, monkeypatch):
    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"), WORKER_CONCURRENCY="5")
    _known(catalog_aws, *[f"I{i}" for i in range(10)])
    peak = _peak_in_flight(tweakwise, [f"/item/I{i}" for i in range(10)], pause=0.2)
    started = time.monotonic()
    response = worker.lambda_handler(
        _records(*[_upsert(f"e{i}", f"I{i}") for i in range(10)]), LambdaContext()
    )
    assert response == {"batchItemFailures": []}
    assert peak[0] == 5  # bounded by WORKER_CONCURRENCY
    assert time.monotonic() - started < 1.5  # 10 x 200 ms one after the other would take 2 s


def test_one_entity_is_applied_in_order(worker, sandbox):
    events = _records(*[_upsert(f"e{i}", "SAME", stock=i) for i in range(10)])
    assert worker.lambda_handler(events, LambdaContext()) == {"batchItemFailures": []}
    stocks = [body["Stock"] for method, path, body in sandbox.requests if method in ("PATCH", "POST")]
    assert stocks == list(range(10))  # POST 0 (a new item), then PATCH 1..9


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("not json", "(body): Invalid JSON: expected ident at line 1 column 2"),
        ('{"id": "x", "type": "item.rename"}', "(body): Input tag 'item.rename' found using 'type' does not"),
        (
            '{"id": "", "type": "item.delete", "itemId": ".."}',
            "id: String should have at least 1 character; itemId: Value error, must not be '..'",
        ),
    ],
)
def test_a_poison_message_is_parked_at_once_and_its_group_goes_on(
    worker, catalog_aws, sandbox, capsys, tweakwise_log, body, why
):
    good = _records(_upsert("e-1", "A"), _upsert("e-2", "A", name="Later"))
    group = good["Records"][0]["attributes"]["MessageGroupId"]
    poison = {**good["Records"][0], "messageId": "m-poison", "body": body}
    event = {"Records": [poison, *good["Records"]]}
    response = worker.lambda_handler(event, LambdaContext())
    assert response == {"batchItemFailures": []}
    assert sandbox.items["A"]["Name"] == "Later"  # the valid records of its group were applied, in order
    [parked] = drain(catalog_aws["sqs"], catalog_aws["dlq"])
    assert parked["Body"] == body
    assert parked["Attributes"]["MessageGroupId"] == group
    assert parked["Attributes"]["MessageDeduplicationId"] == poison["attributes"]["MessageDeduplicationId"]
    attributes = parked["MessageAttributes"]
    assert attributes["EventType"]["StringValue"] == "unreadable"
    assert attributes["SourceMessageId"]["StringValue"] == "m-poison"
    assert attributes["ErrorReason"]["StringValue"].startswith(f"not a valid catalog event: {why}")
    out = capsys.readouterr().out
    blob = _emf(out)
    assert blob["EventsRejected"] == [1.0] and blob["EventsApplied"] == [2.0]
    assert any(
        m.startswith("Rejected unreadable  (message m-poison), moved to the dead-letter queue: not a valid")
        for m in tweakwise_log
    )


def test_a_failed_publish_marker_does_not_fail_applied_records(
    worker, sandbox, monkeypatch, capsys, tweakwise_log
):
    from botocore.exceptions import ClientError

    from tweakwise.state import PUBLISH_KEY

    calls = []
    update_item = worker.state.dynamodb.update_item

    def throttled(**request):
        if request["Key"] != PUBLISH_KEY:  # the ledger's write goes through
            return update_item(**request)
        calls.append(1)
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
            "UpdateItem",
        )

    monkeypatch.setattr(worker.state.dynamodb, "update_item", throttled)
    monkeypatch.setattr(worker.state, "mark_changed", functools.partial(worker.state.mark_changed, pause=0))
    response = worker.lambda_handler(_records(_upsert("e-1", "A")), LambdaContext())
    assert response == {"batchItemFailures": []}
    assert "A" in sandbox.items
    assert len(calls) == 3  # three marker attempts
    out = capsys.readouterr().out
    blob = _emf(out)
    assert blob["PublishMarkFailures"] == [1.0] and blob["EventsApplied"] == [1.0]
    assert any("ProvisionedThroughputExceededException" in m for m in tweakwise_log)


def test_a_marker_write_that_fails_once_is_retried(catalog_aws):
    import boto3

    from conftest import REGION
    from tweakwise.state import SyncState

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    state = SyncState(dynamodb, catalog_aws["table"])
    real = dynamodb.update_item
    failures = iter([True])

    def flaky(**request):
        if next(failures, False):
            raise dynamodb.exceptions.ProvisionedThroughputExceededException(
                {"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem"
            )
        return real(**request)

    dynamodb.update_item = flaky
    assert state.mark_changed(now=100.0, pause=0) is True
    assert state.publish_marks().changed_at == 100.0


def test_a_category_deleted_by_key_is_forgotten_and_created_again_by_its_next_upsert(worker, sandbox):
    upsert = {"id": "c1", "type": "category.upsert", "category": {"id": "shoes", "name": "Shoes"}}
    assert worker.lambda_handler(_records(upsert), LambdaContext()) == {"batchItemFailures": []}
    [first_id] = [i for i, c in sandbox.categories.items() if c.get("Key") == "shoes"]
    delete = {"id": "c2", "type": "category.delete", "categoryId": "shoes"}
    assert worker.lambda_handler(_records(delete), LambdaContext()) == {"batchItemFailures": []}
    assert sandbox.categories == {}
    sandbox.requests.clear()
    again = {"id": "c3", "type": "category.upsert", "category": {"id": "shoes", "name": "Shoes 2"}}
    assert worker.lambda_handler(_records(again), LambdaContext()) == {"batchItemFailures": []}
    [category] = sandbox.categories.values()
    assert category["Key"] == "shoes" and category["Name"] == "Shoes 2"
    # looked up again (the deleted id was forgotten), then created anew, not patched under the old id
    assert [(m, p) for m, p, _ in sandbox.requests] == [
        ("GET", "/category/getbykey/shoes"),
        ("POST", "/category"),
    ]
    assert first_id not in worker.sync.categories._ids.values()


def test_a_category_key_whose_category_vanished_is_created_again(catalog_aws, tweakwise, monkeypatch):
    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"))
    tweakwise.expect_request("/category/getbykey/men").respond_with_json({"CategoryId": 12})
    tweakwise.expect_request("/category/12", method="PATCH").respond_with_data("", status=404)
    tweakwise.expect_request(
        "/category", method="POST", json={"Key": "men", "Name": "Men"}
    ).respond_with_json({})
    event = _records({"id": "c", "type": "category.upsert", "category": {"id": "men", "name": "Men"}})
    assert worker.lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert [(r.method, r.path) for r, _ in tweakwise.log] == [
        ("GET", "/category/getbykey/men"),
        ("PATCH", "/category/12"),
        ("POST", "/category"),
    ]
    assert worker.sync.categories._ids == {}  # the stale id is not kept


def test_the_stale_guard_expires_after_its_ttl(catalog_aws, worker, monkeypatch):
    import boto3

    from conftest import REGION

    monkeypatch.setattr(worker.state, "ttl_seconds", 3 * 86400)
    before = int(time.time())
    worker.lambda_handler(_records(_upsert("e", "A", at="2026-11-28T10:00:00Z")), LambdaContext())
    item = boto3.client("dynamodb", region_name=REGION).scan(TableName=catalog_aws["table"])["Items"]
    [guard] = [i for i in item if i["entity"]["S"] == "item#A"]
    assert before + 3 * 86400 <= int(guard["expiresAt"]["N"]) <= int(time.time()) + 3 * 86400
    assert guard["eventId"]["S"] == "e"
    from tweakwise.state import SyncState

    assert SyncState(None, "t", ttl_days=30).ttl_seconds == 30 * 86400
    assert SyncState(None, "t").ttl_seconds == 30 * 86400  # the default guard lifetime


def test_the_dead_letter_reason_is_cut_at_1000_characters(catalog_aws, tweakwise, monkeypatch, tweakwise_log):
    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"))
    _known(catalog_aws, "BAD")
    tweakwise.expect_request("/item/BAD", method="PATCH").respond_with_json(
        {"Message": "x" * 3000, "Errors": [{"Error": "y" * 3000}] * 10}, status=400
    )
    assert worker.lambda_handler(_records(_upsert("e-bad", "BAD")), LambdaContext()) == {
        "batchItemFailures": []
    }
    [parked] = drain(catalog_aws["sqs"], catalog_aws["dlq"])
    reason = parked["MessageAttributes"]["ErrorReason"]["StringValue"]
    assert len(reason) == 1000 and reason.startswith("Tweakwise PATCH /item/BAD answered 400: xxx")
    assert "x" * 300 + "; " not in reason and "x" * 299 + "…; yyy" in reason  # each text cut at 300
    assert reason.endswith("…")
    assert any(
        m.startswith(
            "Rejected item.upsert e-bad (message m-0), moved to the dead-letter queue: Tweakwise PATCH"
        )
        for m in tweakwise_log
    )


def test_lookups_of_different_category_keys_do_not_wait_for_each_other():
    from tweakwise.mapping import CategoryRefs

    both_in = threading.Barrier(2, timeout=5)

    class Client:
        def get_category_by_key(self, key):
            both_in.wait()  # returns only when the other key's lookup is under way too
            return {"CategoryId": len(key)}

    refs = CategoryRefs(Client())
    found = {}
    threads = [threading.Thread(target=lambda k=k: found.update({k: refs.find(k)})) for k in ("ab", "abc")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert found == {"ab": 2, "abc": 3}


def _peak_in_flight(tweakwise, paths, pause=0.1):
    """Answer PATCHes of `paths` after `pause` seconds each; return the list holding the peak in flight."""
    active, peak, lock = [0], [0], threading.Lock()

    def slow(_request):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(pause)
        with lock:
            active[0] -= 1
        return Response("{}", content_type="application/json")

    for path in paths:
        tweakwise.expect_request(path, method="PATCH").respond_with_handler(slow)
    return peak


@pytest.mark.parametrize(("concurrency", "peak"), [("1", 1), ("2", 2)])
def test_worker_concurrency_bounds_the_entities_in_flight(
    catalog_aws, tweakwise, monkeypatch, concurrency, peak
):
    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"), WORKER_CONCURRENCY=concurrency)
    _known(catalog_aws, "A", "B")
    found = _peak_in_flight(tweakwise, ["/item/A", "/item/B"])
    response = worker.lambda_handler(_records(_upsert("a", "A"), _upsert("b", "B")), LambdaContext())
    assert response == {"batchItemFailures": []}
    assert found[0] == peak  # two entities: in parallel only when two workers are allowed


def test_records_without_a_group_are_independent(catalog_aws, tweakwise, monkeypatch):
    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"), WORKER_CONCURRENCY="3")
    _known(catalog_aws, "A", "B", "C")
    tweakwise.expect_request("/item/A", method="PATCH").respond_with_data("", status=503)
    found = _peak_in_flight(tweakwise, ["/item/B", "/item/C"])
    event = _records(_upsert("a", "A"), _upsert("b", "B"), _upsert("c", "C"))
    for record in event["Records"]:  # a standard queue's records: no MessageGroupId
        del record["attributes"]["MessageGroupId"]
    response = worker.lambda_handler(event, LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}  # B and C did not wait for A
    assert found[0] == 2


def test_later_records_of_a_failed_group_are_reported_failed_and_not_tried(
    catalog_aws, tweakwise, monkeypatch
):
    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"))
    _known(catalog_aws, "A", "B")
    tweakwise.expect_request("/item/A", method="PATCH").respond_with_data("", status=503)
    tweakwise.expect_request("/item/B", method="PATCH").respond_with_json({})
    event = _records(_upsert("a1", "A"), _upsert("a2", "A"), _upsert("b1", "B"), _upsert("a3", "A"))
    response = worker.lambda_handler(event, LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m-{i}"} for i in (0, 1, 3)]}
    assert [r.path for r, _ in tweakwise.log].count("/item/A") == 1


def test_the_publish_mark_is_written_while_the_batch_still_runs(catalog_aws, tweakwise, monkeypatch):
    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"))
    _known(catalog_aws, "A", "B")
    marks_while_slow = []

    def slow(_request):
        time.sleep(0.3)  # A was applied meanwhile: its mark is on its way
        marks_while_slow.append(worker.state.publish_marks().changed_at)
        return Response("{}", content_type="application/json")

    tweakwise.expect_request("/item/A", method="PATCH").respond_with_json({})
    tweakwise.expect_request("/item/B", method="PATCH").respond_with_handler(slow)
    started = time.time()
    context = LambdaContext(timeout=30.0)
    response = worker.lambda_handler(_records(_upsert("a", "A"), _upsert("b", "B")), context)
    assert response == {"batchItemFailures": []}
    assert marks_while_slow[0] > 0  # written before the batch ended
    # It carries the batch's deadline: a publish started before B lands is followed by another.
    assert started + 29 < worker.state.publish_marks().changed_at <= time.time() + 30


def test_the_publish_mark_is_written_while_the_first_write_is_on_its_way(catalog_aws, tweakwise, monkeypatch):
    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"))
    _known(catalog_aws, "A")
    marks_during_the_request = []

    def slow(_request):
        time.sleep(0.3)
        marks_during_the_request.append(worker.state.publish_marks().changed_at)
        return Response("{}", content_type="application/json")

    tweakwise.expect_request("/item/A", method="PATCH").respond_with_handler(slow)
    response = worker.lambda_handler(_records(_upsert("a", "A")), LambdaContext(timeout=30.0))
    assert response == {"batchItemFailures": []}
    assert marks_during_the_request[0] > 0  # not waited for after the batch's only request


def test_the_publish_sample_is_offered_while_the_batch_still_runs(catalog_aws, tweakwise, monkeypatch):
    from tweakwise.state import SAMPLE_KEY

    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"), PUBLISH_VERIFY_SAMPLE="20")
    _known(catalog_aws, "A", "B", "C", "D")
    sampled_while_slow = []

    def slow(_request):
        time.sleep(0.3)  # the others were sent meanwhile: the sample's write follows the mark's
        item = worker.state.dynamodb.get_item(TableName=worker.state.table, Key=SAMPLE_KEY).get("Item", {})
        sampled_while_slow.append(sorted(item.get("ids", {}).get("SS", [])))
        return Response("{}", content_type="application/json")

    for fast in "ABC":
        tweakwise.expect_request(f"/item/{fast}", method="PATCH").respond_with_json({})
    tweakwise.expect_request("/item/D", method="PATCH").respond_with_handler(slow)
    events = [_upsert(name.lower(), name) for name in "ABCD"]
    response = worker.lambda_handler(_records(*events), LambdaContext(timeout=30.0))
    assert response == {"batchItemFailures": []}
    [sampled] = sampled_while_slow  # offered once three items were sent, not after the batch's last request
    assert len(sampled) == 3 and set(sampled) <= set("ABCD")


def test_nothing_applied_writes_no_publish_mark(worker, sandbox):
    worker.lambda_handler(_records(_upsert("new", "A", at="2026-01-02T00:00:00Z")), LambdaContext())
    changed_at = worker.state.publish_marks().changed_at
    worker.lambda_handler(_records(_upsert("old", "A", at="2026-01-01T00:00:00Z")), LambdaContext())
    assert worker.state.publish_marks().changed_at == changed_at  # the stale event changed nothing
    worker.lambda_handler(_records(_upsert("again", "A", at="2026-01-03T00:00:00Z")), LambdaContext())
    assert worker.state.publish_marks().changed_at == changed_at  # the same fields again: nothing sent


def test_the_sqs_client_is_made_only_when_an_event_is_dead_lettered(catalog_aws, tweakwise, monkeypatch):
    import boto3

    worker = _worker_env(monkeypatch, catalog_aws, tweakwise.url_for("/"))
    _known(catalog_aws, "GOOD", "BAD")
    made = []
    real_client = boto3.client
    monkeypatch.setattr(
        boto3, "client", lambda name, *a, **kw: made.append(name) or real_client(name, *a, **kw)
    )
    tweakwise.expect_request("/item/GOOD", method="PATCH").respond_with_json({})
    tweakwise.expect_request("/item/BAD", method="PATCH").respond_with_json({"Message": "no"}, status=400)
    worker.lambda_handler(_records(_upsert("good", "GOOD")), LambdaContext())
    assert "sqs" not in made
    worker.lambda_handler(_records(_upsert("bad", "BAD"), _upsert("bad2", "BAD")), LambdaContext())
    assert made.count("sqs") == 1  # made once, for the first dead letter, and kept
    assert len(drain(catalog_aws["sqs"], catalog_aws["dlq"])) == 2
