"""What a published item must look like on the shopper-facing API, against what this stack sent."""

from __future__ import annotations

import json

from tweakwise.entity import EntityKey
from tweakwise.ledger import Entry, field_digests
from tweakwise.verify import Verification, compare, completed_event, mismatch_message


def _sent(**fields) -> Entry:
    return Entry(EntityKey.item("A"), field_digests(fields), 0.0)


def test_an_item_shown_as_sent_matches_whatever_the_case_of_the_frontends_fields():
    assert (
        compare(
            "A", _sent(Name="Shoe", Price=89.95, Stock=3), {"itemno": "A", "title": "Shoe", "price": 89.95}
        )
        == []
    )
    assert compare("A", _sent(Name="Shoe", Price=129), {"Title": "Shoe", "Price": "129.0"}) == []


def test_another_name_or_price_is_a_mismatch_that_says_what_is_shown():
    found = compare("A", _sent(Name="Shoe", Price=10), {"title": "Old shoe", "price": 12})
    assert [(m["field"], m["shown"]) for m in found] == [("Name", "Old shoe"), ("Price", 12)]


def test_presence_and_absence():
    assert compare("A", _sent(Name="Shoe"), None) == [{"id": "A", "field": "*", "why": "sent, not shown"}]
    assert compare("A", None, {"title": "Shoe"}) == [{"id": "A", "field": "*", "why": "deleted, still shown"}]
    assert compare("A", None, None) == []


def test_a_field_this_stack_never_sent_is_not_compared():
    assert compare("A", _sent(Stock=3), {"title": "Named in the Tweakwise app", "price": 5}) == []


def test_the_completion_event_and_the_mismatch_notice():
    verification = Verification(
        3, [{"id": "A", "field": "Price", "why": "another price is shown", "shown": 12}]
    )
    entry = completed_event(verification, "nl", "default", 1796428800.0)
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
        "tweakwise.serverless", "tweakwise.publish.completed", "default"
    )  # fmt: skip
    detail = json.loads(entry["Detail"])
    assert (detail["checked"], detail["verified"], detail["instance"]) == (3, 2, "nl")
    assert detail["completedAt"] == "2026-12-05T00:00:00+00:00"
    subject, message = mismatch_message(verification, "nl")
    assert "1 published items differ" in subject and "A Price: another price is shown" in message
