"""The catalog contract, validated with pydantic models: the webhook's {"events": [...]} with 1 to 100
events (the same models read them back from the queue in the worker). A whole-catalog snapshot's lines
(`snapshot_models`) carry the same `Item` and `Category`: one set of rules."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from .entity import EntityKey

MAX_EVENTS = 100
# How far into the future an occurredAt may be (clock skew): the webhook's signature window. A later
# date would make every newer change of its entity look stale for the guard's lifetime.
MAX_FUTURE_SECONDS = 300
INT32_MAX = 2**31 - 1
MAX_PRICE = 10**12  # Tweakwise stores prices as decimals; this keeps every price exact and finite

# Characters SQS accepts in a message (and so in an event): tab, LF, CR and U+0020 on, less the
# surrogates and U+FFFE/U+FFFF. Free text may hold any of them. Written as what is refused: the class of
# what is allowed spans the astral planes and takes 12 ms of a cold start to compile.
_SQS_REFUSED = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\ud800-\udfff\ufffe\uffff]")
# Ids, keys and names are single-line: no control character at all (C0, DEL, C1).
_CONTROL = re.compile("[\u0000-\u001f\u007f-\u009f]")
# "." and ".." are dot segments: an HTTP client collapses them, so /item/.. would address another path.
_DOT_SEGMENT = re.compile(r"\.{1,2}")


# Every character both patterns refuse (controls, surrogates, U+FFFE, U+FFFF) is non-printable, so a
# printable string (nearly every one: str.isprintable runs in C) needs no regex.
def _text(value: str) -> str:
    if value.isprintable():
        return value
    found = _SQS_REFUSED.search(value)
    if found:
        raise ValueError(f"must not contain the character U+{ord(found.group()):04X}")
    return value


def _line(value: str) -> str:
    if value.isprintable():
        return value
    found = _CONTROL.search(value) or _SQS_REFUSED.search(value)
    if found:
        raise ValueError(f"must not contain the control character U+{ord(found.group()):04X}")
    return value


def _addressable(value: str) -> str:
    if _DOT_SEGMENT.fullmatch(value):
        raise ValueError(f"must not be {value!r}: it cannot be addressed in a URL path")
    return value


# Free text holds any character SQS can carry; a line (name, id, key, URL) no control character at all.
TEXT, LINE, ADDRESSABLE = AfterValidator(_text), AfterValidator(_line), AfterValidator(_addressable)
# The same rules in the JSON Schema of a snapshot line (docs/snapshot-line.schema.json): standard keywords
# only, so any JSON Schema validator refuses what the models refuse.
_LINE_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f\\ufffe\\uffff]*$"
_TEXT_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\ufffe\\uffff]*$"


def _string_schema(
    min_length: int, max_length: int, *, text: bool = False, addressable: bool = False
) -> dict[str, Any]:
    """A string type's JSON Schema: its lengths, the characters it refuses, "." and ".." when refused."""
    schema: dict[str, Any] = {"type": "string", "minLength": min_length, "maxLength": max_length}
    if not min_length:
        del schema["minLength"]
    schema["pattern"] = _TEXT_PATTERN if text else _LINE_PATTERN
    if addressable:
        schema["not"] = {"enum": [".", ".."]}
    return schema


def _json_schema(min_length: int, max_length: int, *, text: bool = False, addressable: bool = False) -> Any:
    return WithJsonSchema(_string_schema(min_length, max_length, text=text, addressable=addressable))


def _strict(min_length: int, max_length: int) -> StringConstraints:
    return StringConstraints(strict=True, min_length=min_length or None, max_length=max_length)


EventId = Annotated[str, _strict(1, 128), LINE, _json_schema(1, 128)]
ItemId = Annotated[str, _strict(1, 100), LINE, ADDRESSABLE, _json_schema(1, 100, addressable=True)]
CategoryKey = Annotated[str, _strict(1, 50), LINE, ADDRESSABLE, _json_schema(1, 50, addressable=True)]
_NAME_SCHEMA = _string_schema(1, 500)
Name = Annotated[str, _strict(1, 500), LINE, WithJsonSchema(_NAME_SCHEMA)]
Url = Annotated[str, _strict(0, 500), LINE, _json_schema(0, 500)]
Brand = Annotated[str, _strict(0, 250), LINE, _json_schema(0, 250)]
GroupCode = Annotated[str, _strict(0, 100), LINE, _json_schema(0, 100)]
_VALUE_SCHEMA = _string_schema(0, 400, text=True)
AttributeValue = Annotated[str, _strict(0, 400), TEXT, WithJsonSchema(_VALUE_SCHEMA)]
CategoryId = Annotated[StrictInt, Field(ge=0, le=INT32_MAX)]
CategoryRef = CategoryId | CategoryKey  # numeric Tweakwise id, or the shop's own key
Int32 = Annotated[StrictInt, Field(ge=-(2**31), le=INT32_MAX)]


def _whole(value: Any) -> Any:
    # PHP and .NET serialise quantities as 3.0: an integral number is that integer; 2.5 stays refused.
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


