"""Publish after sync: the worker marks the instance changed; a scheduled publisher starts the `publish`
task only if something changed since the last publish it started, and never while one is running.

State: one DynamoDB item (entity "__publish__") in the sync state table, updated with conditional writes
so concurrent workers and publishers agree: changedAt (last applied change), startedAt (last publish
started), running (a publish is under way).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from . import tasks
from .client import TweakwiseClient
from .dynamo import conditional_update

logger = logging.getLogger("tweakwise")

KEY = {"entity": {"S": "__publish__"}}
PUBLISH_TASK = "publish"
UNKNOWN_GRACE = 300.0  # seconds a publish whose status cannot be read still counts as running


class PublishState:
    def __init__(self, dynamodb: Any, table: str):
        self.dynamodb = dynamodb
        self.table = table

    def mark_changed(self, now: float | None = None, attempts: int = 3, pause: float = 0.2) -> bool:
        """Called by the worker after it applied changes; one write per batch. The changes are applied
        whatever happens here: after `attempts` failed writes it logs and returns False (the worker counts
        it), and the next applied change marks the instance changed again."""
        from botocore.exceptions import BotoCoreError, ClientError

        now = time.time() if now is None else now
        for attempt in range(attempts):
            try:
                conditional_update(  # False: a later change is recorded already
                    self.dynamodb,
                    TableName=self.table,
                    Key=KEY,
                    UpdateExpression="SET changedAt = :now",
                    ConditionExpression="attribute_not_exists(changedAt) OR changedAt < :now",
                    ExpressionAttributeValues={":now": {"N": repr(now)}},
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

    def read(self) -> dict[str, Any]:
        item = self.dynamodb.get_item(TableName=self.table, Key=KEY, ConsistentRead=True).get("Item", {})
        return {
            "changedAt": float(item["changedAt"]["N"]) if "changedAt" in item else 0.0,
            "startedAt": float(item["startedAt"]["N"]) if "startedAt" in item else 0.0,
            "running": bool(item.get("running", {}).get("BOOL", False)),
        }

    def claim(self, previous_start: float, now: float) -> bool:
        """Start a publish, unless another publisher did since `previous_start` or one is running."""
        return conditional_update(
            self.dynamodb,
            TableName=self.table,
            Key=KEY,
            UpdateExpression="SET startedAt = :now, running = :yes",
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

    def finish(self, started: float, restore_start: float | None = None) -> None:
        """The publish started at `started` is over (or, with restore_start, never began)."""
        values: dict[str, Any] = {":no": {"BOOL": False}, ":started": {"N": repr(started)}}
        expression = "SET running = :no"
        if restore_start is not None:
            expression += ", startedAt = :prev"
            values[":prev"] = {"N": repr(restore_start)}
        conditional_update(  # False: someone else moved on already
            self.dynamodb,
            TableName=self.table,
            Key=KEY,
            UpdateExpression=expression,
            ConditionExpression="startedAt = :started",
            ExpressionAttributeValues=values,
        )


class Publisher:
    def __init__(self, client: TweakwiseClient, state: PublishState, max_publish_seconds: float = 3600):
        self.client = client
        self.state = state
        self.max_publish_seconds = max_publish_seconds

    def run(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        current = self.state.read()
        if current["running"]:
            guid = tasks.task_guid(
                self.client.credentials.get(), PUBLISH_TASK, self.client.credentials.secret_id
            )
            found = tasks.parse_task_status(self.client.task_status(guid))
            logger.info("The last publish is %s (status answer %s)", found.state, found.shown())
            age = now - current["startedAt"]
            # An unreadable status right after a start (not triggered yet, or Tweakwise still catching up)
            # is taken as running for a while: finishing it early could start a second publish.
            running = found.state == tasks.RUNNING or (found.state == tasks.UNKNOWN and age < UNKNOWN_GRACE)
            if running and age < self.max_publish_seconds:
                return {"published": False, "reason": "a publish is still running"}
            self.state.finish(current["startedAt"])
            if found.state == tasks.FAILED:
                logger.error("The last Tweakwise publish failed (status answer %s)", found.shown())
            current["running"] = False
            outcome_of_last = found.state
        else:
            outcome_of_last = None
        if current["changedAt"] <= current["startedAt"]:
            return {
                "published": False,
                "reason": "nothing changed since the last publish",
                "lastPublish": outcome_of_last,
            }
        if not self.state.claim(current["startedAt"], now):
            return {
                "published": False,
                "reason": "another publisher started one",
                "lastPublish": outcome_of_last,
            }
        try:
            tasks.trigger(self.client, PUBLISH_TASK)
        except Exception:
            self.state.finish(now, restore_start=current["startedAt"])  # let the next run try again
            raise
        return {"published": True, "reason": "changes since the last publish", "lastPublish": outcome_of_last}
