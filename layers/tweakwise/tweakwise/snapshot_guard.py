"""The shrink guard: whether a snapshot's orphans may be deleted. A pure function of counts, so each edge
has a unit test (docs/decisions/0004-the-shrink-guard.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .entity import KINDS, Kind

PLURAL: dict[Kind, str] = {"item": "items", "category": "categories"}


@dataclass(frozen=True)
class GuardInput:
    """What the shrink guard weighs: the snapshot's counts and the ledger's."""

    items: int  # items the snapshot holds
    applied: int  # items applied, counted once per batch however often it ran
    keeps: str  # why the snapshot's own lines keep every orphan ("" when they do not)
    orphans: Mapping[Kind, int]  # per kind: entities of the ledger the snapshot lacks
    before: Mapping[Kind, int]  # per kind: entities of the ledger that existed before the execution
    allow_mass_delete: bool
    max_delete_percent: float
    min_product_count: int


def shrink_guard(found: GuardInput) -> str | None:
    """Why nothing may be deleted, or None when the orphans may go. In this order:
    1. a batch failed: orphans cannot be told apart (even with allowMassDelete);
    2. no orphans, or allowMassDelete: nothing to guard;
    3. an invalid line names no readable id (or too many were held): it may be any entity;
    4. per kind, the orphans exceed `max_delete_percent` of what existed before the execution;
    5. the snapshot holds fewer items than `min_product_count`."""
    if found.applied < found.items:
        return (
            f"{found.items - found.applied} of {found.items} items were not applied (failed batches), so "
            "orphans cannot be told apart: nothing was deleted; run the snapshot again"
        )
    if not any(found.orphans.values()) or found.allow_mass_delete:
        return None
    if found.keeps:
        return found.keeps
    for kind in KINDS:
        orphans, base = found.orphans.get(kind, 0), found.before.get(kind, 0)
        if orphans and orphans * 100 > found.max_delete_percent * base:
            return (
                f"{orphans} of the {base} {PLURAL[kind]} that existed before this snapshot would be "
                f"deleted, above SnapshotMaxDeletePercent ({found.max_delete_percent:g} %): nothing was "
                "deleted"
            )
    if found.items < found.min_product_count:
        return (
            f"the snapshot holds {found.items} items, fewer than MinProductCount "
            f"({found.min_product_count}): nothing was deleted"
        )
    return None
