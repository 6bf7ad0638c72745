"""The catalog contract's own rules, free of pydantic: its limits, the checks its validators run, which
entity an event changes, and its errors as the webhook answers them. The models (`catalog`) and the
webhook's compiled form of them (`webhook_contract`) both call these functions: one set of rules."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic_core import PydanticKnownError

from .entity import EntityKey

if TYPE_CHECKING:
    from pydantic_core import ValidationError

MAX_EVENTS = 100
# How far into the future an occurredAt may be (clock skew): the webhook's signature window. A later
# date would make every newer change of its entity look stale for the guard's lifetime.
MAX_FUTURE_SECONDS = 300
INT32_MAX = 2**31 - 1
MAX_PRICE = 10**12  # Tweakwise stores prices as decimals; this keeps every price exact and finite

# Characters SQS accepts in a message (and so in an event): tab, LF, CR and U+0020 on, less the
# surrogates and U+FFFE/U+FFFF. Free text may hold any of them. Written as what is refused: the class of
# what is allowed spans the astral planes and takes 12 ms of a cold start to compile.
SQS_REFUSED = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\ud800-\udfff\ufffe\uffff]")
# Ids, keys and names are single-line: no control character at all (C0, DEL, C1).
CONTROL = re.compile("[\u0000-\u001f\u007f-\u009f]")
# "." and ".." are dot segments: an HTTP client collapses them, so /item/.. would address another path.
_DOT_SEGMENT = re.compile(r"\.{1,2}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")
RFC3339_PATTERN = _RFC3339.pattern


# Every character both patterns refuse (controls, surrogates, U+FFFE, U+FFFF) is non-printable, so a
# printable string (nearly every one: str.isprintable runs in C) needs no regex.
def free_text(value: str) -> str:
    if value.isprintable():
        return value
    found = SQS_REFUSED.search(value)
    if found:
        raise ValueError(f"must not contain the character U+{ord(found.group()):04X}")
    return value


def single_line(value: str) -> str:
    if value.isprintable():
        return value
    found = CONTROL.search(value) or SQS_REFUSED.search(value)
    if found:
        raise ValueError(f"must not contain the control character U+{ord(found.group()):04X}")
    return value


def addressable(value: str) -> str:
    if _DOT_SEGMENT.fullmatch(value):
        raise ValueError(f"must not be {value!r}: it cannot be addressed in a URL path")
    return value


def whole_number(value: Any) -> Any:
    # PHP and .NET serialise quantities as 3.0: an integral number is that integer; 2.5 stays refused.
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


def bounded_price(value: Any) -> Any:
    # Checked before pydantic's finiteness check, which turns a 309-digit integer into an OverflowError.
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_PRICE:
        raise ValueError(f"must be between 0 and {MAX_PRICE}")
    return value


def price_range(value: float) -> float:
    # A price is an int or a float: pydantic cannot put bounds on that union in its core, and checks them
    # in Python, in this order and with these errors (its own), which this keeps.
    if not value >= 0:
        raise PydanticKnownError("greater_than_equal", {"ge": 0})
    if not value <= MAX_PRICE:
        raise PydanticKnownError("less_than_equal", {"le": MAX_PRICE})
    if not math.isfinite(value):
        raise PydanticKnownError("finite_number")
    return value


def rfc3339(value: Any) -> Any:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time string with a time zone, e.g. 2026-11-28T10:00:00Z")
    return value


def not_future(value: datetime) -> datetime:
    if value > datetime.now(UTC) + timedelta(seconds=MAX_FUTURE_SECONDS):
        raise ValueError(f"must not be more than {MAX_FUTURE_SECONDS} s in the future")
    return value


def names_a_field(names: Collection[str]) -> None:
    """An item patch's rule: `id` and at least one other field."""
    if not set(names) - {"id"}:
        raise ValueError("an item patch names at least one field besides id")


def unique_ids(ids: list[str]) -> None:
    """A request's rule: no event id twice."""
    seen: set[str] = set()
    for event_id in ids:
        if event_id in seen:
            raise ValueError(f"event id {event_id!r} appears more than once")
        seen.add(event_id)


# The compiled contract's validators: the same rules over validated dicts instead of models.
def patch_fields(fields: dict[str, Any]) -> dict[str, Any]:
    names_a_field(fields)
    return fields


def unique_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    unique_ids([event["id"] for event in events])
    return events


EVENT_TYPES = ("item.upsert", "item.patch", "item.delete", "category.upsert", "category.delete")
# Where each event type names its entity: (kind, the event's field, the field inside it or None).
ENTITY_FIELDS: dict[str, tuple[str, str, str | None]] = {
    "item.upsert": ("item", "item", "id"),
    "item.patch": ("item", "item", "id"),
    "item.delete": ("item", "itemId", None),
    "category.upsert": ("category", "category", "id"),
    "category.delete": ("category", "categoryId", None),
}


def _field(value: Any, name: str) -> Any:
    return value[name] if isinstance(value, Mapping) else getattr(value, name)


def event_id(event: Any) -> str:
    return _field(event, "id")


def event_type(event: Any) -> str:
    return _field(event, "type")


def entity_of(event: Any) -> EntityKey:
    """The item or category an event changes (its ordering key): a validated event, model or dict."""
    kind, name, inner = ENTITY_FIELDS[event_type(event)]
    ref = _field(event, name) if inner is None else _field(_field(event, name), inner)
    return EntityKey.item(ref) if kind == "item" else EntityKey.category(ref)


# Parts of a pydantic error location that name a union branch or validator, not a field of the body.
_BRANCH_NAMES = frozenset({"str", "int", "float", "bool", "list", "dict", *EVENT_TYPES})


def _is_branch(part: str) -> bool:
    return part in _BRANCH_NAMES or any(c in part for c in "[(") or part.startswith("constrained-")


def error_list(exc: ValidationError) -> list[dict[str, str]]:
    """pydantic errors as [{"path": "events[0].item.price", "error": "..."}], one per offending field."""
    by_path: dict[str, list[str]] = {}
    for err in exc.errors():
        path = ""
        for part in err["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif not _is_branch(str(part)):
                path += f".{part}" if path else str(part)
        messages = by_path.setdefault(path or "(body)", [])
        if err["msg"] not in messages:
            messages.append(err["msg"])
    return [{"path": path, "error": " or ".join(msgs)} for path, msgs in by_path.items()]
