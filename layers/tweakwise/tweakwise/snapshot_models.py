"""The lines of a whole-catalog snapshot (docs/snapshots.md), with the webhook's own `Item`,
`ItemPatchFields` and `Category` (`catalog`): one set of rules. Apart from `catalog` so that only the
snapshot function builds them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from .catalog import Category, ContractModel, Item, ItemPatchFields, OccurredAt


class SnapshotHeader(ContractModel):
    """Optional first line of a snapshot: when the export was cut."""

    type: Literal["snapshot"]
    takenAt: OccurredAt
    # "patch": every line is an item.patch, and the snapshot deletes nothing (a stock or price feed).
    scope: Literal["full", "patch"] = "full"


class SnapshotCategory(ContractModel):
    type: Literal["category"]
    category: Category


class SnapshotItem(ContractModel):
    type: Literal["item"]
    item: Item


class SnapshotItemPatch(ContractModel):
    type: Literal["item.patch"]
    item: ItemPatchFields


SnapshotLine = Annotated[
    SnapshotHeader | SnapshotCategory | SnapshotItem | SnapshotItemPatch, Field(discriminator="type")
]
SNAPSHOT_LINE_ADAPTER: TypeAdapter[Any] = TypeAdapter(SnapshotLine)
