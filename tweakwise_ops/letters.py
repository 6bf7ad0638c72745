"""The catalog dead-letter queue, read without losing anything: each message is held out of sight while
it is read, then released (or moved). Its reason: the worker's `ErrorReason` attribute when the worker
parked it itself (Tweakwise refused it), else the failure the worker recorded for its event id (SQS moved
it after its last delivery, and SQS records no reason).

The queue is FIFO: while a message of a group is held, the group's later messages stay out of sight, so a
read sees the first dead letter of each entity; moving one (redrive) brings the next into view."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

HOLD_SECONDS = 30  # how long a message being read stays out of sight (released at once when done)


@dataclass(frozen=True)
class Letter:
    message_id: str
    receipt: str
    body: str
    group: str
    event_id: str
    event_type: str
    entity: str  # the EntityKey text (item#A1, category#key:shoes), empty for an unreadable body
    reason: str
    deliveries: int  # receives, as SQS counts them
    failed_attempts: int  # attempts the worker recorded as failed (0: none recorded)

    def summary(self) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "eventId": self.event_id,
            "type": self.event_type,
            "entity": self.entity,
            "reason": self.reason,
            "deliveries": self.deliveries,
            "failedAttempts": self.failed_attempts,
        }


def _event(body: str) -> tuple[str, str, str]:
    """(event id, type, entity) of a queued catalog event; empty strings for what cannot be read."""
    from pydantic import ValidationError

    from tweakwise.catalog import EVENT_ADAPTER

    try:
        event = EVENT_ADAPTER.validate_json(body)
    except ValidationError:
        try:
            raw = json.loads(body)
        except ValueError:
            return "", "", ""
        raw = raw if isinstance(raw, dict) else {}
        return str(raw.get("id", "")), str(raw.get("type", "")), ""
    return event.id, event.type, str(event.entity())


def read(sqs: Any, url: str, hold: int = HOLD_SECONDS) -> Iterator[dict[str, Any]]:
    """Every message in sight, each once, held for `hold` seconds."""
    seen: set[str] = set()
    while True:
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=hold,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            return
        for message in fresh:
            seen.add(message["MessageId"])
            yield message


def letter(message: dict[str, Any]) -> Letter:
    """A received message as a letter: its event read once, its reason the worker's attribute if any."""
    event_id, event_type, entity = _event(message["Body"])
    attributes, given = message.get("Attributes", {}), message.get("MessageAttributes", {})
    return Letter(
        message["MessageId"],
        message["ReceiptHandle"],
        message["Body"],
        attributes.get("MessageGroupId", ""),
        event_id,
        event_type or given.get("EventType", {}).get("StringValue", ""),
        entity,
        given.get("ErrorReason", {}).get("StringValue", ""),
        int(attributes.get("ApproximateReceiveCount", 1)),
        0,
    )


def read_letters(sqs: Any, url: str, failures: Any) -> list[Letter]:
    """The dead letters in sight, with their reasons (`failures`: a `state.SyncState`)."""
    found = [letter(m) for m in read(sqs, url)]
    recorded = failures.failures([held.event_id for held in found if held.event_id])
    return [_with(held, recorded.get(held.event_id)) for held in found]


def _with(held: Letter, failure: Any) -> Letter:
    """The letter with the worker's record of its failed attempts (a reason it does not carry itself)."""
    if failure is None:
        return held
    return replace(held, reason=held.reason or failure.reason, failed_attempts=failure.attempts)


def release(sqs: Any, url: str, letters: list[Letter]) -> None:
    """Back in sight at once."""
    for start in range(0, len(letters), 10):
        chunk = letters[start : start + 10]
        entries: Any = [
            {"Id": str(i), "ReceiptHandle": held.receipt, "VisibilityTimeout": 0}
            for i, held in enumerate(chunk)
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
