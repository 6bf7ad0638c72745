"""The sync state table (DynamoDB): the one module that knows its keys and how they are written. Its
concerns, each a section of `SyncState`:

1. the stale-write guard and the writer's lease, per entity (`claim_entity`, `release`);
2. publish after sync (`mark_changed`, `publish_marks`, `claim_publish`, `finish_publish`; the worker's
   side is `publish_mark.PublishMark`);
3. one snapshot at a time (`lock_snapshot`, `unlock_snapshot`);
4. why an event failed (`record_failure`, `failures`).

Items, by their `entity` key:
- an `EntityKey` (e.g. `item#A1`): its clocks, `clock:<field>` per Tweakwise field (the `occurredAt` of
  the change that set it) and `occurredAt` for the whole entity (a delete), so a sender's late retry never
  reverts newer data (the stale-write guard), and the lease of the one writer sending it to
  Tweakwise now (`leaseToken`, `leaseUntil`), so writes of one entity reach Tweakwise in the order they
  were claimed, retries included; expires after `ttl_days`.
- `__publish__`: changedAt (last applied change), startedAt (last publish started), running.
- `__snapshot__`: the lock that lets one snapshot run at a time (execution, lockedAt).
- `__publish_sample__`: a few items changed since the last publish (`ids`), which the next publish carries
  to `__publish__`'s `verify`: what the publisher looks up on the shopper-facing API once it ends.
- `failure#<event id>`: the reason of the event's last failed attempt, when, and how many failed;
  expires after `ttl_days`.
Every write but the failure records is conditional, so concurrent workers, publishers and batches agree.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .ddb import batch_get
from .entity import Clocks, EntityKey
from .settings import WorkerSettings
from .state_records import Claim, ClaimOutcome, Failure, Lease, PublishMarks

__all__ = ["Claim", "ClaimOutcome", "Failure", "Lease", "PublishMarks", "SyncState"]

if TYPE_CHECKING:  # boto3-stubs, a dev dependency: the layer ships no stubs
    from mypy_boto3_dynamodb import DynamoDBClient

logger = logging.getLogger("tweakwise")

PUBLISH_KEY = {"entity": {"S": "__publish__"}}
SNAPSHOT_LOCK_KEY = {"entity": {"S": "__snapshot__"}}
SAMPLE_KEY = {"entity": {"S": "__publish_sample__"}}
_VERIFIED = (
    ("verified_at", "verifiedAt", float),
    ("verified", "verified", int),
    ("mismatched", "mismatched", int),
)  # items changed since the last publish, a few
FAILURE = "failure#"  # `failure#<event id>`: why the event's last attempt failed


CLOCK = "clock:"  # a field's clock: `clock:<Tweakwise field>` (epoch seconds of the change that set it)


def _clocks(item: Mapping[str, Any]) -> Clocks:
    whole = float(item["occurredAt"]["N"]) if "occurredAt" in item else None
    fields = {name[len(CLOCK) :]: float(value["N"]) for name, value in item.items() if name.startswith(CLOCK)}
    return Clocks(whole, fields)


class SyncState:
    """One sync state table. Thread-safe (boto3 clients are)."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table: str,
        ttl_days: int = WorkerSettings.default("sync_state_ttl_days"),
    ):
        self.dynamodb = dynamodb
        self.table = table
        self.ttl_seconds = ttl_days * 86400

    def _update(self, key: dict[str, Any], **request: Any) -> bool:
        """UpdateItem with a ConditionExpression: True when written, False when the condition did not hold."""
        try:
            self.dynamodb.update_item(TableName=self.table, Key=key, **request)
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # -- the stale-write guard and the writer's lease -------------------------------------------------

    def claim_entity(
        self, entity: EntityKey, event_id: str, lease_until: float, now: float | None = None
    ) -> Claim:
        """Take the entity's lease for an event, unless another writer's lease on it runs (busy: its
        request may still reach Tweakwise). Claimed: the lease until `lease_until` (epoch seconds) and the
        entity's clocks as they were, for the caller to tell which fields are still its to set."""
        now = time.time() if now is None else now
        token = uuid.uuid4().hex
        try:
            answer = self.dynamodb.update_item(
                TableName=self.table,
                Key={"entity": {"S": str(entity)}},
                UpdateExpression="SET eventId = :e, expiresAt = :x, leaseToken = :k, leaseUntil = :u",
                ConditionExpression="attribute_not_exists(leaseUntil) OR leaseUntil < :now",
                ExpressionAttributeValues={
                    ":e": {"S": event_id},
                    ":x": {"N": str(int(now) + self.ttl_seconds)},
                    ":k": {"S": token},
                    ":u": {"N": repr(lease_until)},
                    ":now": {"N": repr(now)},
                },
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException as exc:
            response: Any = exc.response  # with the item, through ReturnValuesOnConditionCheckFailure
            old: dict[str, Any] = response.get("Item") or {}
            until = float(old.get("leaseUntil", {}).get("N", "0"))
            return Claim(ClaimOutcome.BUSY, holder=old.get("eventId", {}).get("S", ""), until=until)
        return Claim(
            ClaimOutcome.CLAIMED, Lease(entity, token, lease_until), _clocks(answer.get("Attributes", {}))
        )

    def inspect(self, entity: EntityKey) -> tuple[Clocks, str, float]:
        """For the operator: the entity's clocks, and the event holding its lease and until when."""
        item = self.dynamodb.get_item(
            TableName=self.table, Key={"entity": {"S": str(entity)}}, ConsistentRead=True
        ).get("Item", {})
        return (
            _clocks(item),
            item.get("eventId", {}).get("S", ""),
            float(item.get("leaseUntil", {}).get("N", 0)),
        )

    def release(
        self, lease: Lease, until: float | None = None, stamps: Mapping[str, float] | None = None,
        whole: float | None = None, attempts: int = 3,
    ) -> None:  # fmt: skip
        """End a lease (or, with `until`, keep it until then only), unless another writer holds it by now,
        and stamp the clocks of the fields the change set (`whole`: of the entity, for a delete). Tried
        `attempts` times: a stamp lost would let an older change revert these fields."""
        from botocore.exceptions import BotoCoreError, ClientError

        values: dict[str, Any] = {":k": {"S": lease.token}}
        names: dict[str, str] = {}
        sets = []
        for index, (name, at) in enumerate(sorted((stamps or {}).items())):
            names[f"#c{index}"], values[f":c{index}"] = f"{CLOCK}{name}", {"N": repr(at)}
            sets.append(f"#c{index} = :c{index}")
        if whole is not None:
            sets.append("occurredAt = :w")
            values[":w"] = {"N": repr(whole)}
        if until is not None:
            sets.append("leaseUntil = :u")
            values[":u"] = {"N": repr(until)}
        expression = (f"SET {', '.join(sets)} " if sets else "") + (
            "" if until is not None else "REMOVE leaseToken, leaseUntil"
        )
        request: dict[str, Any] = {"ExpressionAttributeNames": names} if names else {}
        for attempt in range(attempts):
            try:
                self._update(
                    {"entity": {"S": str(lease.entity)}},
                    UpdateExpression=expression.strip(),
                    ConditionExpression="leaseToken = :k",
                    ExpressionAttributeValues=values,
                    **request,
                )
                return
            except (BotoCoreError, ClientError) as exc:
                failure = exc
                if attempt + 1 < attempts:
                    time.sleep(0.1 * 2**attempt)
        logger.warning(
            "Could not release the lease on %s (%s); it ends by itself at its time",
            lease.entity,
            getattr(failure, "response", {}).get("Error", {}).get("Code") or type(failure).__name__,
        )

    # -- publish after sync ---------------------------------------------------------------------------

    def mark_changed(
        self, now: float | None = None, attempts: int = 3, pause: float = 0.2, first: float | None = None
    ) -> bool:
        """Called (through PublishMark) once per batch that applied changes, `first` its first write's time
        (kept until a publish carries it: the publish lag). The changes are applied whatever happens here:
        after `attempts` failed writes it logs and returns False (the worker counts it), and the next
        applied change marks the instance changed again."""
        from botocore.exceptions import BotoCoreError, ClientError

        now = time.time() if now is None else now
        first = min(now, time.time()) if first is None else first
        for attempt in range(attempts):
            try:
                self._update(  # False: a later change is recorded already
                    PUBLISH_KEY,
                    UpdateExpression="SET changedAt = :now, "
                    "firstChangedAt = if_not_exists(firstChangedAt, :f)",
                    ConditionExpression="attribute_not_exists(changedAt) OR changedAt < :now",
                    ExpressionAttributeValues={":now": {"N": repr(now)}, ":f": {"N": repr(first)}},
                )
            except (BotoCoreError, ClientError) as exc:
                failure = exc
                if attempt + 1 < attempts:
                    time.sleep(pause * 2**attempt)
            else:
                return True
        logger.error(
            "Could not mark table %s changed for publish after sync after %d attempts (%s); the next "
            "applied change marks it again",
            self.table,
            attempts,
            getattr(failure, "response", {}).get("Error", {}).get("Code") or type(failure).__name__,
        )
        return False

    def publish_marks(self) -> PublishMarks:
        item = self.dynamodb.get_item(TableName=self.table, Key=PUBLISH_KEY, ConsistentRead=True).get(
            "Item", {}
        )
        return PublishMarks.from_item(item)

    def record_verification(self, verified: int, mismatched: int, now: float) -> None:
        """What the last publish's check found, for `tweakwise-ops status`."""
        values = {":t": {"N": repr(now)}, ":v": {"N": str(verified)}, ":m": {"N": str(mismatched)}}
        expression = "SET verifiedAt = :t, verified = :v, mismatched = :m"
        self.dynamodb.update_item(
            TableName=self.table,
            Key=PUBLISH_KEY,
            UpdateExpression=expression,
            ExpressionAttributeValues=values,
        )

    def claim_publish(self, previous_start: float, now: float) -> bool:
        """Start a publish, unless another publisher did since `previous_start` or one is running."""
        return self._update(
            PUBLISH_KEY,
            UpdateExpression="SET startedAt = :now, running = :yes REMOVE firstChangedAt",  # carried now
            ConditionExpression=(
                "(attribute_not_exists(startedAt) OR startedAt = :prev) "
                "AND (attribute_not_exists(running) OR running = :no)"
            ),
            ExpressionAttributeValues={
                ":now": {"N": repr(now)},
                ":prev": {"N": repr(previous_start)},
                ":yes": {"BOOL": True},
                ":no": {"BOOL": False},
            },
        )

    def finish_publish(self, started: float, restore_start: float | None = None) -> None:
        """The publish started at `started` is over (or, with restore_start, never began)."""
        values: dict[str, Any] = {":no": {"BOOL": False}, ":started": {"N": repr(started)}}
        expression = "SET running = :no REMOVE verify" if restore_start is None else "SET running = :no"
        if restore_start is not None:
            expression += ", startedAt = :prev"
            values[":prev"] = {"N": repr(restore_start)}
        self._update(  # False: someone else moved on already
            PUBLISH_KEY,
            UpdateExpression=expression,
            ConditionExpression="startedAt = :started",
            ExpressionAttributeValues=values,
        )

    def sample_changed(self, item_ids: list[str], limit: int) -> bool:
        """Items a batch changed, for the next publish to verify: at most `limit` kept (False: no room)."""
        item_ids = item_ids[:limit]
        return bool(item_ids) and self._update(
            SAMPLE_KEY,
            UpdateExpression="ADD ids :ids",
            ConditionExpression="attribute_not_exists(ids) OR size(ids) <= :room",
            ExpressionAttributeValues={":ids": {"SS": item_ids}, ":room": {"N": str(limit - len(item_ids))}},
        )

    def carry_sample(self, started: float) -> tuple[str, ...]:
        """The publish started at `started` carries the sampled items: they move to its `verify`."""
        old = self.dynamodb.delete_item(TableName=self.table, Key=SAMPLE_KEY, ReturnValues="ALL_OLD")
        ids = old.get("Attributes", {}).get("ids", {}).get("SS", [])
        if ids:
            self._update(
                PUBLISH_KEY,
                UpdateExpression="SET verify = :ids",
                ConditionExpression="startedAt = :started",
                ExpressionAttributeValues={":ids": {"SS": ids}, ":started": {"N": repr(started)}},
            )
        return tuple(sorted(ids))

    # -- one snapshot at a time ----------------------------------------------------------------------

    def lock_snapshot(self, execution: str, lease_seconds: float, now: float | None = None) -> str:
        """Take the snapshot lock for `execution`: "" when taken, else the execution holding it. A lock
        older than `lease_seconds` (its execution crashed without releasing it) is taken over."""
        now = time.time() if now is None else now
        taken = self._update(
            SNAPSHOT_LOCK_KEY,
            UpdateExpression="SET #e = :me, lockedAt = :now",
            ConditionExpression="attribute_not_exists(#e) OR #e = :me OR lockedAt < :stale",
            ExpressionAttributeNames={"#e": "execution"},
            ExpressionAttributeValues={
                ":me": {"S": execution},
                ":now": {"N": repr(now)},
                ":stale": {"N": repr(now - lease_seconds)},
            },
        )
        if taken:
            return ""
        item = self.dynamodb.get_item(TableName=self.table, Key=SNAPSHOT_LOCK_KEY, ConsistentRead=True)
        return item.get("Item", {}).get("execution", {}).get("S", "(released meanwhile: start again)")

    def unlock_snapshot(self, execution: str) -> bool:
        """Release the lock if `execution` holds it (never another execution's)."""
        return self._update(
            SNAPSHOT_LOCK_KEY,
            UpdateExpression="REMOVE #e, lockedAt",
            ConditionExpression="#e = :me",
            ExpressionAttributeNames={"#e": "execution"},
            ExpressionAttributeValues={":me": {"S": execution}},
        )

    # -- why an event failed --------------------------------------------------------------------------

    def record_failure(self, event_id: str, reason: str, now: float | None = None) -> None:
        """An attempt to apply the event failed: its reason replaces the last one, the attempts add up."""
        now = time.time() if now is None else now
        self.dynamodb.update_item(
            TableName=self.table,
            Key={"entity": {"S": FAILURE + event_id}},
            UpdateExpression="SET reason = :r, failedAt = :t, expiresAt = :x ADD attempts :one",
            ExpressionAttributeValues={
                ":r": {"S": reason},
                ":t": {"N": repr(now)},
                ":x": {"N": str(int(now) + self.ttl_seconds)},
                ":one": {"N": "1"},
            },
        )

    def failures(self, event_ids: list[str]) -> dict[str, Failure]:
        """The failure records of these events that exist, by event id."""
        keys = [{"entity": {"S": FAILURE + event_id}} for event_id in dict.fromkeys(event_ids)]
        found = {}
        for item in batch_get(self.dynamodb, self.table, keys):
            event_id = item["entity"]["S"][len(FAILURE) :]
            found[event_id] = Failure(
                event_id, item["reason"]["S"], int(item["attempts"]["N"]), float(item["failedAt"]["N"])
            )
        return found
