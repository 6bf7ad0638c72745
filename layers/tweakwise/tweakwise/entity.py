"""What this stack writes to Tweakwise is keyed one way, and a change is stale by one rule.

- `EntityKey`: an item or a category, the key of the sync state table, the ledger, snapshot ids and
  message groups. Written `item#A1`, `category#id:5` (a Tweakwise id) or `category#key:shoes` (the shop's
  key: a different namespace from ids, so 5 and "5" are two categories).
- The staleness rule: a change is stale when a newer one for its entity was recorded already. Equal
  times are not stale (a retry of the same change applies again: every write is an idempotent upsert or
  delete). Fields have their own clocks (`Clocks`): a change sends only the fields no newer change set,
  and a delete loses to any field set after it. The sync state's claim, the ledger's writes and the
  snapshot's checks all apply it through `is_stale`, `Clocks` and `NOT_NEWER`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["item", "category"]
KINDS: tuple[Kind, ...] = ("item", "category")  # orphans are deleted items first

# The staleness rule as a DynamoDB condition, over the item's `occurredAt` and the change's `:t`.
NOT_NEWER = "(attribute_not_exists(occurredAt) OR occurredAt <= :t)"


def is_stale(recorded: float | None, occurred_at: float) -> bool:
    """A change at `occurred_at` is stale when its entity has a newer change recorded (`recorded`)."""
    return recorded is not None and recorded > occurred_at


@dataclass(frozen=True, slots=True, order=True)
class EntityKey:
    """An item or a category, as every table and queue keys it: its kind and its reference."""

    kind: Kind
    ref: str  # an item's id; a category's "id:<number>" or "key:<key>"

    @classmethod
    def item(cls, item_id: str) -> EntityKey:
        return cls("item", item_id)

    @staticmethod
    def item_text(item_id: str) -> str:
        """`str(EntityKey.item(item_id))` without the key: what a snapshot's millions of ids need."""
        return "item#" + item_id

    @classmethod
    def category(cls, ref: int | str) -> EntityKey:
        """A category by its Tweakwise id (int) or the shop's key (str)."""
        return cls("category", f"id:{ref}" if isinstance(ref, int) else f"key:{ref}")

    @classmethod
    def parse(cls, text: str) -> EntityKey:
        kind, separator, ref = text.partition("#")
        if kind not in KINDS or not separator:
            raise ValueError(f"not an entity key: {text!r}")
        return cls(kind, ref)  # type: ignore[arg-type,unused-ignore]  # a Kind: checked above

    def __str__(self) -> str:
        return f"{self.kind}#{self.ref}"

    @property
    def shop_id(self) -> int | str:
        """The id as the shop sent it: an item's id, a category's number or key."""
        if self.kind == "item":
            return self.ref
        space, _, value = self.ref.partition(":")
        return int(value) if space == "id" else value


@dataclass(frozen=True)
class Clocks:
    """When an entity's fields were last changed (the sync state table keeps them). A field's clock is its
    own time or the entity's (`whole`: a delete, or a change made before fields had clocks), the later."""

    whole: float | None = None
    fields: Mapping[str, float] = field(default_factory=dict)

    def of(self, name: str) -> float | None:
        times = [t for t in (self.whole, self.fields.get(name)) if t is not None]
        return max(times) if times else None

    def fresh(self, names: Iterable[str], occurred_at: float) -> list[str]:
        """The fields a change at `occurred_at` may still set: none of them was set by a newer change."""
        return [name for name in names if not is_stale(self.of(name), occurred_at)]

    def newest(self) -> float | None:
        times = [t for t in (self.whole, *self.fields.values()) if t is not None]
        return max(times) if times else None
