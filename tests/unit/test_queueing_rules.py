"""The webhook's SendMessageBatch calls: made at once where they share no message group, each group's
events in the order the request holds them, and a failed call stops only what comes after it in its
groups."""

from __future__ import annotations

import random
import threading
import time

import pytest

from tweakwise.catalog import WebhookBody
from tweakwise.errors import QueueError
from tweakwise.queueing import SQS_BATCH, enqueue, lanes, queue_entries


def _entries(events: list[tuple[str, str]]) -> list:
    """(event id, item id) pairs as the webhook queues them."""
    body = {
        "events": [
            {"id": e, "type": "item.patch", "item": {"id": item, "stock": n}}
            for n, (e, item) in enumerate(events)
        ]
    }
    return queue_entries(WebhookBody.model_validate(body).events)


def _mixed() -> list[tuple[str, str]]:
    """100 events: 25 of SKU-1 and 5 of SKU-2 spread among 70 of distinct items."""
    events, one, two = [], iter(range(25)), iter(range(5))
    for n in range(100):
        if n % 4 == 0:
            events.append((f"one-{next(one)}", "SKU-1"))
        elif n % 20 == 1:
            events.append((f"two-{next(two)}", "SKU-2"))
        else:
            events.append((f"other-{n}", f"SKU-X{n}"))
    return events


def _ids(entries) -> list[str]:
    import json

    return [json.loads(e["MessageBody"])["id"] for e in entries]


def _by_group(entries) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for entry, event_id in zip(entries, _ids(entries), strict=True):
        groups.setdefault(entry["MessageGroupId"], []).append(event_id)
    return groups


class RecordingSqs:
    """SendMessageBatch after a random few milliseconds, recording what it accepted in the order it did;
    a call holding `fail_on` answers with that entry failed (and takes the others, as SQS may)."""

    def __init__(self, fail_on: str = ""):
        self.fail_on = fail_on
        self.accepted: list[dict] = []
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0

    def send_message_batch(self, QueueUrl, Entries):
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(random.uniform(0.001, 0.004))  # noqa: S311 - jitter, not security
        with self.lock:
            self.in_flight -= 1
            failed = [e for e in Entries if self.fail_on in _ids([e])]
            self.accepted += [e for e in Entries if e not in failed]
        return {
            "Successful": [{"Id": e["Id"]} for e in Entries if e not in failed],
            "Failed": [{"Id": e["Id"], "Code": "InternalError", "SenderFault": False} for e in failed],
        }


def test_lanes_share_no_group_keep_each_groups_order_and_fill_calls():
    entries = _entries(_mixed())
    found = lanes(entries)
    owner: dict[str, int] = {}
    for number, lane in enumerate(found):
        for call in lane:
            assert 1 <= len(call) <= SQS_BATCH
            for entry in call:
                assert owner.setdefault(entry["MessageGroupId"], number) == number
    sent = [entry for lane in found for call in lane for entry in call]
    assert sorted(_ids(sent)) == sorted(_ids(entries))
    assert _by_group(sent) == _by_group(entries)
    calls = sum(len(lane) for lane in found)
    assert calls == 11  # 25 of SKU-1: 3 calls of its own; the other 75 events (71 groups) fill 8 more
    assert [len(call) for call in found[-1]] == [10, 10, 5]


@pytest.mark.parametrize("run", range(5))
def test_concurrent_sends_keep_each_groups_order(run):
    entries = _entries(_mixed())
    sqs = RecordingSqs()
    enqueue(sqs, "queue", entries)
    assert _by_group(sqs.accepted) == _by_group(entries)
    assert len(sqs.accepted) == 100
    assert sqs.most_in_flight > 1  # the calls overlapped


def test_a_failed_call_stops_what_follows_in_its_groups_and_nothing_else():
    entries = _entries(_mixed())
    sqs = RecordingSqs(fail_on="one-12")  # in SKU-1's second call
    with pytest.raises(QueueError, match=r"SQS refused 1 messages \(InternalError\)"):
        enqueue(sqs, "queue", entries)
    accepted = _by_group(sqs.accepted)
    expected = _by_group(entries)
    sku_1 = entries[0]["MessageGroupId"]
    assert accepted[sku_1] == [f"one-{n}" for n in range(20) if n != 12]  # its third call is never made
    assert {g: ids for g, ids in accepted.items() if g != sku_1} == {
        g: ids for g, ids in expected.items() if g != sku_1
    }


def test_one_group_is_sent_in_order_one_call_after_another():
    entries = _entries([(f"e{n}", "SKU-1") for n in range(30)])
    sqs = RecordingSqs()
    enqueue(sqs, "queue", entries)
    assert _ids(sqs.accepted) == [f"e{n}" for n in range(30)]
    assert sqs.most_in_flight == 1
