"""The webhook's pure rules: signatures, limits, group ids, model boundaries; no moto, no sockets."""

from __future__ import annotations

import re
import sys

import pytest

from conftest import (
    SIGNING_SECRET,
)
from tweakwise.queueing import deduplication_id, message_group_id
from tweakwise.signatures import sign


def _upsert(event_id="e1", item_id="SKU-1", **item):
    return {
        "id": event_id,
        "type": "item.upsert",
        "item": {"id": item_id, "name": "Shoe", "price": 10, "stock": 1, **item},
    }


def _category(**category):
    return {"id": "c1", "type": "category.upsert", "category": {"id": 1, "name": "C", **category}}


def _refusal(keys, headers, body, now):
    """The SignatureError verify_signature raises, or None when the request is authentic."""
    from tweakwise.errors import SignatureError
    from tweakwise.signatures import verify_signature

    try:
        verify_signature(keys, headers, body, now)
    except SignatureError as exc:
        return exc
    return None


LIMITS = [
    # (what, event for a value, the longest value allowed, shortest)
    ("event id", lambda v: {**_upsert(), "id": v}, 128, 1),
    ("item id", lambda v: _upsert(item_id=v), 100, 1),
    ("item name", lambda v: _upsert(name=v), 500, 1),
    ("brand", lambda v: _upsert(brand=v), 250, 0),
    ("groupCode", lambda v: _upsert(groupCode=v), 100, 0),
    ("image", lambda v: _upsert(image=v), 500, 0),
    ("url", lambda v: _upsert(url=v), 500, 0),
    ("attribute name", lambda v: _upsert(attributes={v: "x"}), 500, 1),
    ("attribute value", lambda v: _upsert(attributes={"k": v}), 400, 0),
    ("attribute list value", lambda v: _upsert(attributes={"k": [v]}), 400, 0),
    ("itemId", lambda v: {"id": "d", "type": "item.delete", "itemId": v}, 100, 1),
    ("category key", lambda v: _category(id=v), 50, 1),
    ("category name", lambda v: _category(name=v), 500, 1),
    ("category url", lambda v: _category(url=v), 500, 0),
    ("parent key", lambda v: _category(parents=[v]), 50, 1),
    ("categoryId key", lambda v: {"id": "d", "type": "category.delete", "categoryId": v}, 50, 1),
]


