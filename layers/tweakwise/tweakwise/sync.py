"""The one apply path to Tweakwise: catalog changes (webhook events, snapshot lines) claimed, diffed and sent.

`CatalogSync.prepare` maps an event to Tweakwise's fields (`mapping`); `apply_change`:
1. claims the entity (`state.SyncState`): one writer at a time holds its lease, so writes land in the order
   they were claimed, and the entity's clocks say which fields a newer change set already (`entity.Clocks`:
   those are left out; a change with none left is stale, a delete loses to any newer field);
2. diffs against the ledger (`ledger.Ledger`): fields whose value this stack sent already are left out too
   (none left: unchanged, nothing sent);
3. sends one request with the right verb: PATCH an item the ledger knows, POST one it does not (a PATCH
   follows only when Tweakwise says it exists); a patch of an item Tweakwise lacks is `missing` (it has no
   name to create it with);
4. records the fields sent in the ledger and stamps their clocks as it releases the lease.
No queue types here: `worker.QueueWorker` adapts SQS records to it, `snapshot_apply` snapshot lines.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .catalog import CategoryDelete, CategoryUpsert, ItemDelete, ItemPatch, ItemUpsert
from .client import TweakwiseClient
from .entity import Clocks, EntityKey, is_stale
from .errors import ConnectionFailedError, EntityBusyError, NotFoundError, RequestTimeoutError
from .ledger import Entry, Ledger, field_digests
from .mapping import CategoryRefs, body_of
from .state import Claim, ClaimOutcome, Lease, SyncState

logger = logging.getLogger("tweakwise")


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    UNCHANGED = "unchanged"  # every field equals what this stack sent already: nothing sent
    STALE = "stale"  # newer changes set every field already (or, for a delete, any field)
    MISSING = "missing"  # a patch of an item Tweakwise does not have: it cannot create it
    REJECTED = "rejected"  # Tweakwise refused it (400): retrying cannot help

    @property
    def applied(self) -> bool:
        return self in (Outcome.CREATED, Outcome.UPDATED, Outcome.DELETED)


# How long a change waits for another writer of its entity before it is tried again later.
LEASE_WAIT_SECONDS = 30.0
MAX_INVOCATION_SECONDS = 900.0  # Lambda's longest: a lease's length when no deadline is set


@dataclass(frozen=True)
class Change:
    """One event made ready to send: its entity key and the Tweakwise fields it sets (None: a delete)."""

    event: Any
    entity: EntityKey
    body: dict[str, Any] | None

    @property
    def at(self) -> float | None:
        """When it happened (None: no occurredAt, so no clock to compare or stamp)."""
        return self.event.occurredAt.timestamp() if self.event.occurredAt is not None else None

    def unchanged(self, entry: Entry | None) -> bool:
        """Whether the ledger holds every field of it with the same value already."""
        if entry is None or self.body is None:
            return False
        return all(entry.fields.get(name) == digest for name, digest in field_digests(self.body).items())


class CatalogSync:
    """The one apply path: webhook events (from the queue) and snapshot lines go through `prepare` and
    `apply_change`, so both map, guard, diff and record the same way."""

    def __init__(
        self,
        client: TweakwiseClient,
        state: SyncState,
        ledger: Ledger | None = None,
        on_send: Callable[[EntityKey], None] | None = None,
    ):
        """`on_send`: called with the entity just before each write goes to Tweakwise (the worker starts its
        publish mark there, so the mark's write overlaps the request instead of following it)."""
        self.client = client
        self.state = state
        self.ledger = ledger
        self.on_send = on_send
        self.categories = CategoryRefs(client)

    def prepare(self, event: Any) -> Change:
        """The Tweakwise fields an event sets, category references resolved to Tweakwise ids."""
        return Change(event, event.entity(), body_of(event, self.categories))

    def apply_change(self, change: Change, snapshot: str = "") -> Outcome:
        """Claim, diff, send, record, release (module docstring)."""
        claim = self._claim(change)
        lease = claim.lease
        assert lease is not None  # noqa: S101 - _claim returns claimed leases only
        at = change.at
        names = list(change.body) if change.body is not None else []
        fresh = names if at is None else claim.clocks.fresh(names, at)
        stale = _delete_is_stale(claim.clocks, at) if change.body is None else not fresh
        if stale:
            self.state.release(lease)
            return Outcome.STALE
        entry = self.ledger.get(change.entity) if self.ledger is not None else None
        sending = {name: change.body[name] for name in fresh} if change.body is not None else {}
        if entry is not None:
            sending = {n: v for n, v in sending.items() if entry.fields.get(n) != field_digests({n: v})[n]}
        outcome = self._send_held(change, lease, entry, sending)
        try:
            self._record(change, entry, outcome, sending, snapshot)
        finally:
            stamps = (
                {name: at for name in fresh} if at is not None and outcome is not Outcome.MISSING else None
            )
            whole = at if outcome is Outcome.DELETED else None
            self.state.release(lease, stamps=stamps, whole=whole)
        return outcome

    def _send_held(
        self, change: Change, lease: Lease, entry: Entry | None, sending: dict[str, Any]
    ) -> Outcome:
        """Send under the lease; on failure release it (kept a while when Tweakwise may still apply it)."""
        try:
            if change.body is not None and not sending:
                return Outcome.UNCHANGED
            if self.on_send is not None:
                self.on_send(change.entity)
            if change.body is None:
                return self._delete(change.event)
            return self._write(change, entry, sending)
        except (RequestTimeoutError, ConnectionFailedError):
            # Tweakwise may still apply a request it did not answer: the entity stays held a while longer.
            self.state.release(lease, until=time.time() + self._settle_seconds())
            raise
        except BaseException:
            self.state.release(lease)
            raise

    def _record(
        self, change: Change, entry: Entry | None, outcome: Outcome, sent: dict[str, Any], snapshot: str
    ) -> None:
        if self.ledger is None or not outcome.applied:
            return
        at = change.at if change.at is not None else time.time()
        if outcome is Outcome.DELETED:
            self.ledger.forget(change.entity, at)
            return
        if outcome is Outcome.CREATED and change.body is not None:
            sent = change.body  # POST sends every field
        newest = max(at, entry.occurred_at) if entry is not None else at
        self.ledger.record(change.entity, sent, newest, snapshot)

    def _claim(self, change: Change) -> Claim:
        """The entity's lease for this change, waiting (at most LEASE_WAIT_SECONDS, and never past the
        invocation's deadline) while another writer holds it."""
        remaining = self.client.deadline.remaining()
        budget = LEASE_WAIT_SECONDS if remaining is None else min(LEASE_WAIT_SECONDS, remaining / 2)
        give_up = time.monotonic() + budget
        pause = 0.05
        while True:
            until = time.time() + (MAX_INVOCATION_SECONDS if remaining is None else remaining)
            claim = self.state.claim_entity(change.entity, change.event.id, until + self._settle_seconds())
            if claim.outcome is ClaimOutcome.CLAIMED:
                return claim
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

    def _write(self, change: Change, entry: Entry | None, sending: dict[str, Any]) -> Outcome:
        """One request (two only when a POST meets an item that exists, or a PATCH one that vanished)."""
        event, body = change.event, change.body or {}
        if isinstance(event, ItemPatch):
            try:
                self.client.patch_item(event.item.id, sending)
            except NotFoundError:
                return Outcome.MISSING
            return Outcome.UPDATED
        if isinstance(event, ItemUpsert):
            if entry is not None:
                try:
                    self.client.patch_item(event.item.id, sending)
                    return Outcome.UPDATED
                except NotFoundError:
                    pass  # deleted in Tweakwise meanwhile: created again below
            return Outcome(self.client.create_or_patch_item(event.item.id, body))
        if isinstance(event, CategoryUpsert):
            return self._write_category(event.category.id, body, sending)
        raise TypeError(f"no write for {type(event).__name__}")

    def _write_category(self, ref: int | str, body: dict[str, Any], sending: dict[str, Any]) -> Outcome:
        if isinstance(ref, int):
            try:
                self.client.patch_category(ref, sending)
            except NotFoundError:  # not there yet: created under its Tweakwise id, with every field
                self.client.create_category({"CategoryId": ref, **body})
                return Outcome.CREATED
            return Outcome.UPDATED
        category_id = self.categories.find(ref)
        if category_id is None:
            self.client.create_category(body)
            return Outcome.CREATED
        try:
            self.client.patch_category(category_id, {n: v for n, v in sending.items() if n != "Key"})
        except NotFoundError:  # deleted meanwhile: create it again under its key
            self.categories.forget(ref)
            self.client.create_category(body)
            return Outcome.CREATED
        return Outcome.UPDATED

    def _delete(self, event: Any) -> Outcome:
        if isinstance(event, ItemDelete):
            _ignore_missing(lambda: self.client.delete_item(event.itemId))
        elif isinstance(event, CategoryDelete):
            category_id = self.categories.find(event.categoryId)
            if category_id is not None:
                _ignore_missing(lambda: self.client.delete_category(category_id))
            self.categories.forget(event.categoryId)
        return Outcome.DELETED


def _delete_is_stale(clocks: Clocks, at: float | None) -> bool:
    """A delete at `at` loses to any field (or delete) stamped after it."""
    return at is not None and is_stale(clocks.newest(), at)


def _ignore_missing(call: Any) -> None:
    with contextlib.suppress(NotFoundError):  # already gone: the delete is done
        call()
