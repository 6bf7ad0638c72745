"""The catalog webhook: every answer of the contract, signatures and their rotation, the FIFO messages."""

from __future__ import annotations

import json
import re
import time

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import (
    REGION,
    SIGNING_SECRET,
    WEBHOOK_SECRET_ID,
    FakeContext,
    api_event,
    drain,
    load_event,
    load_handler,
    signed_headers,
)
from tweakwise.webhook import deduplication_id, message_group_id, sign

NEW_SECRET = "whsec-rotated-fedcba9876543210fedcba98"


@pytest.fixture
def webhook(catalog_aws, monkeypatch):
    monkeypatch.setenv("WEBHOOK_SECRET_ID", WEBHOOK_SECRET_ID)
    monkeypatch.setenv("CATALOG_QUEUE_URL", catalog_aws["queue"])
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "catalog-webhook")
    module = load_handler("catalog_webhook")

    def call(body, headers=None, base64_encoded=False, sign_it=True):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        all_headers = {**(signed_headers(raw) if sign_it else {}), **(headers or {})}
        answer = module.lambda_handler(api_event(raw, all_headers, base64_encoded), FakeContext())
        answer["json"] = json.loads(answer["body"]) if answer.get("body") else None
        return answer

    call.module = module
    return call


def _queued(catalog_aws):
    return drain(catalog_aws["sqs"], catalog_aws["queue"])


def _upsert(event_id="e1", item_id="SKU-1", **item):
    return {
        "id": event_id,
        "type": "item.upsert",
        "item": {"id": item_id, "name": "Shoe", "price": 10, "stock": 1, **item},
    }


def test_sample_event_is_accepted_and_queued_in_order(webhook, catalog_aws):
    sample = load_event("catalog_webhook.json")
    answer = webhook(sample["body"].encode())
    assert answer["statusCode"] == 202
    assert answer["json"] == {"accepted": 3}
    assert answer["headers"]["Content-Type"] == "application/json"
    messages = _queued(catalog_aws)
    bodies = [json.loads(m["Body"]) for m in messages]
    assert [b["id"] for b in bodies] == ["evt-1001", "evt-1002", "evt-1003"]
    assert bodies[1]["item"]["id"] == "SKU-42/blue"
    for message, body in zip(messages, bodies, strict=True):
        assert message["MessageAttributes"]["type"]["StringValue"] == body["type"]


def test_group_and_deduplication_ids_are_safe_for_sqs():
    from tweakwise.events import EVENT_ADAPTER

    item = EVENT_ADAPTER.validate_python(_upsert("é" * 128, "ünï cödé / 42 " + "x" * 80))
    delete = EVENT_ADAPTER.validate_python({"id": "d", "type": "item.delete", "itemId": item.item.id})
    for value in (message_group_id(item), deduplication_id(item)):
        assert re.fullmatch(r"[!-~]{1,128}", value)
    assert message_group_id(item) == message_group_id(delete)  # same entity: one ordered group
    assert message_group_id(item) != message_group_id(EVENT_ADAPTER.validate_python(_upsert("f", "other")))
    category = EVENT_ADAPTER.validate_python({"id": "c", "type": "category.delete", "categoryId": 5})
    keyed = EVENT_ADAPTER.validate_python({"id": "k", "type": "category.delete", "categoryId": "5"})
    assert message_group_id(category) != message_group_id(keyed)


def test_a_redelivered_webhook_is_not_queued_twice(webhook, catalog_aws):
    body = {"events": [_upsert("same-id")]}
    assert webhook(body)["statusCode"] == 202
    assert webhook(body)["statusCode"] == 202
    assert len(_queued(catalog_aws)) == 1


def test_base64_bodies_are_verified_over_the_decoded_bytes(webhook, catalog_aws):
    raw = json.dumps({"events": [_upsert(item_id="Grüße")]}, ensure_ascii=False).encode()
    answer = webhook(raw, base64_encoded=True)
    assert answer["statusCode"] == 202
    assert json.loads(_queued(catalog_aws)[0]["Body"])["item"]["id"] == "Grüße"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"x-signature": None}, "missing"),
        ({"x-signature-timestamp": None}, "missing"),
        ({"x-signature": "sha256=" + "0" * 64}, "does not match"),
        ({"x-signature": "md5=abc"}, "sha256=<hex>"),
        ({"x-signature-timestamp": "yesterday"}, "unix seconds"),
        ({"x-signature-timestamp": "١٢٣"}, "unix seconds"),
    ],
)
def test_bad_signatures_are_401_and_queue_nothing(webhook, catalog_aws, headers, reason):
    raw = json.dumps({"events": [_upsert()]}).encode()
    sent = {k: v for k, v in {**signed_headers(raw), **headers}.items() if v is not None}
    answer = webhook(raw, sent, sign_it=False)
    assert answer["statusCode"] == 401
    assert reason in answer["json"]["message"]
    assert _queued(catalog_aws) == []


