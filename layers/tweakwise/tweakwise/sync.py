"""The one apply path to Tweakwise: catalog changes (webhook events, snapshot lines) mapped, claimed and sent.

- `to_item_fields` (and `CatalogSync._upsert_category`) map the webhook contract to Tweakwise's field names.
- `CategoryRefs` turns the shop's category keys into Tweakwise's numeric ids (cached per container).
- `CatalogSync.prepare` + `apply_change`: the one apply path of webhook events and snapshot lines. It
  claims the entity in the sync state table (`state.SyncState`: a late retry never reverts newer data,
  and one writer at a time holds the entity's lease, so writes land in the order they were claimed),
  sends the change and records its body's digest in the ledger (`ledger.Ledger`).
No queue types here: `worker.QueueWorker` adapts SQS records to it, `snapshot_apply` snapshot lines.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .catalog import (
    CategoryDelete,
    CategoryUpsert,
    Item,
    ItemDelete,
    ItemUpsert,
)
from .client import TweakwiseClient
from .entity import EntityKey
from .errors import (
    ConnectionFailedError,
    EntityBusyError,
    NotFoundError,
    RequestTimeoutError,
    UnknownCategoryError,
)
from .ledger import Ledger, body_digest
from .state import ClaimOutcome, Lease, SyncState

logger = logging.getLogger("tweakwise")


class Outcome(StrEnum):
    APPLIED = "applied"
    STALE = "stale"  # a newer event for the entity was applied already
    REJECTED = "rejected"  # Tweakwise refused it (400): retrying cannot help


# How long a change waits for another writer of its entity before it is tried again later.
LEASE_WAIT_SECONDS = 30.0
MAX_INVOCATION_SECONDS = 900.0  # Lambda's longest: a lease's length when no deadline is set


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


@dataclass(frozen=True)
class Change:
    """One event made ready to send: its entity key and the Tweakwise body it sends (None: a delete)."""

    event: Any
    entity: EntityKey
    body: dict[str, Any] | None

    @property
    def digest(self) -> str:
        return body_digest(self.body) if self.body is not None else ""


class CatalogSync:
    """The one apply path: webhook events (from the queue) and snapshot lines go through `prepare` and
    `apply_change`, so both map, guard and record the same way."""

    def __init__(self, client: TweakwiseClient, state: SyncState, ledger: Ledger | None = None):
        self.client = client
        self.state = state
        self.ledger = ledger
        self.categories = CategoryRefs(client)

    def prepare(self, event: Any) -> Change:
        """The Tweakwise body an event sends, category references resolved to Tweakwise ids."""
        body: dict[str, Any] | None = None
        if isinstance(event, ItemUpsert):
            item = event.item
            ids = self.categories.require(item.categories) if item.categories is not None else None
            body = to_item_fields(item, ids)
        elif isinstance(event, CategoryUpsert):
            category = event.category
            body = {"Name": category.name}
            if isinstance(category.id, str):
                body["Key"] = category.id  # keys are the shop's own ids: Tweakwise assigns the number
            if category.rank is not None:
                body["Rank"] = category.rank
            if category.parents is not None:
                body["Parents"] = self.categories.require(category.parents)
            if category.url is not None:
                body["Url"] = category.url
        return Change(event, event.entity(), body)

    def apply_change(self, change: Change, snapshot: str = "") -> Outcome:
        """Claim the entity (stale-write guard and the writer's lease), send the change, record it in the
        ledger, release the lease. Only one writer of an entity sends at a time, retries included, so its
        writes reach Tweakwise in the order they were claimed and the ledger records them in that order."""
        event = change.event
        lease = self._claim(change)
        if lease is None:
            return Outcome.STALE
        try:
            self._send(change)
        except (RequestTimeoutError, ConnectionFailedError):
            # Tweakwise may still apply a request it did not answer: the entity stays held a while longer.
            self.state.release(lease, until=time.time() + self._settle_seconds())
            raise
        except BaseException:
            self.state.release(lease)
            raise
        try:
            if self.ledger is not None:
                at = event.occurredAt.timestamp() if event.occurredAt is not None else time.time()
                if change.body is None:
                    self.ledger.forget(change.entity, at)
                else:
                    self.ledger.record(change.entity, change.digest, at, snapshot)
        finally:
            self.state.release(lease)
        return Outcome.APPLIED

    def _claim(self, change: Change) -> Lease | None:
        """The entity's lease for this change, waiting (at most LEASE_WAIT_SECONDS, and never past the
        invocation's deadline) while another writer holds it; None when a newer change was claimed."""
        event = change.event
        remaining = self.client.deadline.remaining()
        budget = LEASE_WAIT_SECONDS if remaining is None else min(LEASE_WAIT_SECONDS, remaining / 2)
        give_up = time.monotonic() + budget
        pause = 0.05
        while True:
            until = time.time() + (MAX_INVOCATION_SECONDS if remaining is None else remaining)
            claim = self.state.claim_entity(
                change.entity, event.occurredAt, event.id, until + self._settle_seconds()
            )
            if claim.outcome is ClaimOutcome.CLAIMED:
                return claim.lease
            if claim.outcome is ClaimOutcome.STALE:
                return None
            wait = min(pause, max(claim.until - time.time(), 0.0) + 0.01)
            if time.monotonic() + wait > give_up:
                ends = datetime.fromtimestamp(claim.until, UTC).isoformat(timespec="seconds")
                raise EntityBusyError(
                    f"{change.entity} is being written by event {claim.holder!r} (its lease ends by "
                    f"{ends}); this change is tried again later, so the two reach Tweakwise in order"
                )
            time.sleep(wait)
            pause = min(pause * 2, 1.0)
            remaining = self.client.deadline.remaining()

    def _settle_seconds(self) -> float:
        """How long an unanswered request may still land: as long as the client waits for an answer."""
        return self.client.connect_timeout + self.client.read_timeout

    def _send(self, change: Change) -> None:
        event, body = change.event, change.body
        if isinstance(event, ItemUpsert) and body is not None:
            self.client.upsert_item(event.item.id, body)
        elif isinstance(event, ItemDelete):
            _ignore_missing(lambda: self.client.delete_item(event.itemId))
        elif isinstance(event, CategoryUpsert) and body is not None:
            self._upsert_category(event.category.id, body)
        elif isinstance(event, CategoryDelete):
            category_id = self.categories.find(event.categoryId)
            if category_id is not None:
                _ignore_missing(lambda: self.client.delete_category(category_id))
            self.categories.forget(event.categoryId)

    def _upsert_category(self, ref: int | str, body: dict[str, Any]) -> None:
        if isinstance(ref, int):
            self.client.upsert_category(ref, body)
            return
        category_id = self.categories.find(ref)
        if category_id is None:
            self.client.create_category(body)
            return
        fields = {name: value for name, value in body.items() if name != "Key"}
        try:
            self.client.patch_category(category_id, fields)
        except NotFoundError:  # deleted meanwhile: create it again under its key
            self.categories.forget(ref)
            self.client.create_category(body)


def _ignore_missing(call: Any) -> None:
    with contextlib.suppress(NotFoundError):  # already gone: the delete is done
        call()
