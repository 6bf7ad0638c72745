"""The catalog webhook: every answer of the contract, signatures and their rotation, the FIFO messages."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import (
    REGION,
    SIGNING_SECRET,
    WEBHOOK_SECRET_ID,
    LambdaContext,
    api_event,
    drain,
    load_event,
    load_handler,
    signed_headers,
)
from tweakwise.signatures import sign

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
        answer = module.lambda_handler(api_event(raw, all_headers, base64_encoded), LambdaContext())
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

    monkeypatch.setattr("tweakwise.webhook.handle_webhook", boom)
    answer = webhook({"events": [_upsert()]})
    assert answer["statusCode"] == 503
    assert "bug" not in answer["body"] and "Traceback" not in answer["body"]


def test_other_routes_are_404(webhook):
    event = api_event(b"{}")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/webhooks/other"
    event["routeKey"] = "POST /webhooks/other"
    assert webhook.module.lambda_handler(event, LambdaContext())["statusCode"] == 404


@pytest.mark.parametrize("version", ["REST API", "HTTP API 1.0"])
def test_a_rest_api_event_is_named_for_what_it_is(webhook, catalog_aws, version, tweakwise_log):
    body = json.dumps({"events": [_upsert()]})
    event = {  # API Gateway's payload format 1.0, as a REST API (or an HTTP API set to 1.0) sends it
        "resource": "/webhooks/catalog",
        "path": "/webhooks/catalog",
        "httpMethod": "POST",
        "headers": signed_headers(body.encode()),
        "requestContext": {"resourcePath": "/webhooks/catalog", "httpMethod": "POST", "stage": "prod"},
        "body": body,
        "isBase64Encoded": False,
    }
    if version == "HTTP API 1.0":
        event["version"] = "1.0"
    answer = webhook.module.lambda_handler(event, LambdaContext())
    assert answer["statusCode"] == 500  # the sender keeps its events and retries
    message = json.loads(answer["body"])["message"]
    assert "expects an API Gateway HTTP API event (payload format 2.0" in message
    assert "got a REST API or payload format 1.0 event" in message
    assert message in tweakwise_log and _queued(catalog_aws) == []


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


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
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


# -- every input gets a 2xx or a 4xx naming what is wrong ------------------------------------------------


def _category(**category):
    return {"id": "c1", "type": "category.upsert", "category": {"id": 1, "name": "C", **category}}


@pytest.mark.parametrize(
    ("event", "path", "error"),
    [
        (_upsert(price=10**308), "events[0].item.price", "between 0 and"),
        (_upsert(price=-(10**400)), "events[0].item.price", "between 0 and"),
        (_upsert(price=10**12 + 1), "events[0].item.price", "between 0 and"),
        (_upsert(price=1e12 + 1), "events[0].item.price", "less than or equal"),
        (_upsert(stock=2**31), "events[0].item.stock", "less than or equal"),
        (_upsert(stock=-(2**31) - 1), "events[0].item.stock", "greater than or equal"),
        (_upsert(categories=[2**31]), "events[0].item.categories[0]", "less than or equal"),
        (_category(id=2**31), "events[0].category.id", "less than or equal"),
        (_category(rank=2**31), "events[0].category.rank", "less than or equal"),
        (_category(rank=-(2**31) - 1), "events[0].category.rank", "greater than or equal"),
        (_category(parents=[2**31]), "events[0].category.parents[0]", "less than or equal"),
        (_upsert(name="a\x00b"), "events[0].item.name", "U+0000"),
        (_upsert(item_id="a\nb"), "events[0].item.id", "U+000A"),
        (_upsert(brand="\x7f"), "events[0].item.brand", "U+007F"),
        (_upsert(url="\x85"), "events[0].item.url", "U+0085"),
        (_upsert(attributes={"k": "\ufffe"}), "events[0].item.attributes.k", "U+FFFE"),
        (_upsert(attributes={"k": ["ok", "\uffff"]}), "events[0].item.attributes.k[1]", "U+FFFF"),
        (_upsert(attributes={"k": "\x08"}), "events[0].item.attributes.k", "U+0008"),
        (_category(id="k\x01"), "events[0].category.id", "U+0001"),
        ({**_upsert(), "id": "e\x1f"}, "events[0].id", "U+001F"),
        ({"id": "d", "type": "item.delete", "itemId": "."}, "events[0].itemId", "URL path"),
        ({"id": "d", "type": "item.delete", "itemId": ".."}, "events[0].itemId", "URL path"),
        ({"id": "d", "type": "category.delete", "categoryId": ".."}, "events[0].categoryId", "URL path"),
        ({**_upsert(), "occurredAt": 1700000000}, "events[0].occurredAt", "RFC 3339"),
        ({**_upsert(), "occurredAt": "1700000000"}, "events[0].occurredAt", "RFC 3339"),
        ({**_upsert(), "occurredAt": "2026-01-01T00:00:00"}, "events[0].occurredAt", "RFC 3339"),
        ({**_upsert(), "occurredAt": "2999-01-01T00:00:00Z"}, "events[0].occurredAt", "300 s in the future"),
    ],
)
def test_out_of_range_numbers_control_characters_dot_ids_and_bad_dates_are_400(
    webhook, catalog_aws, event, path, error
):
    answer = webhook({"events": [event]})
    assert answer["statusCode"] == 400, answer["json"]
    found = {e["path"]: e["error"] for e in answer["json"]["errors"]}
    assert error in found[path]
    assert answer["json"]["errorCount"] == len(found) <= 2  # a union may also say which branch failed
    assert _queued(catalog_aws) == []


@pytest.mark.parametrize(
    "event",
    [
        _upsert(price=10**12, stock=2**31 - 1, name="non\u00a0breaking", attributes={"k": "a\tb\nc\rd"}),
        _upsert(item_id="a/..", categories=[0, 2**31 - 1]),
        _upsert(item_id="%2e%2e", brand="", url=""),
        _upsert(item_id="..."),
        _category(rank=-(2**31), parents=[2**31 - 1, "key"]),
        {**_upsert(), "occurredAt": "2026-01-01T00:00:00.123456789+02:00"},
    ],
)
def test_values_at_the_limits_are_accepted(webhook, catalog_aws, event):
    answer = webhook({"events": [event]})
    assert answer["statusCode"] == 202, answer["json"]


def test_the_400_answer_lists_at_most_100_errors_and_counts_them_all(webhook, catalog_aws):
    events = [_upsert(str(i), price=-1, stock=-(2**40)) for i in range(100)]
    answer = webhook({"events": events})
    assert answer["statusCode"] == 400
    assert len(answer["json"]["errors"]) == 100
    assert answer["json"]["errorCount"] == 200
    assert answer["json"]["errors"][0]["path"] == "events[0].item.price"


def test_a_300_kb_body_of_errors_gets_a_small_answer(webhook, catalog_aws):
    many = {f"k{i}": ["\x00"] * 30 for i in range(1000)}
    raw = json.dumps({"events": [_upsert(attributes=many)]}).encode()
    assert len(raw) > 300_000
    answer = webhook(raw)
    assert answer["statusCode"] == 400
    assert answer["json"]["errorCount"] >= 900
    assert len(answer["body"]) < 50_000


def test_an_event_too_large_for_one_sqs_message_is_400(webhook, catalog_aws):
    from tweakwise.queueing import MAX_MESSAGE_BYTES

    big = {f"attribute-{i}": "v" * 400 for i in range(MAX_MESSAGE_BYTES // 400 + 1)}
    answer = webhook({"events": [_upsert("small"), _upsert("big", item_id="B", attributes=big)]})
    assert answer["statusCode"] == 400
    assert answer["json"]["errors"] == [
        {"path": "events[1]", "error": f"the event is over {MAX_MESSAGE_BYTES} bytes once queued"}
    ]
    assert _queued(catalog_aws) == []


def test_large_events_are_sent_in_batches_sqs_accepts(webhook, catalog_aws):
    from tweakwise.queueing import MAX_MESSAGE_BYTES, batches, queue_entries

    attributes = {f"a{i}": "v" * 400 for i in range(150)}  # about 62 KB per event
    events = [_upsert(str(i), f"SKU-{i}", attributes=attributes) for i in range(12)]
    answer = webhook({"events": events})
    assert answer["statusCode"] == 202
    # 12 entities: their calls go at once, so across entities the queue's order is the calls' order
    assert sorted(json.loads(m["Body"])["id"] for m in _queued(catalog_aws)) == sorted(map(str, range(12)))
    from tweakwise.catalog import WebhookBody

    chunks = batches(queue_entries(WebhookBody.model_validate({"events": events}).events))
    assert [len(c) for c in chunks] == [4, 4, 4]
    for chunk in chunks:
        assert sum(len(e["MessageBody"]) for e in chunk) <= MAX_MESSAGE_BYTES


def test_the_events_of_one_entity_reach_the_queue_in_the_requests_order(webhook, catalog_aws):
    events = [_upsert(f"e{n}", "SKU-1" if n % 3 == 0 else f"SKU-X{n}", stock=n) for n in range(100)]
    assert webhook({"events": events})["statusCode"] == 202
    queued = [json.loads(m["Body"]) for m in _queued(catalog_aws)]
    assert len(queued) == 100
    assert [e["id"] for e in queued if e["item"]["id"] == "SKU-1"] == [f"e{n}" for n in range(0, 100, 3)]


@pytest.mark.parametrize("body", ["e30=!", "e30", "ZXZlbnRz\n", "é"])
def test_base64_is_decoded_strictly(webhook, catalog_aws, body):
    event = api_event(b"{}", signed_headers(b"{}"), base64_encoded=True)
    event["body"] = body
    answer = webhook.module.lambda_handler(event, LambdaContext())
    assert answer["statusCode"] == 400
    assert "base64" in json.loads(answer["body"])["message"]


def test_a_partial_sqs_batch_failure_is_503_and_names_no_event_accepted(webhook, catalog_aws, monkeypatch):
    sent = []

    def send_message_batch(QueueUrl, Entries):
        sent.append([e["Id"] for e in Entries])
        return {
            "Successful": [{"Id": e["Id"]} for e in Entries[1:]],
            "Failed": [{"Id": Entries[0]["Id"], "Code": "InternalError", "SenderFault": False}],
        }

    monkeypatch.setattr(webhook.module.sqs, "send_message_batch", send_message_batch)
    answer = webhook({"events": [_upsert(str(i), f"S{i}") for i in range(3)]})
    assert answer["statusCode"] == 503
    assert "retry" in answer["json"]["message"]
    assert sent == [["0", "1", "2"]]


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_bad_signatures_delay_a_rotated_key_by_the_refresh_interval_at_most(
    webhook, catalog_aws, secrets, monkeypatch
):
    from tweakwise import signatures as module
    from tweakwise.credentials import SecretCredentials

    clock = _Clock()
    monkeypatch.setattr(module.time, "monotonic", clock)
    reads = []
    verifier = webhook.module.verifier
    real_get = verifier.secrets.get
    monkeypatch.setattr(verifier.secrets, "get", lambda force=False: reads.append(force) or real_get(force))
    raw = json.dumps({"events": [_upsert(event_id="warm")]}).encode()
    assert webhook(raw)["statusCode"] == 202
    forged = signed_headers(raw, "whsec-attacker-0000000000000000")
    for _ in range(50):  # a stream of bad signatures: one re-read, then none within the interval
        assert webhook(raw, forged, sign_it=False)["statusCode"] == 401
        clock.now += 0.01
    assert reads.count(True) == 1
    secrets({"signing_secret": NEW_SECRET}, WEBHOOK_SECRET_ID)  # rotated right after the attacker's re-read
    fresh = json.dumps({"events": [_upsert(event_id="new-key")]}).encode()
    assert webhook(fresh, signed_headers(fresh, NEW_SECRET), sign_it=False)["statusCode"] == 401
    clock.now += module.REFRESH_INTERVAL + 0.01
    assert webhook(fresh, signed_headers(fresh, NEW_SECRET), sign_it=False)["statusCode"] == 202
    assert reads.count(True) == 2
    assert module.REFRESH_INTERVAL == 5.0
    assert module.SigningSecrets.DEFAULT_MAX_AGE == 60 < SecretCredentials.DEFAULT_MAX_AGE


def test_the_refresh_is_due_only_after_the_whole_interval(webhook, catalog_aws, monkeypatch):
    from tweakwise import signatures as module

    clock = _Clock()
    monkeypatch.setattr(module.time, "monotonic", clock)
    verifier = webhook.module.verifier
    forced = []
    real_get = verifier.secrets.get
    monkeypatch.setattr(verifier.secrets, "get", lambda force=False: forced.append(force) or real_get(force))
    raw = b'{"events": []}'
    forged = signed_headers(raw, "whsec-attacker-0000000000000000")
    webhook(raw, forged, sign_it=False)
    clock.now += module.REFRESH_INTERVAL
    webhook(raw, forged, sign_it=False)
    assert forced.count(True) == 1  # exactly the interval: not yet
    clock.now += 0.001
    webhook(raw, forged, sign_it=False)
    assert forced.count(True) == 2


def test_a_removed_key_passes_for_the_cache_lifetime_only(webhook, catalog_aws, secrets, monkeypatch):
    secrets({"signing_secret": NEW_SECRET, "previous_signing_secret": SIGNING_SECRET}, WEBHOOK_SECRET_ID)
    raw = json.dumps({"events": [_upsert(event_id="during")]}).encode()
    assert webhook(raw, signed_headers(raw, SIGNING_SECRET), sign_it=False)["statusCode"] == 202
    secrets({"signing_secret": NEW_SECRET}, WEBHOOK_SECRET_ID)  # the old key is revoked
    verifier = webhook.module.verifier
    assert verifier.secrets.max_age == 60
    provider = verifier.secrets.provider
    # Past the cache lifetime the secret is read again, and the revoked key no longer passes.
    monkeypatch.setattr(provider, "has_not_expired_in_cache", lambda key: False)
    raw = json.dumps({"events": [_upsert(event_id="after")]}).encode()
    assert webhook(raw, signed_headers(raw, SIGNING_SECRET), sign_it=False)["statusCode"] == 401


# -- boundaries: each limit holds at its value and breaks one past it -----------------------------------


@pytest.mark.parametrize(("extra", "status"), [(0, 400), (1, 413)])
def test_the_body_limit_is_one_mib_exactly(webhook, catalog_aws, extra, status):
    from tweakwise.webhook import MAX_BODY_BYTES

    head, tail = b'{"events": [], "pad": "', b'"}'
    raw = head + b"x" * (MAX_BODY_BYTES + extra - len(head) - len(tail)) + tail
    assert len(raw) == MAX_BODY_BYTES + extra
    assert webhook(raw)["statusCode"] == status


def test_occurred_at_exactly_at_the_skew_limit_is_accepted_and_a_microsecond_later_is_not(monkeypatch):
    from datetime import UTC, datetime, timedelta

    from pydantic import ValidationError

    from tweakwise import catalog, contract_rules

    now = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return now

    monkeypatch.setattr(contract_rules, "datetime", Frozen)
    delete = {"id": "d", "type": "item.delete", "itemId": "a"}
    limit = now + timedelta(seconds=catalog.MAX_FUTURE_SECONDS)
    catalog.EVENT_ADAPTER.validate_python({**delete, "occurredAt": limit.isoformat()})
    with pytest.raises(ValidationError, match="300 s in the future"):
        late = limit + timedelta(microseconds=1)
        catalog.EVENT_ADAPTER.validate_python({**delete, "occurredAt": late.isoformat()})


def test_queued_bodies_carry_only_the_fields_sent(webhook, catalog_aws):
    event = {**_upsert(brand="B"), "occurredAt": "2026-11-28T10:00:00Z"}
    assert webhook({"events": [event]})["statusCode"] == 202
    [message] = _queued(catalog_aws)
    assert json.loads(message["Body"]) == {
        "id": "e1",
        "type": "item.upsert",
        "occurredAt": "2026-11-28T10:00:00Z",
        "item": {"id": "SKU-1", "name": "Shoe", "price": 10, "stock": 1, "brand": "B"},
    }


def test_queue_failures_are_logged_with_what_sqs_said(webhook, catalog_aws, monkeypatch, tweakwise_log):
    def refuse(QueueUrl, Entries):
        failed = [{"Id": e["Id"], "Code": "InvalidMessageContents", "SenderFault": True} for e in Entries[:2]]
        failed.append({"Id": Entries[2]["Id"], "Code": "InternalError", "SenderFault": False})
        return {"Successful": [], "Failed": failed}

    send = webhook.module.sqs.send_message_batch
    monkeypatch.setattr(webhook.module.sqs, "send_message_batch", refuse)
    assert webhook({"events": [_upsert(str(i), f"S{i}") for i in range(3)]})["statusCode"] == 503
    assert (
        "Webhook could not queue 3 events: SQS refused 3 messages (InternalError, InvalidMessageContents)"
        in (tweakwise_log)
    )
    tweakwise_log.clear()
    catalog_aws["sqs"].delete_queue(QueueUrl=catalog_aws["queue"])
    monkeypatch.setattr(webhook.module.sqs, "send_message_batch", send)
    assert webhook({"events": [_upsert("x")]})["statusCode"] == 503
    assert tweakwise_log == [
        "Webhook could not queue 1 events: SQS send_message_batch failed: QueueDoesNotExist"
    ]


def test_union_errors_are_joined_and_field_names_are_kept_whole(webhook, catalog_aws):
    answer = webhook({"events": [_upsert(attributes={"XL": 5, "size (EU)": ["ok"]})]})
    assert answer["statusCode"] == 400
    assert answer["json"]["errors"] == [
        {
            "path": "events[0].item.attributes.XL",
            "error": "Input should be a valid string or Input should be a valid list",
        }
    ]


def test_a_signature_that_is_not_ascii_is_refused_as_malformed(webhook, catalog_aws):
    raw = json.dumps({"events": [_upsert()]}).encode()
    headers = {**signed_headers(raw), "x-signature": "sha256=" + "é" * 64}
    answer = webhook(raw, headers, sign_it=False)
    assert answer["statusCode"] == 401
    assert answer["json"]["message"] == "Unauthorized: x-signature must look like sha256=<hex>"


def test_every_refusal_says_what_to_do(webhook, catalog_aws, monkeypatch):
    from tweakwise.webhook import MAX_BODY_BYTES

    event = api_event(b"{}", signed_headers(b"{}"), base64_encoded=True)
    event["body"] = "!!"
    answer = webhook.module.lambda_handler(event, LambdaContext())
    assert json.loads(answer["body"]) == {"message": "The body is not valid base64 although it is marked so"}
    too_big = webhook(b"x" * (MAX_BODY_BYTES + 1))["json"]
    assert too_big == {
        "message": f"The body is over {MAX_BODY_BYTES} bytes; send at most 100 events per request"
    }
    assert webhook(b"[")["json"] == {
        "message": "The body is not valid JSON",
        "errors": [{"path": "(body)", "error": "invalid JSON"}],
        "errorCount": 1,
    }
    assert webhook({"events": []})["json"]["message"] == "The body does not match the catalog webhook schema"
    assert webhook({"events": [_upsert()]})["json"] == {"accepted": 1}
    catalog_aws["sqs"].delete_queue(QueueUrl=catalog_aws["queue"])
    assert webhook({"events": [_upsert("e2")]})["json"] == {
        "message": "The events could not be queued; retry the same request (it is deduplicated)"
    }


def test_a_body_with_a_lone_surrogate_is_checked_over_its_bytes_and_refused_as_json(webhook, catalog_aws):
    text = '{"events": "\ud800"}'
    raw = text.encode("utf-8", "surrogatepass")
    event = api_event(b"{}", signed_headers(raw))
    event["body"] = text
    answer = webhook.module.lambda_handler(event, LambdaContext())
    assert answer["statusCode"] == 400


def test_an_api_gateway_event_without_a_body_is_answered_as_an_empty_body(webhook, catalog_aws):
    event = api_event(b"", signed_headers(b""))
    del event["body"]
    answer = webhook.module.lambda_handler(event, LambdaContext())
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["message"] == "The body is not valid JSON"


def test_the_verifier_checks_against_the_time_it_is_given(webhook, catalog_aws):
    verifier = webhook.module.verifier
    body, then = b"{}", 1_000_000_000
    headers = {"x-signature-timestamp": str(then), "x-signature": sign(SIGNING_SECRET, then, body)}
    from tweakwise.errors import TimestampError

    verifier.verify(headers, body, now=then + 10)
    with pytest.raises(TimestampError, match="300 s"):
        verifier.verify(headers, body)  # now: decades later


def test_an_unreadable_signing_secret_is_a_logged_503_that_says_retry_later(
    webhook, catalog_aws, tweakwise_log
):
    boto3.client("secretsmanager", region_name=REGION).delete_secret(
        SecretId=WEBHOOK_SECRET_ID, ForceDeleteWithoutRecovery=True
    )
    answer = webhook({"events": [_upsert()]})
    assert (answer["statusCode"], answer["json"]) == (
        503,
        {"message": "The webhook is not configured yet; retry later"},
    )
    assert tweakwise_log == [
        f"Webhook cannot check signatures: Secret '{WEBHOOK_SECRET_ID}' was not found; "
        "check WEBHOOK_SECRET_ID and the region, or create it"
    ]


def test_a_refused_signature_is_logged_with_its_reason(webhook, catalog_aws, tweakwise_log):
    raw = json.dumps({"events": [_upsert()]}).encode()
    webhook(raw, {**signed_headers(raw), "x-signature": "md5=1"}, sign_it=False)
    assert tweakwise_log == ["Webhook refused: x-signature must look like sha256=<hex>"]
