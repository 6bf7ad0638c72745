"""The webhook contract mapped to Tweakwise's fields: item and category bodies, and the shop's category
keys turned into Tweakwise's numeric ids (`CategoryRefs`, cached per container)."""

from __future__ import annotations

import threading
from typing import Any

from .catalog import CategoryUpsert, Item, ItemPatch, ItemPatchFields, ItemUpsert
from .client import TweakwiseClient
from .errors import NotFoundError, UnknownCategoryError

# The scalar fields of an item, as the webhook names them and as Tweakwise does.
FIELDS = (
    ("name", "Name"),
    ("price", "Price"),
    ("stock", "Stock"),
    ("brand", "Brand"),
    ("groupCode", "GroupCode"),
    ("image", "Image"),
    ("url", "Url"),
)


def body_of(event: Any, categories: CategoryRefs) -> dict[str, Any] | None:
    """The Tweakwise body an event sends, category references resolved to Tweakwise ids (None: a delete)."""
    if isinstance(event, ItemUpsert | ItemPatch):
        item = event.item
        ids = categories.require(item.categories) if item.categories is not None else None
        return to_item_fields(item, ids)
    if isinstance(event, CategoryUpsert):
        category = event.category
        body: dict[str, Any] = {"Name": category.name}
        if isinstance(category.id, str):
            body["Key"] = category.id  # keys are the shop's own ids: Tweakwise assigns the number
        if category.rank is not None:
            body["Rank"] = category.rank
        if category.parents is not None:
            body["Parents"] = categories.require(category.parents)
        if category.url is not None:
            body["Url"] = category.url
        return body
    return None


def to_item_fields(item: Item | ItemPatchFields, category_ids: list[int] | None) -> dict[str, Any]:
    """Tweakwise's fields for the ones the event names (PATCH changes only the fields sent): a field left
    out is not sent, so Tweakwise keeps it; a field given as null is sent empty, which clears it (the
    backend's model has no null: "" for text, [] for lists)."""
    given = item.model_fields_set
    fields: dict[str, Any] = {}
    for source, target in FIELDS:
        if source in given:
            value = getattr(item, source)
            fields[target] = "" if value is None else value
    if "categories" in given:
        fields["Categories"] = category_ids or []
    if "attributes" in given:
        fields["Attributes"] = [
            {"Key": key, "Values": value if isinstance(value, list) else [value]}
            for key, value in (item.attributes or {}).items()
        ]
    return fields


class CategoryRefs:
    """Numeric ids for category references; string keys are looked up once per container, or `seed`ed."""

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

    def find_all(self, keys: list[str], look_up_rest: bool = True) -> None:
        """Resolve many keys at once: one listing of Tweakwise's categories instead of a look-up per key
        (a snapshot's categories step), then a look-up for each key the listing lacked (`look_up_rest`)."""
        with self._lock:
            missing = {key for key in keys if key not in self._ids}
        if len(missing) > 1:
            listed = {
                str(c["Key"]): int(c["CategoryId"])
                for c in self.client.list_categories()
                if str(c.get("Key")) in missing and isinstance(c.get("CategoryId"), int)
            }
            self.seed(listed)
            missing -= listed.keys()
        for key in sorted(missing) if look_up_rest else ():
            self.find(key)

    def require(self, refs: list[int | str]) -> list[int]:
        ids = []
        for ref in refs:
            category_id = self.find(ref)
            if category_id is None:
                raise UnknownCategoryError(f"category key {ref!r} is not in Tweakwise (yet)")
            ids.append(category_id)
        return ids

    def known(self) -> dict[str, int]:
        """Every key resolved so far, and its id."""
        with self._lock:
            return dict(self._ids)

    def seed(self, ids: dict[str, int]) -> None:
        """Keys resolved elsewhere (a snapshot's categories step, the ledger): no lookup for them here."""
        with self._lock:
            self._ids.update(ids)

    def forget(self, ref: int | str) -> None:
        with self._lock:
            self._ids.pop(str(ref), None)