@pytest.mark.parametrize("skew", [-301, 301, -100000])
def test_timestamps_more_than_300_s_off_are_401(webhook, catalog_aws, skew):
    raw = json.dumps({"events": [_upsert()]}).encode()
    answer = webhook(raw, signed_headers(raw, timestamp=int(time.time()) + skew), sign_it=False)
    assert answer["statusCode"] == 401
    assert "300 s" in answer["json"]["message"]


def test_a_signature_over_another_body_is_401(webhook, catalog_aws):
    raw = json.dumps({"events": [_upsert()]}).encode()
    headers = signed_headers(raw)
    answer = webhook(raw.replace(b'"price": 10', b'"price": 1'), headers, sign_it=False)
    assert answer["statusCode"] == 401


def test_previous_signing_secret_is_accepted_while_senders_rotate(webhook, catalog_aws, secrets):
    secrets({"signing_secret": NEW_SECRET, "previous_signing_secret": SIGNING_SECRET}, WEBHOOK_SECRET_ID)
    for secret in (SIGNING_SECRET, NEW_SECRET):
        raw = json.dumps({"events": [_upsert(event_id=secret[:10])]}).encode()
        assert webhook(raw, signed_headers(raw, secret), sign_it=False)["statusCode"] == 202
    raw = json.dumps({"events": [_upsert(event_id="other")]}).encode()
    assert (
        webhook(raw, signed_headers(raw, "whsec-not-ours-000000000000"), sign_it=False)["statusCode"] == 401
    )


def test_a_rotated_secret_is_picked_up_by_a_warm_function(webhook, catalog_aws, secrets):
    raw = json.dumps({"events": [_upsert(event_id="before")]}).encode()
    assert webhook(raw)["statusCode"] == 202  # caches the old secret
    secrets({"signing_secret": NEW_SECRET}, WEBHOOK_SECRET_ID)
    raw = json.dumps({"events": [_upsert(event_id="after")]}).encode()
    assert webhook(raw, signed_headers(raw, NEW_SECRET), sign_it=False)["statusCode"] == 202
    # the old key no longer works once the secret dropped it
    raw = json.dumps({"events": [_upsert(event_id="old-key")]}).encode()
    assert webhook(raw, signed_headers(raw, SIGNING_SECRET), sign_it=False)["statusCode"] == 401


def test_body_over_one_mib_is_413(webhook, catalog_aws):
    raw = b'{"events": [], "pad": "' + b"x" * (1024 * 1024) + b'"}'
    answer = webhook(raw)
    assert answer["statusCode"] == 413
    assert _queued(catalog_aws) == []


@pytest.mark.parametrize("raw", [b"not json", b'{"events": [', b"\xff\xfe", b"[" * 100000])
def test_invalid_json_is_400(webhook, catalog_aws, raw):
    answer = webhook(raw)
    assert answer["statusCode"] == 400
    assert answer["json"]["errors"] == [{"path": "(body)", "error": "invalid JSON"}]


def test_schema_errors_name_every_offending_field_and_queue_nothing(webhook, catalog_aws):
    body = {
        "events": [
            _upsert("ok-1"),
            _upsert("bad-1", price=-1, brand="b" * 251),
            {"id": "bad-2", "type": "item.rename"},
            {"id": "bad-3", "type": "category.upsert", "category": {"id": 1.5, "name": ""}},
            {"id": "", "type": "item.delete", "itemId": "x" * 101, "occurredAt": "yesterday"},
            _upsert("ok-2", attributes={"color": ["x" * 401]}, categories=[1, "key", True]),
        ]
    }
    answer = webhook(body)
    assert answer["statusCode"] == 400
    paths = {e["path"] for e in answer["json"]["errors"]}
    assert {
        "events[1].item.price",
        "events[1].item.brand",
        "events[2]",
        "events[3].category.id",
        "events[3].category.name",
        "events[4].id",
        "events[4].itemId",
        "events[4].occurredAt",
        "events[5].item.attributes.color[0]",
        "events[5].item.categories[2]",
    } <= paths
    assert all(e["error"] for e in answer["json"]["errors"])
    assert _queued(catalog_aws) == []


