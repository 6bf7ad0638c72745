"""A snapshot's lines and orphans applied to Tweakwise, one batch at a time, through the worker's apply path
(`CatalogSync.prepare` + `apply_change`: the same mapping, lease, staleness rule and ledger).

Each entity ends in a `LineOutcome`; Tweakwise's refusals are counted `rejected` with their reason, never
retried. Any other failure fails the batch once every entity of it was tried, so the Distributed Map
retries it (what was applied is unchanged the next time). A batch that ends leaves its done-marker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Any

from .catalog import (
    Category,
    CategoryDelete,
    CategoryUpsert,
    Item,
    ItemDelete,
    ItemPatch,
    ItemPatchFields,
    ItemUpsert,
)
from .entity import EntityKey
from .errors import PathParameterError, RejectedError, SnapshotBatchError, UnknownCategoryError
from .ledger import Entry, Ledger
from .snapshot_contract import BatchInput, BatchOutput, LineOutcome, RunStep
from .snapshot_store import Marker, SnapshotStore, work_key
from .sync import CatalogSync

CATEGORY_IDS = "category-ids.json"  # a run's work file: its categories' keys and Tweakwise ids

# Tweakwise answers that retrying cannot fix: counted `rejected` with the reason, never retried.
REJECTIONS = (RejectedError, PathParameterError, UnknownCategoryError)


class _Batch:
    """One batch's marker, written by the threads that apply its entities."""

    def __init__(self) -> None:
        self.marker = Marker()
        self.failures: list[str] = []
        self._lock = threading.Lock()

    def run(self, entity: EntityKey, apply: Callable[[], LineOutcome]) -> None:
        try:
            outcome = apply()
        except REJECTIONS as exc:
            with self._lock:
                self.marker.counts[LineOutcome.REJECTED] += 1
                self.marker.rejected.append({"entity": str(entity), "reason": str(exc)})
            return
        except Exception as exc:
            with self._lock:
                self.failures.append(f"{entity}: {type(exc).__name__}: {exc}")
            return
        with self._lock:
            self.marker.counts[outcome] += 1
            if outcome is LineOutcome.DELETED:
                self.marker.deleted.append(str(entity))


