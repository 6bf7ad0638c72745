"""The catalog worker: queued webhook events applied to Tweakwise, in order per entity.

- `to_item_fields` (and `CatalogSync._upsert_category`) map the webhook contract to Tweakwise's field names.
- `CategoryRefs` turns the shop's category keys into Tweakwise's numeric ids (cached per container).
- `StaleGuard` keeps, per entity, the newest `occurredAt` applied (DynamoDB, conditional writes, TTL),
  so a sender's late retry never reverts newer data.
- `CatalogSync.apply` applies one queued event; a Tweakwise 400 goes to the dead-letter queue at once.
- `ConcurrentFifoProcessor` runs the entities of one SQS batch in parallel, each entity in order.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pydantic
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor
from aws_lambda_powertools.utilities.batch.base import BatchProcessor

from .client import TweakwiseClient
from .dynamo import conditional_update
from .errors import NotFoundError, PathParameterError, ValidationError
from .events import (
    EVENT_ADAPTER,
    CategoryDelete,
    CategoryUpsert,
    Item,
    ItemDelete,
    ItemUpsert,
    error_list,
)

logger = logging.getLogger("tweakwise")

APPLIED, STALE, REJECTED = "applied", "stale", "rejected"
UNREADABLE = "unreadable"  # the EventType attribute of a dead letter whose body is no valid event


def to_item_fields(item: Item, category_ids: list[int] | None) -> dict[str, Any]:
    """PATCH /item body: only what the event gives (PATCH changes only the fields sent)."""
    fields: dict[str, Any] = {"Name": item.name, "Price": item.price, "Stock": item.stock}
    for source, target in (
        ("brand", "Brand"),
        ("groupCode", "GroupCode"),
        ("image", "Image"),
        ("url", "Url"),
    ):
        value = getattr(item, source)
        if value is not None:
            fields[target] = value
    if category_ids is not None:
        fields["Categories"] = category_ids
    if item.attributes is not None:
        fields["Attributes"] = [
            {"Key": key, "Values": value if isinstance(value, list) else [value]}
            for key, value in item.attributes.items()
        ]
    return fields


class UnknownCategoryError(Exception):
    """A category key that Tweakwise does not know (yet): retried, as its upsert may still be on its way."""


class CategoryRefs:
    """Numeric ids for category references; string keys are looked up once per container."""

    def __init__(self, client: TweakwiseClient):
        self.client = client
        self._ids: dict[str, int] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def find(self, ref: int | str) -> int | None:
        if isinstance(ref, int):
            return ref
        with self._lock:
            if ref in self._ids:
                return self._ids[ref]
            key_lock = self._key_locks.setdefault(ref, threading.Lock())
        with key_lock:  # concurrent records with the same key share one lookup
            with self._lock:
                if ref in self._ids:
                    return self._ids[ref]
            try:
                found = self.client.get_category_by_key(ref)
            except NotFoundError:
                return None
            category_id = int(found["CategoryId"])
            with self._lock:
                self._ids[ref] = category_id
            return category_id

    def require(self, refs: list[int | str]) -> list[int]:
        ids = []
        for ref in refs:
            category_id = self.find(ref)
            if category_id is None:
                raise UnknownCategoryError(f"category key {ref!r} is not in Tweakwise (yet)")
            ids.append(category_id)
        return ids

    def forget(self, ref: int | str) -> None:
        with self._lock:
            self._ids.pop(str(ref), None)


class StaleGuard:
    """Claims an entity for an event: succeeds unless a newer event for it was applied already."""

    def __init__(self, dynamodb: Any, table: str, ttl_days: int = 30):
        self.dynamodb = dynamodb
        self.table = table
        self.ttl_seconds = ttl_days * 86400

    def claim(self, entity: str, occurred_at: datetime, event_id: str) -> bool:
        # Claim before applying: a retry of this same event (equal time) claims again and re-applies,
        # which is safe because every Tweakwise write here is an idempotent upsert or delete.
        stamp = occurred_at.timestamp()
        return conditional_update(
            self.dynamodb,
            TableName=self.table,
            Key={"entity": {"S": entity}},
            UpdateExpression="SET occurredAt = :t, eventId = :e, expiresAt = :x",
            ConditionExpression="attribute_not_exists(occurredAt) OR occurredAt <= :t",
            ExpressionAttributeValues={
                ":t": {"N": repr(stamp)},
                ":e": {"S": event_id},
                ":x": {"N": str(int(time.time()) + self.ttl_seconds)},
            },
        )


class CatalogSync:
    def __init__(
        self,
        client: TweakwiseClient,
        guard: StaleGuard,
        sqs: Any,
        dead_letter_queue_url: str,
    ):
        self.client = client
        self.guard = guard
        self.sqs = sqs
        self.dead_letter_queue_url = dead_letter_queue_url
        self.categories = CategoryRefs(client)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _count(self, outcome: str) -> str:
        with self._lock:
            self.counts[outcome] += 1
        return outcome

    def apply_record(self, record: Any) -> str:
        """Record handler for the batch processor: raise to have SQS deliver the record again."""
        try:
            event = EVENT_ADAPTER.validate_json(record.body)
        except pydantic.ValidationError as exc:
            # A poison message never becomes valid: park it now, so the rest of its group goes on.
            reason = "; ".join(f"{e['path']}: {e['error']}" for e in error_list(exc))
            self._dead_letter(record, UNREADABLE, "", f"not a valid catalog event: {reason}")
            return self._count(REJECTED)
        kind, ref = event.entity()
        if event.occurredAt is not None and not self.guard.claim(f"{kind}#{ref}", event.occurredAt, event.id):
            logger.info("Skipped stale %s %s for %s %r", event.type, event.id, kind, ref)
            return self._count(STALE)
        try:
            self.apply(event)
        except (ValidationError, PathParameterError) as exc:
            # Bad data does not get better by retrying: park it in the DLQ with the reason.
            self._dead_letter(record, event.type, event.id, str(exc))
            return self._count(REJECTED)
        return self._count(APPLIED)

    def apply(self, event: Any) -> None:
        if isinstance(event, ItemUpsert):
            ids = (
                self.categories.require(event.item.categories) if event.item.categories is not None else None
            )
            self.client.upsert_item(event.item.id, to_item_fields(event.item, ids))
        elif isinstance(event, ItemDelete):
            _ignore_missing(lambda: self.client.delete_item(event.itemId))
        elif isinstance(event, CategoryUpsert):
            self._upsert_category(event)
        elif isinstance(event, CategoryDelete):
            category_id = self.categories.find(event.categoryId)
            if category_id is not None:
                _ignore_missing(lambda: self.client.delete_category(category_id))
            self.categories.forget(event.categoryId)

    def _upsert_category(self, event: CategoryUpsert) -> None:
        category = event.category
        fields: dict[str, Any] = {"Name": category.name}
        if category.rank is not None:
            fields["Rank"] = category.rank
        if category.parents is not None:
            fields["Parents"] = self.categories.require(category.parents)
        if category.url is not None:
            fields["Url"] = category.url
        if isinstance(category.id, int):
            self.client.upsert_category(category.id, fields)
            return
        category_id = self.categories.find(category.id)
        if category_id is None:
            # Keys are the shop's own ids: Tweakwise assigns the numeric id.
            self.client.create_category({"Key": category.id, **fields})
        else:
            try:
                self.client.patch_category(category_id, fields)
            except NotFoundError:  # deleted meanwhile: create it again under its key
                self.categories.forget(category.id)
                self.client.create_category({"Key": category.id, **fields})

    def _dead_letter(self, record: Any, event_type: str, event_id: str, reason: str) -> None:
        logger.error(
            "Rejected %s %s (message %s), moved to the dead-letter queue: %s",
            event_type,
            event_id,
            record.message_id,
            reason,
        )
        attributes = record.attributes
        self.sqs.send_message(
            QueueUrl=self.dead_letter_queue_url,
            MessageBody=record.body,
            MessageGroupId=attributes.message_group_id,
            MessageDeduplicationId=attributes.message_deduplication_id or record.message_id,
            MessageAttributes={
                "ErrorReason": {"DataType": "String", "StringValue": reason[:1000]},
                "EventType": {"DataType": "String", "StringValue": event_type},
                "SourceMessageId": {"DataType": "String", "StringValue": record.message_id},
            },
        )


def _ignore_missing(call: Any) -> None:
    with contextlib.suppress(NotFoundError):  # already gone: the delete is done
        call()


class ConcurrentFifoProcessor(SqsFifoPartialProcessor):
    """Powertools' FIFO processor, skipping only a failed record's group, with the groups of one batch
    run in parallel (at most `max_workers`). Within a group records run in order; after a failure the
    group's later records are reported failed unprocessed, so they cannot overtake it."""

    def __init__(self, max_workers: int = 10):
        super().__init__(skip_group_on_error=True)
        self.max_workers = max(1, max_workers)
        self.raise_on_entire_batch_failure = False  # report every failure instead of failing the batch

    def process(self) -> list[tuple]:
        groups: dict[str, list[dict]] = {}
        for record in self.records:
            group = record.get("attributes", {}).get("MessageGroupId") or record.get("messageId")
            groups.setdefault(group, []).append(record)
        if self.max_workers == 1 or len(groups) == 1:
            return [r for records in groups.values() for r in self._process_group(records)]
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(groups))) as pool:
            done = list(pool.map(self._process_group, groups.values()))
        return [result for results in done for result in results]

    def _process_group(self, records: list[dict]) -> list[tuple]:
        results: list[tuple] = []
        failed = False
        for record in records:
            if failed:
                batch_record = self._to_batch_type(record, event_type=self.event_type, model=self.model)
                results.append(
                    BatchProcessor.failure_handler(self, batch_record, self.group_circuit_breaker_exc)
                )
                continue
            result = BatchProcessor._process_record(self, record)
            failed = result[0] == "fail"
            results.append(result)
        return results
