"""What the native sources (commercetools, Shopify on EventBridge) share: a payload read with the path of
every field it needs, the catalog events a mapping makes (the webhook's own contract, as dicts the same
models validate) and the relations it asks the source map (`source_map`) to keep.

A mapping is a pure function: `keys(...)` names the relations it needs to know, `events(..., known)` makes
the events from the payload and those relations. The flow (`source_flow`) does the I/O around them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import SourcePayloadError


@dataclass(frozen=True)
class Level:
    """One location's available quantity of one inventory item, as of `at` (an older one never wins)."""

    key: str  # the source map's levels key of the inventory item
    location: str
    available: int
    at: str


@dataclass(frozen=True)
class StockSum:
    """A stock patch the flow makes once the levels are kept: the sum over every location of `levels`."""

    item_id: str
    event_id: str
    levels: list[str]


@dataclass
class Mapped:
    """A mapping's answer: catalog events in order, the relations to keep, and why nothing was made."""

    events: list[dict[str, Any]] = field(default_factory=list)
    remember: dict[str, dict[str, Any]] = field(default_factory=dict)  # source-map key: its attributes
    skipped: str = ""  # set when the message makes no event on purpose (counted, never dead-lettered)
    levels: list[Level] = field(default_factory=list)
    stock: StockSum | None = None


class Payload:
    """A JSON object read by path: a field the mapping needs and the payload lacks raises
    SourcePayloadError naming it (`detail.payload.variants[0].price`)."""

    def __init__(self, value: Any, path: str):
        self.value, self.path = value, path

    def get(self, name: str | int, default: Any = None) -> Any:
        if isinstance(name, int):
            inside = isinstance(self.value, list) and 0 <= name < len(self.value)
            return self.value[name] if inside else default
        found = self.value.get(name) if isinstance(self.value, dict) else None
        return default if found is None else found

    def at(self, name: str | int) -> Payload:
        """The field `name` (an object or list), which must be there."""
        return Payload(self.require(name), self._child(name))

    def optional(self, name: str | int) -> Payload:
        """The field `name`, or an empty object when it is absent or null."""
        return Payload(self.get(name, {}), self._child(name))

    def items(self) -> list[Payload]:
        """The elements of this list (none when it is not one)."""
        value = self.value if isinstance(self.value, list) else []
        return [Payload(element, f"{self.path}[{index}]") for index, element in enumerate(value)]

    def require(self, name: str | int, kind: type | tuple[type, ...] = object) -> Any:
        """The value of `name`, which must be there (not null) and of `kind`."""
        value = self.get(name)
        if value is None:
            raise SourcePayloadError(f"the payload has no {self._child(name)}, which the mapping needs")
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise SourcePayloadError(f"{self._child(name)} is not the {_kind_name(kind)} the mapping needs")
        return value

    def _child(self, name: str | int) -> str:
        return f"{self.path}[{name}]" if isinstance(name, int) else f"{self.path}.{name}"


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def upsert(event_id: str, at: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "item.upsert", "id": event_id, "occurredAt": at, "item": item}


def patch(event_id: str, at: str, item_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "item.patch", "id": event_id, "occurredAt": at, "item": {"id": item_id, **fields}}


def delete(event_id: str, at: str, item_id: str) -> dict[str, Any]:
    return {"type": "item.delete", "id": event_id, "occurredAt": at, "itemId": item_id}


def category_upsert(event_id: str, at: str, category: dict[str, Any]) -> dict[str, Any]:
    return {"type": "category.upsert", "id": event_id, "occurredAt": at, "category": category}


def category_delete(event_id: str, at: str, key: str) -> dict[str, Any]:
    return {"type": "category.delete", "id": event_id, "occurredAt": at, "categoryId": key}
