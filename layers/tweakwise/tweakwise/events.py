"""The catalog webhook contract: {"events": [...]} with 1 to 100 events, validated with pydantic
(through Powertools Parser). The same models read the events back from the queue in the worker."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

MAX_EVENTS = 100

Text = Annotated[str, StringConstraints(strict=True)]
ItemId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=100)]
CategoryKey = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=50)]
CategoryId = Annotated[StrictInt, Field(ge=0)]
CategoryRef = CategoryId | CategoryKey  # numeric Tweakwise id, or the shop's own key
AttributeValue = Annotated[str, StringConstraints(strict=True, max_length=400)]


class _Model(BaseModel):
    # Unknown fields are refused so a misspelt field is a 400, not silently dropped data.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Item(_Model):
    id: ItemId
    name: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=500)]
    price: Annotated[StrictFloat | StrictInt, Field(ge=0, allow_inf_nan=False)]
    stock: Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)]
    brand: Annotated[str, StringConstraints(strict=True, max_length=250)] | None = None
    groupCode: Annotated[str, StringConstraints(strict=True, max_length=100)] | None = None
    image: Annotated[str, StringConstraints(strict=True, max_length=500)] | None = None
    url: Annotated[str, StringConstraints(strict=True, max_length=500)] | None = None
    categories: list[CategoryRef] | None = None
    attributes: (
        dict[
            Annotated[str, StringConstraints(strict=True, min_length=1, max_length=500)],
            AttributeValue | list[AttributeValue],
        ]
        | None
    ) = None


class Category(_Model):
    id: CategoryRef
    name: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=500)]
    rank: StrictInt | None = None
    parents: list[CategoryRef] | None = None
    url: Annotated[str, StringConstraints(strict=True, max_length=500)] | None = None


class _Event(_Model):
    id: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=128)]
    occurredAt: AwareDatetime | None = None

    def entity(self) -> tuple[str, str]:
        """(kind, reference) of the item or category this event changes: its ordering key."""
        raise NotImplementedError


class ItemUpsert(_Event):
    type: Literal["item.upsert"]
    item: Item

    def entity(self) -> tuple[str, str]:
        return ("item", self.item.id)


class ItemDelete(_Event):
    type: Literal["item.delete"]
    itemId: ItemId

    def entity(self) -> tuple[str, str]:
        return ("item", self.itemId)


class CategoryUpsert(_Event):
    type: Literal["category.upsert"]
    category: Category

    def entity(self) -> tuple[str, str]:
        return category_entity(self.category.id)


class CategoryDelete(_Event):
    type: Literal["category.delete"]
    categoryId: CategoryRef

    def entity(self) -> tuple[str, str]:
        return category_entity(self.categoryId)


def category_entity(ref: int | str) -> tuple[str, str]:
    # Numeric ids and string keys are different namespaces: 5 and "5" are not the same reference.
    return ("category", f"id:{ref}" if isinstance(ref, int) else f"key:{ref}")


CatalogEvent = Annotated[
    ItemUpsert | ItemDelete | CategoryUpsert | CategoryDelete, Field(discriminator="type")
]


class WebhookBody(_Model):
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
EVENT_TYPES = ("item.upsert", "item.delete", "category.upsert", "category.delete")


# Parts of a pydantic error location that name a union branch or validator, not a field of the body.
_BRANCH_NAMES = frozenset({"str", "int", "float", "bool", "list", "dict", *EVENT_TYPES})


def _is_branch(part: str) -> bool:
    return (
        part in _BRANCH_NAMES
        or any(c in part for c in "[(")
        or part.startswith(("constrained-", "function-"))
    )


def error_list(exc: ValidationError) -> list[dict[str, str]]:
    """pydantic errors as [{"path": "events[0].item.price", "error": "..."}], one per offending field."""
    by_path: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False, include_input=False):
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
