"""Catalog events as SQS FIFO messages: one message group per entity (its changes apply in order), a
deduplication id per event (a sender's retry is dropped), and SendMessageBatch calls within SQS's limits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import (
    QueueError,
)

if TYPE_CHECKING:  # boto3-stubs, a dev dependency: the layer ships no stubs
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef as Entry

SQS_BATCH = 10


# SQS's limit for one message and for one SendMessageBatch call, whichever region and quota.
MAX_MESSAGE_BYTES = 256 * 1024


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()  # validated text: no lone surrogates


def message_group_id(event: Any) -> str:
    """Same entity, same group: its changes apply in order. A hash keeps SQS's 128 ASCII chars rule."""
    key = event.entity()
    return f"{key.kind}-{_hash(key.ref)}"


def deduplication_id(event: Any) -> str:
    return _hash(event.id)


def queue_entries(events: Sequence[Any]) -> list[Entry]:
    return [
        {
            "Id": str(index),
            "MessageBody": event.model_dump_json(exclude_unset=True),  # an explicit null clears
            "MessageGroupId": message_group_id(event),
            "MessageDeduplicationId": deduplication_id(event),
            "MessageAttributes": {"type": {"DataType": "String", "StringValue": event.type}},
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


def enqueue(sqs: SQSClient, queue_url: str, entries: Sequence[Entry]) -> None:
    """Send every entry, in order. Raises QueueError if any is not accepted."""
    from botocore.exceptions import BotoCoreError, ClientError

    for chunk in batches(entries):
        try:
            answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=chunk)
        except (BotoCoreError, ClientError) as exc:
            raise QueueError(f"SQS send_message_batch failed: {type(exc).__name__}") from exc
        if answer.get("Failed"):
            codes = sorted({f["Code"] for f in answer["Failed"]})
            raise QueueError(f"SQS refused {len(answer['Failed'])} messages ({', '.join(codes)})")
