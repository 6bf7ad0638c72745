"""The ledger table (DynamoDB): what this stack believes Tweakwise holds. The one module that knows it.

One item per entity this stack wrote, keyed like the stale-write guard (`item#A1`, `category#key:shoes`):
- `field:<Tweakwise field>`: a hash of each field's value as last sent (a change whose fields all equal
  these sends nothing; otherwise only the fields that differ);
- `occurredAt`: the time of the change applied (a snapshot's takenAt, a webhook event's occurredAt);
- `snapshot`: the last snapshot that changed the entity (kept for tracing: orphans are told by a
  snapshot's id set);
- `appliedAt`: when it was applied; `createdAt`: when this stack first wrote it (the shrink guard's base is
  what existed before a snapshot started).
No expiry: an entity leaves the ledger only when this stack deletes it in Tweakwise. Entities made by a
feed import or in the Tweakwise app are never in it, so a snapshot never deletes them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .ddb import batch_get
from .entity import NOT_NEWER, EntityKey

if TYPE_CHECKING:  # boto3-stubs, a dev dependency: the layer ships no stubs
    from mypy_boto3_dynamodb import DynamoDBClient


def body_digest(body: dict[str, Any]) -> str:
    """A stable hash of a Tweakwise request body: equal bodies, equal digests, whatever the key order."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def field_digests(body: dict[str, Any]) -> dict[str, str]:
    """Each field's digest: what the ledger keeps of a body sent."""
    return {name: body_digest({name: value}) for name, value in body.items()}


FIELD = "field:"


@dataclass(frozen=True)
class Entry:
    """What this stack last sent Tweakwise for one entity: a digest per field, and when."""

    entity: EntityKey
    fields: dict[str, str]  # Tweakwise field -> digest of the value last sent
    occurred_at: float
    snapshot: str = ""
    created_at: float = 0.0  # 0: written before createdAt was recorded (it existed long before)


class Ledger:
    """One ledger table. Thread-safe (boto3 clients are)."""

    def __init__(self, dynamodb: DynamoDBClient, table: str):
        self.dynamodb = dynamodb
        self.table = table

    def get_many(self, entities: list[EntityKey]) -> dict[EntityKey, Entry]:
        """The entries of these entities that exist (strongly consistent)."""
        found: dict[EntityKey, Entry] = {}
        keys = [{"entity": {"S": str(e)}} for e in dict.fromkeys(entities)]
        for item in batch_get(self.dynamodb, self.table, keys):
            entry = _entry(item)
            found[entry.entity] = entry
        return found

    def get(self, entity: EntityKey) -> Entry | None:
        """The entity's entry (strongly consistent), or None."""
        item = self.dynamodb.get_item(
            TableName=self.table, Key={"entity": {"S": str(entity)}}, ConsistentRead=True
        )
        return _entry(item["Item"]) if "Item" in item else None

    def record(self, entity: EntityKey, sent: dict[str, Any], occurred_at: float, snapshot: str = "") -> None:
        """These fields were sent with these values. Written by the entity's lease holder only, so writes
        land in the order they were claimed; `occurred_at` is the entity's newest change."""
        values: dict[str, Any] = {":t": {"N": repr(occurred_at)}, ":a": {"N": repr(time.time())}}
        names: dict[str, str] = {}
        sets = ["occurredAt = :t", "appliedAt = :a", "createdAt = if_not_exists(createdAt, :a)"]
        for index, (name, digest) in enumerate(sorted(field_digests(sent).items())):
            names[f"#f{index}"], values[f":f{index}"] = f"{FIELD}{name}", {"S": digest}
            sets.append(f"#f{index} = :f{index}")
        if snapshot:
            sets.append("#s = :s")
            values[":s"] = {"S": snapshot}
            names["#s"] = "snapshot"  # a reserved word in expressions
        self._update(
            entity,
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeValues=values,
            **({"ExpressionAttributeNames": names} if names else {}),
        )

    def forget(self, entity: EntityKey, occurred_at: float) -> bool:
        """The entity was deleted in Tweakwise; False when a newer change was recorded meanwhile."""
        try:
            self.dynamodb.delete_item(
                TableName=self.table,
                Key={"entity": {"S": str(entity)}},
                ConditionExpression=NOT_NEWER,
                ExpressionAttributeValues={":t": {"N": repr(occurred_at)}},
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def scan(self) -> Iterator[Entry]:
        """Every entry (one paginated, strongly consistent scan)."""
        paginator = self.dynamodb.get_paginator("scan")
        for page in paginator.paginate(TableName=self.table, ConsistentRead=True):
            for item in page.get("Items", []):
                try:
                    yield _entry(item)
                except ValueError:  # no entity key: not written by this stack, never an orphan
                    continue

    def _update(self, entity: EntityKey, **request: Any) -> bool:
        try:
            self.dynamodb.update_item(TableName=self.table, Key={"entity": {"S": str(entity)}}, **request)
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True


def _entry(item: dict[str, Any]) -> Entry:
    return Entry(
        entity=EntityKey.parse(item["entity"]["S"]),
        fields={name[len(FIELD) :]: value["S"] for name, value in item.items() if name.startswith(FIELD)},
        occurred_at=float(item.get("occurredAt", {}).get("N", "0")),
        snapshot=item.get("snapshot", {}).get("S", ""),
        created_at=float(item.get("createdAt", {}).get("N", "0")),
    )
