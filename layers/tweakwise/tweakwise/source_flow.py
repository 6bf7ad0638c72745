"""The source function's flow: one EventBridge event from a platform's partner bus (commercetools, Shopify)
becomes catalog events on the catalog queue, the webhook's contract and path from there on.

1. The mapping (`source_commercetools`, `source_shopify`) names the relations it needs; they are read
   from the source map (`source_map`), and the events are made.
2. Shopify's inventory levels are kept per location and summed into one stock patch, its clock the time
   of that sum (a later sum has seen every level an earlier one saw).
3. The events are validated by the catalog models and queued (`queueing`): ordering per entity,
   deduplication, the stale guard, field clocks and the ledger are the worker's, as for the webhook.
A payload the mapping or the models refuse is dead-lettered once with the field named
(SourcePayloadError); anything else raises, so Lambda retries the event and then dead-letters it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from . import secrecy, source_commercetools, source_shopify
from .catalog import EVENT_ADAPTER, error_list
from .errors import ConfigurationError, SourcePayloadError
from .queueing import enqueue, queue_entries
from .source_map import SourceMap
from .sources import Mapped, patch

if TYPE_CHECKING:  # boto3-stubs, a dev dependency: the layer ships no stubs
    from mypy_boto3_sqs import SQSClient

    from .settings import SourceSettings

logger = logging.getLogger("tweakwise")

COMMERCETOOLS = "aws.partner/commercetools.com/"
SHOPIFY = "aws.partner/shopify.com/"
ITEM_PER = ("product", "variant")


@dataclass(frozen=True)
class SourceOutcome:
    """What became of one platform event: queued, skipped or dead-lettered, and why."""

    source: str  # "commercetools" or "shopify"
    kind: str  # the message type or topic
    queued: int = 0
    skipped: str = ""
    dead_lettered: str = ""


class SourceFlow:
    def __init__(
        self,
        settings: SourceSettings,
        source_map: SourceMap,
        sqs: SQSClient,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        if settings.shopify_item_per not in ITEM_PER:
            raise ConfigurationError(
                f"SHOPIFY_ITEM_PER must be product or variant, got {settings.shopify_item_per!r}"
            )
        self.settings, self.source_map, self.sqs, self.now = settings, source_map, sqs, now

    def handle(self, event: dict[str, Any]) -> SourceOutcome:
        source, kind = _origin(event)
        try:
            mapped = self._map(source, kind, event.get("detail"))
            if mapped.remember:
                self.source_map.remember(mapped.remember)
            events = mapped.events + self._stock(mapped)
            if not events:
                logger.info(
                    "Skipped %s %s: %s", source, kind, mapped.skipped, extra={"skipped": mapped.skipped}
                )
                return SourceOutcome(source, kind, skipped=mapped.skipped or "nothing to change")
            validated = _validated(events)
        except SourcePayloadError as exc:
            self._dead_letter(event, source, kind, str(exc))
            return SourceOutcome(source, kind, dead_lettered=str(exc))
        enqueue(self.sqs, self.settings.queue_url, queue_entries(validated))
        return SourceOutcome(source, kind, queued=len(validated))

    def _map(self, source: str, kind: str, detail: Any) -> Mapped:
        if not isinstance(detail, dict):
            raise SourcePayloadError("the event has no detail object")
        if source == "commercetools":
            known = self.source_map.get_many(source_commercetools.keys(kind, detail))
            return source_commercetools.events(kind, detail, known, self.settings)
        payload = detail.get("payload")
        known = self.source_map.get_many(
            source_shopify.keys(kind, payload if isinstance(payload, dict) else {})
        )
        return source_shopify.events(detail, known, self.settings)

    def _stock(self, mapped: Mapped) -> list[dict[str, Any]]:
        """The stock patch of kept levels: none when the level was older than the one kept."""
        kept = [self.source_map.keep_level(level) for level in mapped.levels]
        if mapped.stock is None or not any(kept):
            return []
        total = self.source_map.total(mapped.stock.levels)
        at = self.now().isoformat().replace("+00:00", "Z")
        return [patch(mapped.stock.event_id, at, mapped.stock.item_id, stock=total)]

    def _dead_letter(self, event: dict[str, Any], source: str, kind: str, reason: str) -> None:
        logger.error(
            "Dead-lettered %s %s (event %s): %s", source, kind, event.get("id"), reason,
            extra={"reason": reason, "dead_letter": True},
        )  # fmt: skip
        self.sqs.send_message(
            QueueUrl=self.settings.dead_letter_queue_url,
            MessageBody=json.dumps(event),
            MessageAttributes={
                "ErrorReason": {"DataType": "String", "StringValue": secrecy.clip(reason, 1000)},
                "EventType": {"DataType": "String", "StringValue": f"{source}:{kind}"},
            },
        )


def _origin(event: dict[str, Any]) -> tuple[str, str]:
    """(source, message type or topic) of an EventBridge event from a platform's partner event source."""
    source = str(event.get("source", ""))
    if source.startswith(COMMERCETOOLS):
        return "commercetools", str(event.get("detail-type", ""))
    if source.startswith(SHOPIFY):
        metadata = (event.get("detail") or {}).get("metadata") or {}
        return "shopify", str(metadata.get("X-Shopify-Topic", ""))
    raise ConfigurationError(
        f"an event from {source!r}: the source rules match only commercetools and Shopify"
    )


def _validated(events: list[dict[str, Any]]) -> list[Any]:
    """The events as the catalog models read them: a refusal names the mapped field."""
    found = []
    for index, event in enumerate(events):
        try:
            found.append(EVENT_ADAPTER.validate_python(event))
        except ValidationError as exc:
            problems = "; ".join(f"{e['path']}: {e['error']}" for e in error_list(exc))
            raise SourcePayloadError(
                f"mapped event {index} ({event['type']}) is refused: {problems}"
            ) from None
    return found