def _entry(body_bytes: int) -> dict:
    attributes = {"type": {"DataType": "String", "StringValue": "item.upsert"}}  # 4 + 6 + 11 bytes
    return {
        "Id": "0",
        "MessageBody": "é" * (body_bytes // 2) + "x" * (body_bytes % 2),
        "MessageAttributes": attributes,
    }


def test_group_and_deduplication_ids_are_safe_for_sqs():
    from tweakwise.catalog import EVENT_ADAPTER

    item = EVENT_ADAPTER.validate_python(_upsert("é" * 128, "ünï cödé / 42 " + "x" * 80))
    delete = EVENT_ADAPTER.validate_python({"id": "d", "type": "item.delete", "itemId": item.item.id})
    for value in (message_group_id(item), deduplication_id(item)):
        assert re.fullmatch(r"[!-~]{1,128}", value)
    assert message_group_id(item) == message_group_id(delete)  # same entity: one ordered group
    assert message_group_id(item) != message_group_id(EVENT_ADAPTER.validate_python(_upsert("f", "other")))
    category = EVENT_ADAPTER.validate_python({"id": "c", "type": "category.delete", "categoryId": 5})
    keyed = EVENT_ADAPTER.validate_python({"id": "k", "type": "category.delete", "categoryId": "5"})
    assert message_group_id(category) != message_group_id(keyed)


def test_signature_helper_matches_the_documented_recipe():
    import hashlib
    import hmac

    body = b'{"events": []}'
    expected = hmac.new(SIGNING_SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SIGNING_SECRET, 1700000000, body) == f"sha256={expected}"


def test_occurred_at_may_run_ahead_by_the_signature_window_only():
    from datetime import UTC, datetime, timedelta

    from pydantic import ValidationError

    from tweakwise.catalog import EVENT_ADAPTER, MAX_FUTURE_SECONDS
    from tweakwise.signatures import TOLERANCE_SECONDS

    assert MAX_FUTURE_SECONDS == TOLERANCE_SECONDS
    now = datetime.now(UTC)
    delete = {"id": "d", "type": "item.delete", "itemId": "a"}
    ahead = (now + timedelta(seconds=MAX_FUTURE_SECONDS - 5)).isoformat()
    assert EVENT_ADAPTER.validate_python({**delete, "occurredAt": ahead}).occurredAt > now
    with pytest.raises(ValidationError):
        late = (now + timedelta(seconds=MAX_FUTURE_SECONDS + 5)).isoformat()
        EVENT_ADAPTER.validate_python({**delete, "occurredAt": late})


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"signing_secret": ""}, "at least 16"),
        ({"signing_secret": "x" * 15}, "at least 16"),
        ({"signing_secret": "x" * 16, "previous_signing_secret": "y" * 15}, "at least 16"),
        ({"signing_secret": 1234567890123456789}, "at least 16"),
        ({"previous_signing_secret": "x" * 16}, "no 'signing_secret'"),
        (["x" * 16], "must be a JSON object"),
    ],
)
def test_signing_secret_shapes_are_checked(value, problem):
    from tweakwise.errors import CredentialsError
    from tweakwise.signatures import SigningSecrets

    with pytest.raises(CredentialsError, match=problem):
        SigningSecrets("s").parse(value)


def test_signing_keys_of_16_characters_and_an_empty_previous_key_are_fine():
    from tweakwise.signatures import SigningSecrets

    assert SigningSecrets("s").parse({"signing_secret": "x" * 16, "previous_signing_secret": ""}) == (
        b"x" * 16,
    )
    assert SigningSecrets("s").parse({"signing_secret": "x" * 16, "previous_signing_secret": "y" * 16}) == (
        b"x" * 16,
        b"y" * 16,
    )


def test_the_signature_window_is_300_seconds_inclusive():
    from tweakwise.errors import TimestampError

    body, now = b"{}", 1_800_000_000
    for skew in (-300, 0, 300):
        stamp = now + skew
        headers = {"x-signature-timestamp": str(stamp), "x-signature": sign(SIGNING_SECRET, stamp, body)}
        assert _refusal([SIGNING_SECRET.encode()], headers, body, now) is None, skew
    for skew in (-301, 301):
        stamp = now + skew
        headers = {"x-signature-timestamp": str(stamp), "x-signature": sign(SIGNING_SECRET, stamp, body)}
        refusal = _refusal([SIGNING_SECRET.encode()], headers, body, now)
        assert isinstance(refusal, TimestampError)
        assert "300 s" in str(refusal)


@pytest.mark.parametrize(
    ("stamp", "why"), [("9" * 12, "from now"), ("9" * 13, "unix seconds"), ("-5", "unix")]
)
def test_timestamps_are_at_most_12_digits(stamp, why):
    from tweakwise.errors import TimestampError

    headers = {"x-signature-timestamp": stamp, "x-signature": sign(SIGNING_SECRET, stamp, b"{}")}
    refusal = _refusal([SIGNING_SECRET.encode()], headers, b"{}", 1_800_000_000)
    assert isinstance(refusal, TimestampError)
    assert why in str(refusal)


def test_each_refusal_has_its_own_type():
    from tweakwise.errors import MalformedSignatureError, MissingSignatureError, SignatureMismatchError

    now, keys = 1_800_000_000, [SIGNING_SECRET.encode()]
    cases = [
        ({"x-signature": sign(SIGNING_SECRET, now, b"{}")}, MissingSignatureError),
        ({"x-signature-timestamp": str(now)}, MissingSignatureError),
        ({"x-signature-timestamp": str(now), "x-signature": "md5=00"}, MalformedSignatureError),
        ({"x-signature-timestamp": str(now), "x-signature": "sha256=00"}, SignatureMismatchError),
    ]
    for headers, kind in cases:
        assert type(_refusal(keys, headers, b"{}", now)) is kind, headers


