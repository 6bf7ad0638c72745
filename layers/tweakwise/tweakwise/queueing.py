"""Catalog events as SQS FIFO messages: one message group per entity (its changes apply in order), a
deduplication id per event (a sender's retry is dropped), and SendMessageBatch calls within SQS's limits,
made at once where they share no message group (`lanes`). An event here is a validated one: a model
(`catalog`, the native sources) or a typed dict (the webhook's compiled contract).
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

from .contract_rules import entity_of, event_id, event_type
from .errors import QueueError

if TYPE_CHECKING:  # boto3-stubs, a dev dependency: the layer ships no stubs
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef as Entry

SQS_BATCH = 10
SEND_CONCURRENCY = 10  # calls in flight at once: a 100-event request's ten (boto3's pool holds ten)


# SQS's limit for one message and for one SendMessageBatch call, whichever region and quota.
MAX_MESSAGE_BYTES = 256 * 1024


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()  # validated text: no lone surrogates


def message_group_id(event: Any) -> str:
    """Same entity, same group: its changes apply in order. A hash keeps SQS's 128 ASCII chars rule."""
    key = entity_of(event)
    return f"{key.kind}-{_hash(key.ref)}"


def deduplication_id(event: Any) -> str:
    return _hash(event_id(event))


def message_body(event: Any) -> str:
    """The event as JSON with only the fields it was sent with: an explicit null clears, left out keeps."""
    if isinstance(event, dict):
        return to_json(event).decode()
    return event.model_dump_json(exclude_unset=True)


def queue_entries(events: Sequence[Any]) -> list[Entry]:
    return [
        {
            "Id": str(index),
            "MessageBody": message_body(event),
            "MessageGroupId": message_group_id(event),
            "MessageDeduplicationId": deduplication_id(event),
            "MessageAttributes": {"type": {"DataType": "String", "StringValue": event_type(event)}},
        }
        for index, event in enumerate(events)
    ]


def _size(entry: Entry) -> int:
    attributes = entry["MessageAttributes"]
    return len(entry["MessageBody"].encode()) + sum(
        len(name) + len(value["DataType"]) + len(value["StringValue"].encode())
        for name, value in attributes.items()
    )


def oversized(entries: Sequence[Entry]) -> list[dict[str, str]]:
    """The events SQS could never take, as [{path, error}]."""
    return [
        {"path": f"events[{index}]", "error": f"the event is over {MAX_MESSAGE_BYTES} bytes once queued"}
        for index, entry in enumerate(entries)
        if _size(entry) > MAX_MESSAGE_BYTES
    ]


def batches(entries: Sequence[Entry]) -> list[list[Entry]]:
    """Entries in order, in SendMessageBatch calls of at most ten entries and MAX_MESSAGE_BYTES."""
    chunks: list[list[Entry]] = []
    sizes: list[int] = []
    for entry in entries:
        size = _size(entry)
        if chunks and len(chunks[-1]) < SQS_BATCH and sizes[-1] + size <= MAX_MESSAGE_BYTES:
            chunks[-1].append(entry)
            sizes[-1] += size
        else:
            chunks.append([entry])
            sizes.append(size)
    return chunks


def lanes(entries: Sequence[Entry]) -> list[list[list[Entry]]]:
    """The SendMessageBatch calls for `entries`, in lanes that share no message group: a lane's calls are
    made one after another (SQS FIFO keeps a group's order across calls only when they are made in
    order), lanes at once. A group that fits one call shares it with others, whole and in order; a group
    that needs more calls is a lane of its own."""
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        groups.setdefault(entry["MessageGroupId"], []).append(entry)
    found: list[list[list[Entry]]] = []
    packed: list[list[Entry]] = []
    room = 0
    for group in groups.values():
        calls = batches(group)
        if len(calls) > 1:
            found.append(calls)
            continue
        size = sum(map(_size, group))
        if packed and len(packed[-1]) + len(group) <= SQS_BATCH and room >= size:
            packed[-1] += group
            room -= size
        else:
            packed.append(list(group))
            room = MAX_MESSAGE_BYTES - size
    return [[call] for call in packed] + found


def _send_lane(sqs: SQSClient, queue_url: str, calls: list[list[Entry]]) -> QueueError | None:
    """A lane's calls in order, up to the first that fails (what comes after it in its groups waits for
    the sender's retry, so it cannot overtake it)."""
    from botocore.exceptions import BotoCoreError, ClientError

    for chunk in calls:
        try:
            answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=chunk)
        except (BotoCoreError, ClientError) as exc:
            return QueueError(f"SQS send_message_batch failed: {type(exc).__name__}")
        if answer.get("Failed"):
            codes = sorted({f["Code"] for f in answer["Failed"]})
            return QueueError(f"SQS refused {len(answer['Failed'])} messages ({', '.join(codes)})")
    return None


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """Made on the first request that needs it, reused while the container is warm."""
    return ThreadPoolExecutor(max_workers=SEND_CONCURRENCY, thread_name_prefix="sqs-send")


def enqueue(sqs: SQSClient, queue_url: str, entries: Sequence[Entry]) -> None:
    """Send every entry, each message group in order, the lanes at once. Raises QueueError if any is not
    accepted (after every lane has ended: a failed lane stops, the others are sent)."""
    found = lanes(entries)
    if len(found) == 1 or SEND_CONCURRENCY == 1:
        errors = [_send_lane(sqs, queue_url, calls) for calls in found]
    else:
        futures = [
            _pool().submit(contextvars.copy_context().run, _send_lane, sqs, queue_url, calls)
            for calls in found
        ]
        errors = [future.result() for future in futures]
    failed = [error for error in errors if error is not None]
    if failed:
        raise failed[0]