Stock = Annotated[
    StrictInt,
    BeforeValidator(_whole),
    Field(ge=-(2**31), le=INT32_MAX),
    # JSON Schema's integer is a number with no fractional part: 3.0 is one, as here.
    WithJsonSchema({"type": "integer", "minimum": -(2**31), "maximum": INT32_MAX}),
]
Attributes = Annotated[
    dict[Name, AttributeValue | list[AttributeValue]],
    WithJsonSchema(  # pydantic would turn the name's pattern into patternProperties, which refuse nothing
        {
            "type": "object",
            "propertyNames": _NAME_SCHEMA,
            "additionalProperties": {"anyOf": [_VALUE_SCHEMA, {"type": "array", "items": _VALUE_SCHEMA}]},
        }
    ),
]


def _bounded_int(value: Any) -> Any:
    # Checked before pydantic's finiteness check, which turns a 309-digit integer into an OverflowError.
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_PRICE:
        raise ValueError(f"must be between 0 and {MAX_PRICE}")
    return value


Price = Annotated[
    StrictInt | StrictFloat,
    BeforeValidator(_bounded_int),
    Field(ge=0, le=MAX_PRICE, allow_inf_nan=False),
    WithJsonSchema({"type": "number", "minimum": 0, "maximum": MAX_PRICE}),
]

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: Any) -> Any:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time string with a time zone, e.g. 2026-11-28T10:00:00Z")
    return value


def _not_future(value: datetime) -> datetime:
    if value > datetime.now(UTC) + timedelta(seconds=MAX_FUTURE_SECONDS):
        raise ValueError(f"must not be more than {MAX_FUTURE_SECONDS} s in the future")
    return value


OccurredAt = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    AfterValidator(_not_future),
    # Not expressible in JSON Schema: at most MAX_FUTURE_SECONDS ahead of the bundle's clock.
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": f"^{_RFC3339.pattern}$"}),
]


class ContractModel(BaseModel):
    # Unknown fields are refused so a misspelt field is a 400, not silently dropped data.
    model_config = ConfigDict(extra="forbid", frozen=True)


# The bases of several models validate nothing themselves: `defer_build` keeps pydantic from building their
# validators at every cold start (2-3 ms); the models validated are built at import (defer_build=False),
# but for WebhookBody, which the webhook's flow builds at its own import.


class _ItemFields(ContractModel, defer_build=True):
    """The fields an item has besides its id, name, price and stock: each optional in upserts and patches
    alike (left out: kept as Tweakwise has it; `null`: cleared)."""

    brand: Brand | None = None
    groupCode: GroupCode | None = None
    image: Url | None = None
    url: Url | None = None
    categories: list[CategoryRef] | None = None
    attributes: Attributes | None = None


class Item(_ItemFields, defer_build=False):
    """An item's fields. An optional field left out is kept as Tweakwise has it; `null` clears it."""

    id: ItemId
    name: Name
    price: Price
    stock: Stock


class ItemPatchFields(_ItemFields, defer_build=False):
    """Some of an item's fields: `id` and at least one other, each with Item's own rules. Left out: kept as
    Tweakwise has it; `null` (optional fields only): cleared."""

    id: ItemId
    name: Name = None  # type: ignore[assignment]  # optional here, never null: an item always has one
    price: Price = None  # type: ignore[assignment]
    stock: Stock = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _some_field(self) -> ItemPatchFields:
        if not self.model_fields_set - {"id"}:
            raise ValueError("an item patch names at least one field besides id")
        return self


class Category(ContractModel):
    id: CategoryRef
    name: Name
    rank: Int32 | None = None
    parents: list[CategoryRef] | None = None
    url: Url | None = None


class _Event(ContractModel, defer_build=True):
    id: EventId
    occurredAt: OccurredAt | None = None

    def entity(self) -> EntityKey:
        """The item or category this event changes: its ordering key."""
        raise NotImplementedError


class ItemUpsert(_Event, defer_build=False):
    type: Literal["item.upsert"]
    item: Item

    def entity(self) -> EntityKey:
        return EntityKey.item(self.item.id)


class ItemDelete(_Event, defer_build=False):
    type: Literal["item.delete"]
    itemId: ItemId

    def entity(self) -> EntityKey:
        return EntityKey.item(self.itemId)


class ItemPatch(_Event, defer_build=False):
    type: Literal["item.patch"]
    item: ItemPatchFields

    def entity(self) -> EntityKey:
        return EntityKey.item(self.item.id)


class CategoryUpsert(_Event, defer_build=False):
    type: Literal["category.upsert"]
    category: Category

    def entity(self) -> EntityKey:
        return EntityKey.category(self.category.id)


class CategoryDelete(_Event, defer_build=False):
    type: Literal["category.delete"]
    categoryId: CategoryRef

    def entity(self) -> EntityKey:
        return EntityKey.category(self.categoryId)


CatalogEvent = Annotated[
    ItemUpsert | ItemPatch | ItemDelete | CategoryUpsert | CategoryDelete, Field(discriminator="type")
]


class WebhookBody(ContractModel, defer_build=True):  # built by the webhook's flow, which alone uses it
    events: Annotated[list[CatalogEvent], Field(min_length=1, max_length=MAX_EVENTS)]

    @field_validator("events")
    @classmethod
    def _unique_ids(cls, events: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for event in events:
            if event.id in seen:
                raise ValueError(f"event id {event.id!r} appears more than once")
            seen.add(event.id)
        return events


EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(CatalogEvent)


EVENT_TYPES = ("item.upsert", "item.patch", "item.delete", "category.upsert", "category.delete")


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