def test_a_signature_must_match_one_of_the_keys_exactly():
    from tweakwise.errors import SignatureMismatchError

    body, now = b"{}", 1_800_000_000
    good = sign(SIGNING_SECRET, now, body)
    keys = [b"other-key-0123456789", SIGNING_SECRET.encode()]
    assert _refusal(keys, {"x-signature-timestamp": str(now), "x-signature": good}, body, now) is None
    upper_hex = "sha256=" + good[7:].upper()  # .NET's Convert.ToHexString
    assert _refusal(keys, {"x-signature-timestamp": str(now), "x-signature": upper_hex}, body, now) is None
    for bad in (good[:-1], good + "0", good.upper(), " " + good[7:], "SHA256=" + good[7:]):
        headers = {"x-signature-timestamp": str(now), "x-signature": bad}
        assert _refusal(keys, headers, body, now) is not None, bad
    refusal = _refusal([], {"x-signature-timestamp": str(now), "x-signature": good}, body, now)
    assert isinstance(refusal, SignatureMismatchError)


@pytest.mark.parametrize(("what", "event", "longest", "shortest"), LIMITS, ids=[limit[0] for limit in LIMITS])
def test_every_text_limit_holds_at_its_value_and_breaks_one_past_it(what, event, longest, shortest):
    from pydantic import ValidationError

    from tweakwise.catalog import EVENT_ADAPTER

    EVENT_ADAPTER.validate_python(event("x" * longest))
    with pytest.raises(ValidationError):
        EVENT_ADAPTER.validate_python(event("x" * (longest + 1)))
    if shortest:
        with pytest.raises(ValidationError):
            EVENT_ADAPTER.validate_python(event(""))
    else:
        EVENT_ADAPTER.validate_python(event(""))


def test_the_event_count_is_1_to_100():
    from pydantic import ValidationError

    from tweakwise.catalog import MAX_EVENTS, WebhookBody

    assert MAX_EVENTS == 100
    WebhookBody.model_validate({"events": [_upsert(str(i)) for i in range(100)]})
    for count in (0, 101):
        with pytest.raises(ValidationError):
            WebhookBody.model_validate({"events": [_upsert(str(i)) for i in range(count)]})


@pytest.mark.parametrize(
    ("event", "entity"),
    [
        (_category(id=5), "category#id:5"),
        (_category(id="5"), "category#key:5"),
        ({"id": "d", "type": "category.delete", "categoryId": 5}, "category#id:5"),
        ({"id": "d", "type": "category.delete", "categoryId": "shoes"}, "category#key:shoes"),
        (_upsert(item_id="A"), "item#A"),
        ({"id": "d", "type": "item.delete", "itemId": "A"}, "item#A"),
    ],
)
def test_each_event_names_the_entity_it_changes(event, entity):
    from tweakwise.catalog import EVENT_ADAPTER

    assert str(EVENT_ADAPTER.validate_python(event).entity()) == entity


def test_string_limits_are_told_in_characters():
    from pydantic import ValidationError

    from tweakwise.catalog import EVENT_ADAPTER, error_list

    with pytest.raises(ValidationError) as caught:
        EVENT_ADAPTER.validate_python({"id": "", "type": "item.delete", "itemId": "x" * 101})
    assert error_list(caught.value) == [
        {"path": "id", "error": "String should have at least 1 character"},
        {"path": "itemId", "error": "String should have at most 100 characters"},
    ]