class BatchApplier:
    def __init__(self, sync: CatalogSync, ledger: Ledger, store: SnapshotStore, pool: ThreadPoolExecutor):
        self.sync, self.ledger, self.store, self.pool = sync, ledger, store, pool
        self._seeded = ""  # the run whose category ids this container holds

    def categories(self, lines: list[dict[str, Any]], step: RunStep) -> BatchOutput:
        """Categories in the order given (parents first), one at a time; then every key of them resolved
        to its Tweakwise id, once per run, for the item batches (`items`) to start from."""
        at = datetime.fromisoformat(step["takenAt"])
        events = [
            CategoryUpsert.model_construct(
                type="category.upsert", id=f"snapshot:{step['snapshot']}", occurredAt=at,
                category=Category.model_validate(line),
            )
            for line in lines
        ]  # fmt: skip
        refs = self.sync.categories
        keys = [
            ref
            for line in lines
            for ref in (line["id"], *(line.get("parents") or []))
            if isinstance(ref, str)
        ]
        refs.find_all(keys, look_up_rest=False)  # what Tweakwise has, in one listing
        answer = self._apply(events, step, "categories", parallel=False)
        refs.find_all(keys)  # the keys the categories above created
        self.store.put_json(work_key(step["run"], CATEGORY_IDS), refs.known())
        self._seeded = step["run"]
        return answer

    def items(self, lines: list[dict[str, Any]], step: BatchInput) -> BatchOutput:
        """One Distributed Map batch of item lines (`{"type": "item", "item": {...}}`, as validation
        wrote them), applied `concurrency` at a time."""
        self.seed_categories(step["run"])
        events = [item_event(line, step) for line in lines]
        return self._apply(events, step, "items", parallel=True)

    def seed_categories(self, run: str) -> None:
        """The run's category ids (the categories step's), on this container's first step of the run."""
        if self._seeded != run:
            self.sync.categories.seed(self.store.get_json(work_key(run, CATEGORY_IDS), default={}))
            self._seeded = run

    def deletes(self, orphans: list[dict[str, str]], step: BatchInput) -> BatchOutput:
        """One batch of orphans: deleted in Tweakwise and forgotten by the ledger."""
        at = datetime.fromisoformat(step["takenAt"])
        events = [_delete_event(EntityKey.parse(entry["entity"]), step["snapshot"], at) for entry in orphans]
        batch = _Batch()
        for event in events:
            batch.run(event.entity(), partial(self._delete_one, event, step["snapshot"]))
        return self._finish(batch, step, "deletes", [event.entity() for event in events])

    def _apply(self, events: list[Any], step: RunStep, kind: str, parallel: bool) -> BatchOutput:
        entities = [event.entity() for event in events]
        entries = self.ledger.get_many(entities)
        batch = _Batch()

        def one(event: Any) -> None:
            batch.run(event.entity(), lambda: self._apply_one(event, entries, step["snapshot"]))

        if parallel:
            list(self.pool.map(one, events))
        else:
            for event in events:
                one(event)
        return self._finish(batch, step, kind, entities)

    def _finish(self, batch: _Batch, step: RunStep, kind: str, entities: Iterable[EntityKey]) -> BatchOutput:
        if batch.failures:
            total = sum(batch.marker.counts.values()) + len(batch.failures)
            raise SnapshotBatchError(
                f"{len(batch.failures)} of {total} {kind} failed, first: {batch.failures[0]}"
            )
        self.store.leave_marker(step["run"], kind, map(str, entities), batch.marker)
        return {str(outcome): count for outcome, count in batch.marker.counts.items()}

    def _apply_one(self, event: Any, entries: dict[EntityKey, Entry], snapshot: str) -> LineOutcome:
        """Apply one snapshot line through the apply path. A line whose every field the ledger holds
        already is unchanged without a claim or any write (the nightly run of an unchanged catalog writes
        nothing: orphans are told by the snapshot's id set, not by marks on the entities)."""
        change = self.sync.prepare(event)
        if change.unchanged(entries.get(event.entity())):
            return LineOutcome.UNCHANGED
        return LineOutcome(self.sync.apply_change(change, snapshot).value)

    def _delete_one(self, event: Any, snapshot: str) -> LineOutcome:
        return LineOutcome(self.sync.apply_change(self.sync.prepare(event), snapshot).value)


def item_event(line: dict[str, Any], step: RunStep) -> Any:
    """A snapshot's item line as the event the apply path takes: an upsert, or in a patch snapshot
    (`scope` "patch") a patch of the fields it names, at the snapshot's takenAt."""
    at, event_id = datetime.fromisoformat(step["takenAt"]), f"snapshot:{step['snapshot']}"
    # An execution started before a deploy that changed items.json hands the item alone (no "type").
    given = line["item"] if "type" in line else line
    if step.get("scope") == "patch":
        fields = ItemPatchFields.model_validate(given)
        return ItemPatch.model_construct(type="item.patch", id=event_id, occurredAt=at, item=fields)
    item = Item.model_validate(given)
    return ItemUpsert.model_construct(type="item.upsert", id=event_id, occurredAt=at, item=item)


def _delete_event(entity: EntityKey, snapshot: str, at: datetime) -> Any:
    if entity.kind == "item":
        return ItemDelete.model_construct(
            type="item.delete", id=f"snapshot:{snapshot}", occurredAt=at, itemId=entity.ref
        )
    return CategoryDelete.model_construct(
        type="category.delete", id=f"snapshot:{snapshot}", occurredAt=at, categoryId=entity.shop_id
    )
