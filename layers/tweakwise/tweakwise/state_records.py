"""What the sync state table's items say, as values (`state.SyncState` reads and writes them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .entity import Clocks, EntityKey


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"
    BUSY = "busy"  # another writer holds the entity's lease: wait for it


@dataclass(frozen=True)
class Lease:
    """One writer's hold on an entity: no other write of it starts before the lease ends."""

    entity: EntityKey
    token: str
    until: float  # epoch seconds


@dataclass(frozen=True)
class Claim:
    """The answer to a claim on an entity: claimed with its lease, stale, or busy."""

    outcome: ClaimOutcome
    lease: Lease | None = None  # CLAIMED
    clocks: Clocks = field(default_factory=Clocks)  # CLAIMED: the entity's clocks before this claim
    holder: str = ""  # BUSY: the event holding the lease
    until: float = 0.0  # BUSY: when its lease ends at the latest


@dataclass(frozen=True)
class PublishMarks:
    """The `__publish__` item: the last change, the last publish and its check."""

    changed_at: float = 0.0  # the last applied change (0: none yet)
    started_at: float = 0.0  # the last publish started (0: none yet)
    running: bool = False
    first_changed_at: float = 0.0  # the oldest change not yet carried by a publish (0: none)
    verify: tuple[str, ...] = ()  # items the running publish carries, to look up once it ends
    verified_at: float = 0.0  # the last verification (0: none): when, and what it found
    verified: int = 0
    mismatched: int = 0

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> PublishMarks:
        """The `__publish__` item of the sync state table."""

        def number(name: str) -> float:
            return float(item.get(name, {}).get("N", 0))

        return cls(
            changed_at=number("changedAt"),
            started_at=number("startedAt"),
            running=bool(item.get("running", {}).get("BOOL", False)),
            first_changed_at=number("firstChangedAt"),
            verify=tuple(sorted(item.get("verify", {}).get("SS", []))),
            verified_at=number("verifiedAt"),
            verified=int(number("verified")),
            mismatched=int(number("mismatched")),
        )


@dataclass(frozen=True)
class Failure:
    """Why an event's last attempt failed (a message SQS dead-letters by itself carries no reason)."""

    event_id: str
    reason: str
    attempts: int
    failed_at: float  # epoch seconds