def test_a_date_without_a_time_zone_is_told_how_to_write_one():
    from pydantic import ValidationError

    from tweakwise.catalog import EVENT_ADAPTER, error_list

    with pytest.raises(ValidationError) as caught:
        EVENT_ADAPTER.validate_python({**_upsert(), "occurredAt": "2026-11-28T10:00:00"})
    assert error_list(caught.value) == [
        {
            "path": "occurredAt",
            "error": "Value error, must be an RFC 3339 date-time string with a time zone, "
            "e.g. 2026-11-28T10:00:00Z",
        }
    ]


def test_an_entry_is_measured_as_sqs_counts_it():
    from tweakwise.queueing import _size

    assert _size(_entry(100)) == 100 + 21
    assert _size(_entry(0)) == 21


def test_the_message_size_limit_holds_at_its_value():
    from tweakwise.queueing import MAX_MESSAGE_BYTES, batches, oversized

    exact, over = _entry(MAX_MESSAGE_BYTES - 21), _entry(MAX_MESSAGE_BYTES - 20)
    assert oversized([exact]) == []
    assert oversized([exact, over]) == [
        {"path": "events[1]", "error": f"the event is over {MAX_MESSAGE_BYTES} bytes once queued"}
    ]
    assert [len(c) for c in batches([exact, exact])] == [1, 1]
    half = _entry(MAX_MESSAGE_BYTES // 2 - 21)
    assert [len(c) for c in batches([half, half, half])] == [2, 1]  # two halves fill a batch exactly
    assert [len(c) for c in batches([_entry(10)] * 25)] == [10, 10, 5]


def test_a_signing_secret_of_the_wrong_shape_names_the_secret():
    from tweakwise.errors import CredentialsError
    from tweakwise.signatures import SigningSecrets

    with pytest.raises(CredentialsError) as caught:
        SigningSecrets("hooks/secret").parse("just a string")
    assert caught.value.secret_id == "hooks/secret"
    assert str(caught.value) == (
        "Secret 'hooks/secret' must be a JSON object with 'signing_secret' (and optionally "
        "'previous_signing_secret')"
    )


def test_a_request_without_a_body_has_an_empty_one():
    from tweakwise.webhook import WebhookRequest

    assert WebhookRequest({}).raw_body() == b""
    assert WebhookRequest({}, "e30=", base64_encoded=True).raw_body() == b"{}"


@pytest.mark.parametrize(
    "value",
    [
        {"previous_signing_secret": "x" * 16},
        {"signing_secret": "short"},
        {"signing_secret": "x" * 16, "previous_signing_secret": 5},
    ],
)
def test_every_signing_secret_error_names_the_secret(value):
    from tweakwise.errors import CredentialsError
    from tweakwise.signatures import SigningSecrets

    with pytest.raises(CredentialsError) as caught:
        SigningSecrets("hooks/secret").parse(value)
    assert caught.value.secret_id == "hooks/secret"
    assert str(caught.value).startswith("Secret 'hooks/secret' ")


def test_an_empty_previous_key_is_skipped_and_the_current_one_still_counts():
    from tweakwise.signatures import SigningSecrets

    keys = SigningSecrets("s").parse({"previous_signing_secret": "", "signing_secret": "k" * 16})
    assert keys == (b"k" * 16,)


def test_the_fuzzers_own_signer_signs_as_the_webhook_verifies(monkeypatch):
    import importlib
    import types

    from tweakwise import signatures

    # Schemathesis lives in its own virtualenv: a stand-in for its hook decorator is enough here.
    monkeypatch.setitem(sys.modules, "schemathesis", types.SimpleNamespace(hook=lambda function: function))
    fuzz_hooks = importlib.import_module("scripts.fuzz_hooks")

    body = b'{"events": []}'
    assert fuzz_hooks.sign("k" * 32, 1795834800, body) == signatures.sign("k" * 32, 1795834800, body)
    assert fuzz_hooks.SIGNATURE_HEADER.lower() == signatures.SIGNATURE_HEADER
    assert fuzz_hooks.TIMESTAMP_HEADER.lower() == signatures.TIMESTAMP_HEADER