@pytest.mark.parametrize(
    "body",
    [
        {"events": []},
        {"events": [_upsert(str(i)) for i in range(101)]},
        {"events": [_upsert("dup"), _upsert("dup", item_id="other")]},
        {"events": [_upsert()], "extra": True},
        {"events": [{**_upsert(), "item": {"id": "a", "name": "n", "price": "10", "stock": 1}}]},
        {"events": [{**_upsert(), "item": {"id": "a", "name": "n", "price": 1, "stock": 1.5}}]},
        [1, 2],
    ],
)
def test_contract_limits_are_400(webhook, catalog_aws, body):
    answer = webhook(body)
    assert answer["statusCode"] == 400, answer["json"]
    assert _queued(catalog_aws) == []


def test_one_hundred_events_are_accepted(webhook, catalog_aws):
    answer = webhook({"events": [_upsert(str(i), f"SKU-{i}") for i in range(100)]})
    assert answer["json"] == {"accepted": 100}
    assert len(_queued(catalog_aws)) == 100


def test_sqs_failure_is_503_so_the_sender_retries(webhook, catalog_aws):
    catalog_aws["sqs"].delete_queue(QueueUrl=catalog_aws["queue"])
    answer = webhook({"events": [_upsert()]})
    assert answer["statusCode"] == 503
    assert "retry" in answer["json"]["message"]


def test_missing_signing_secret_is_503_not_a_stack_trace(webhook, catalog_aws):
    boto3.client("secretsmanager", region_name=REGION).delete_secret(
        SecretId=WEBHOOK_SECRET_ID, ForceDeleteWithoutRecovery=True
    )
    answer = webhook({"events": [_upsert()]})
    assert answer["statusCode"] == 503
    assert "Traceback" not in answer["body"]


def test_unexpected_failure_is_a_retryable_503_without_a_stack_trace(webhook, catalog_aws, monkeypatch):
    def boom(*_args, **_kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(webhook.module, "handle_webhook", boom)
    answer = webhook({"events": [_upsert()]})
    assert answer["statusCode"] == 503
    assert "bug" not in answer["body"] and "Traceback" not in answer["body"]


def test_other_routes_are_404(webhook):
    event = api_event(b"{}")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/webhooks/other"
    event["routeKey"] = "POST /webhooks/other"
    assert webhook.module.lambda_handler(event, FakeContext())["statusCode"] == 404


# -- properties: no body, header set or size makes it answer 5xx; a rejected request queues nothing ------

header_values = st.one_of(st.none(), st.text(max_size=80), st.sampled_from(["sha256=", "0", "-1", "9" * 20]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=2000),
    json_values.map(lambda v: json.dumps({"events": v}).encode()),
    st.lists(
        st.fixed_dictionaries(
            {"id": st.text(max_size=130), "type": st.sampled_from(["item.upsert", "item.delete", "x"])},
            optional={"item": json_values, "itemId": json_values, "occurredAt": st.text(max_size=30)},
        ),
        max_size=5,
    ).map(lambda events: json.dumps({"events": events}).encode()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=bodies, timestamp=header_values, signature=header_values, sign_it=st.booleans(), b64=st.booleans()
)
def test_no_request_gets_a_5xx_and_rejected_ones_queue_nothing(
    webhook, catalog_aws, body, timestamp, signature, sign_it, b64
):
    headers = signed_headers(body) if sign_it else {}
    if timestamp is not None and not sign_it:
        headers["x-signature-timestamp"] = timestamp
    if signature is not None and not sign_it:
        headers["x-signature"] = signature
    answer = webhook(body, headers, base64_encoded=b64, sign_it=False)
    assert answer["statusCode"] in (202, 400, 401, 413)
    queued = _queued(catalog_aws)
    if answer["statusCode"] != 202:
        assert queued == []
    else:
        assert len(queued) <= answer["json"]["accepted"]  # deduplicated ids from earlier examples
    assert "Traceback" not in answer["body"]


def test_signature_helper_matches_the_documented_recipe():
    import hashlib
    import hmac

    body = b'{"events": []}'
    expected = hmac.new(SIGNING_SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SIGNING_SECRET, 1700000000, body) == f"sha256={expected}"
