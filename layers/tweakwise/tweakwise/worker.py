"""The catalog worker's queue side: an SQS record becomes a catalog event for `sync.CatalogSync`, and an event
retrying cannot fix (not a valid event, or refused by Tweakwise with a 400) goes to the dead-letter queue at
once, with its reason, so the rest of its message group goes on. `fifo.ConcurrentFifoProcessor` runs the
entities of one SQS batch in parallel, each entity in order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import ValidationError

from . import secrecy
from .catalog import EVENT_ADAPTER, error_list
from .errors import PathParameterError, QueueError, RejectedError
from .fifo import Record
from .lazy import Lazy
from .sync import CatalogSync, Outcome

if TYPE_CHECKING:  # boto3-stubs, a dev dependency: the layer ships no stubs
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger("tweakwise")

UNREADABLE = "unreadable"  # the EventType attribute of a dead letter whose body is no valid event


class QueueWorker:
    """Applies queued records through one `CatalogSync`. Thread-safe."""

    def __init__(
        self,
        sync: CatalogSync,
        sqs: SQSClient | Callable[[], SQSClient] | None = None,
        dead_letter_queue_url: str = "",
    ):
        """`sqs`: a client, or a function that makes one when the first event is dead-lettered (most
        invocations never need it)."""
        self.sync = sync
        self._sqs = Lazy(sqs)
        self.dead_letter_queue_url = dead_letter_queue_url
        self._lags: list[float] = []  # seconds from each applied change's occurredAt to Tweakwise's answer
        self._lags_lock = threading.Lock()

    def take_lags(self) -> list[float]:
        """The sync lags of the changes applied since the last call (the handler emits them per batch)."""
        with self._lags_lock:
            lags, self._lags = self._lags, []
        return lags

    @property
    def sqs(self) -> SQSClient | None:
        return self._sqs.get()

    def apply_record(self, record: Record) -> Outcome:
        """Record handler for the batch processor: raise to have SQS deliver the record again."""
        try:
            event = EVENT_ADAPTER.validate_json(record["body"])
        except ValidationError as exc:
            # A poison message never becomes valid: park it now, so the rest of its group goes on.
            reason = "; ".join(f"{e['path']}: {e['error']}" for e in error_list(exc))
            self._dead_letter(record, UNREADABLE, "", f"not a valid catalog event: {reason}")
            return Outcome.REJECTED
        try:
            outcome = self.sync.apply_change(self.sync.prepare(event))
        except (RejectedError, PathParameterError) as exc:
            # Bad data does not get better by retrying: park it in the DLQ with the reason.
            self._dead_letter(record, event.type, event.id, str(exc))
            return Outcome.REJECTED
        except Exception as exc:
            self._remember_failure(event.id, exc)
            raise  # delivered again; after the last delivery SQS dead-letters it, with no reason of its own
        if outcome.applied and event.occurredAt is not None:
            with self._lags_lock:
                self._lags.append(max(0.0, time.time() - event.occurredAt.timestamp()))
        if outcome is Outcome.STALE:
            logger.info("Skipped stale %s %s for %s", event.type, event.id, event.entity())
        elif outcome is Outcome.MISSING:
            # Not retried, not dead-lettered: the next full upsert or snapshot creates the item.
            logger.warning(
                "Skipped %s %s: item %r is not in Tweakwise, and a patch cannot create it (it has no name); "
                "send an item.upsert or a snapshot that holds it",
                event.type,
                event.id,
                event.item.id,
                extra={"item_id": event.item.id, "reason": "missing"},
            )
        return outcome

    def _remember_failure(self, event_id: str, exc: Exception) -> None:
        """Keep why this attempt failed, by event id, for `tweakwise-ops trace` and `redrive --reason`.
        Never in the way of the retry: a failure to keep it is logged, and the original error raised."""
        reason = secrecy.clip(f"{type(exc).__name__}: {exc}", 1000)
        try:
            self.sync.state.record_failure(event_id, reason)
        except Exception as recording:  # the event's own error is the one to raise
            logger.warning("Could not keep why event %s failed: %s", event_id, type(recording).__name__)

    def _dead_letter(self, record: Record, event_type: str, event_id: str, reason: str) -> None:
        message_id = record["messageId"]
        logger.error(
            "Rejected %s %s (message %s), moved to the dead-letter queue: %s",
            event_type,
            event_id,
            message_id,
            reason,
            extra={"message_id": message_id, "reason": reason, "dead_letter": True},
        )
        sqs = self.sqs
        if sqs is None:
            raise QueueError("no dead-letter queue to move a rejected event to")
        attributes = record.get("attributes", {})
        sqs.send_message(
            QueueUrl=self.dead_letter_queue_url,
            MessageBody=record["body"],
            MessageGroupId=attributes.get("MessageGroupId") or message_id,
            MessageDeduplicationId=attributes.get("MessageDeduplicationId") or message_id,
            MessageAttributes={
                "ErrorReason": {"DataType": "String", "StringValue": secrecy.clip(reason, 1000)},
                "EventType": {"DataType": "String", "StringValue": event_type},
                "SourceMessageId": {"DataType": "String", "StringValue": message_id},
            },
        )
