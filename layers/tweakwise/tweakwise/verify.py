"""Publish verification: once a publish has ended, the items it carried (a sample the worker kept, at most
PUBLISH_VERIFY_SAMPLE) are looked up on Tweakwise's shopper-facing API and compared with what this stack
sent them (the ledger's digests): present, with the name and price sent; absent when this stack deleted
it. The frontend shows no stock, so stock is not compared.

The shopper-facing API: `GET {gateway}/products/{instance key}/{item id}` (the instance key alone, no
token), gateway `https://gateway.tweakwisenavigator.com`; a missing item answers 404. The publisher then
emits `PublishVerified` and `PublishMismatches`, notifies the alarm topic of mismatches with their ids, and
puts `tweakwise.publish.completed` on the account's default event bus (docs/tasks.md)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from .entity import EntityKey
from .errors import ConnectionFailedError, UnexpectedResponseError
from .ledger import Entry, Ledger, body_digest

logger = logging.getLogger("tweakwise")

DEFAULT_FRONTEND_URL = "https://gateway.tweakwisenavigator.com"
EVENT_SOURCE = "tweakwise.serverless"
COMPLETED = "tweakwise.publish.completed"
TIMEOUT = (5.0, 10.0)
FRONTEND_PATH = "/products/{instancekey}/{itemId}"  # as errors name it


@dataclass(frozen=True)
class Verification:
    """What a publish check found: items checked, and each mismatch."""

    checked: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def verified(self) -> int:
        return self.checked - len({m["id"] for m in self.mismatches})


def _shown(found: dict[str, Any], *names: str) -> Any:
    """A field of the frontend's item, whatever its case."""
    lowered = {str(k).lower(): v for k, v in found.items()}
    return next((lowered[n] for n in names if n in lowered), None)


def _prices(value: Any) -> set[str]:
    """The digests the ledger may hold for a price the frontend shows (89.95, or 129 sent as an int)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return set()
    found = {body_digest({"Price": number})}
    if number.is_integer():
        found.add(body_digest({"Price": int(number)}))
    return found


def compare(item_id: str, entry: Entry | None, shown: dict[str, Any] | None) -> list[dict[str, Any]]:
    """What shoppers see that differs from what this stack sent."""
    if entry is None:
        return [] if shown is None else [{"id": item_id, "field": "*", "why": "deleted, still shown"}]
    if shown is None:
        return [{"id": item_id, "field": "*", "why": "sent, not shown"}]
    found = []
    name = _shown(shown, "title", "name")
    if "Name" in entry.fields and body_digest({"Name": name}) != entry.fields["Name"]:
        found.append({"id": item_id, "field": "Name", "why": "another name is shown", "shown": name})
    price = _shown(shown, "price")
    if "Price" in entry.fields and entry.fields["Price"] not in _prices(price):
        found.append({"id": item_id, "field": "Price", "why": "another price is shown", "shown": price})
    return found


class Frontend:
    """The shopper-facing API, read with the instance key alone."""

    def __init__(self, base_url: str, instance_key: str, session: Any):
        self.base_url, self.instance_key, self.session = base_url.rstrip("/"), instance_key, session

    def product(self, item_id: str) -> dict[str, Any] | None:
        """The item as shoppers see it, None when they do not. Errors name the path without the key."""
        import requests

        url = f"{self.base_url}/products/{quote(self.instance_key, safe='')}/{quote(item_id, safe='')}"
        try:  # TWN-Source marks the look-up as ours: it does not count in the shop's analytics.
            answer = self.session.get(url, headers={"TWN-Source": EVENT_SOURCE}, timeout=TIMEOUT)
            if answer.status_code == 404:
                return None
            if answer.status_code != 200:
                raise UnexpectedResponseError("GET", FRONTEND_PATH, answer.status_code, answer.text[:200])
            found = answer.json()
        except requests.RequestException as exc:  # its text holds the URL, and with it the instance key
            raise ConnectionFailedError("GET", FRONTEND_PATH, None, type(exc).__name__) from None
        return found if isinstance(found, dict) else {}


def verify(item_ids: tuple[str, ...], ledger: Ledger, frontend: Frontend) -> Verification:
    entries = ledger.get_many([EntityKey.item(i) for i in item_ids])
    mismatches = []
    for item_id in item_ids:
        mismatches += compare(item_id, entries.get(EntityKey.item(item_id)), frontend.product(item_id))
    return Verification(len(item_ids), mismatches)


def frontend(settings: Any, client: Any) -> Frontend:
    """The shopper-facing API with the backend client's instance key and connections."""
    return Frontend(settings.frontend_url, client.credentials.get().instance_key, client.session)


class Announcer:
    """A finished publish told: the completion event on the bus, and mismatches to the alarm topic."""

    def __init__(self, settings: Any, instance: str):
        import boto3

        self.settings, self.instance = settings, instance
        self.events, self.sns = boto3.client("events"), boto3.client("sns")

    def announce(self, verification: Verification, now: float | None = None) -> None:
        now = time.time() if now is None else now
        entry = completed_event(verification, self.instance, self.settings.event_bus_name, now)
        answer = self.events.put_events(Entries=[entry])
        if answer.get("FailedEntryCount"):
            logger.warning(
                "The publish completion event was not put: %s", answer["Entries"][0].get("ErrorCode")
            )
        if verification.mismatches and self.settings.alarm_topic_arn:
            subject, message = mismatch_message(verification, self.instance)
            self.sns.publish(TopicArn=self.settings.alarm_topic_arn, Subject=subject, Message=message)
        if verification.mismatches:
            logger.error("Shoppers do not see %d items as sent", len(verification.mismatches))


def completed_event(verification: Verification, instance: str, bus: str, now: float) -> dict[str, Any]:
    """The PutEvents entry a shop can flush its caches on."""
    detail = {
        "instance": instance,
        "completedAt": datetime.fromtimestamp(now, UTC).isoformat(),
        "checked": verification.checked,
        "verified": verification.verified,
        "mismatches": verification.mismatches,
    }
    entry = {"Source": EVENT_SOURCE, "DetailType": COMPLETED, "Detail": json.dumps(detail)}
    return {**entry, "EventBusName": bus}


def mismatch_message(verification: Verification, instance: str) -> tuple[str, str]:
    """The alarm topic's subject and message for a publish shoppers do not see as sent."""
    ids = sorted({m["id"] for m in verification.mismatches})
    lines = [f"{m['id']} {m['field']}: {m['why']}" for m in verification.mismatches[:50]]
    subject = f"Tweakwise {instance}: {len(ids)} published items differ from what was sent"[:100]
    body = (
        f"After the last publish, {len(ids)} of {verification.checked} items looked up on the shopper-facing "
        "API differ from what this stack sent (tweakwise-ops trace <id> shows each):\n" + "\n".join(lines)
    )
    return subject, body
