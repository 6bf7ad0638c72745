"""`tweakwise-ops status`: is it healthy? The catalog queue and its dead letters (depths, the oldest
message's age), the last snapshot's report, the last publish, and the sync lag of the last hour."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tweakwise.state import SyncState
from tweakwise_ops.stack import Stack, iso_time

REPORTS = "reports/"
DEPTHS = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]


def _metric(stack: Stack, namespace: str, name: str, dimensions: list[dict[str, str]], **stat: Any) -> Any:
    """The last hour's figure of one metric (None without data: `make run` sends its metrics to stdout)."""
    now = datetime.now(UTC)
    answer = stack.client("cloudwatch").get_metric_statistics(
        Namespace=namespace, MetricName=name, Dimensions=dimensions,
        StartTime=now - timedelta(hours=1), EndTime=now, Period=3600, **stat,
    )  # fmt: skip
    points = answer.get("Datapoints", [])
    if not points:
        return None
    point = max(points, key=lambda p: p["Timestamp"])
    return point.get("ExtendedStatistics") or point.get("Maximum")


def _queue(stack: Stack, output: str) -> dict[str, Any]:
    url = stack.output(output)
    counts = stack.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=DEPTHS)["Attributes"]
    name = url.rsplit("/", 1)[1]
    age = _metric(stack, "AWS/SQS", "ApproximateAgeOfOldestMessage", [{"Name": "QueueName", "Value": name}],
                  Statistics=["Maximum"])  # fmt: skip
    return {
        "waiting": int(counts["ApproximateNumberOfMessages"]),
        "inFlight": int(counts["ApproximateNumberOfMessagesNotVisible"]),
        "oldestAgeSeconds": age,
    }


def _last_report(stack: Stack) -> dict[str, Any] | None:
    s3, bucket = stack.client("s3"), stack.output("SnapshotBucketName")
    newest = None
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=REPORTS):
        for found in page.get("Contents", []):
            if newest is None or found["LastModified"] > newest["LastModified"]:
                newest = found
    if newest is None:
        return None
    report = json.loads(s3.get_object(Bucket=bucket, Key=newest["Key"])["Body"].read())
    keep = ("snapshot", "outcome", "reason", "takenAt", "items", "deleted", "invalid")
    return {"key": newest["Key"], **{k: report.get(k) for k in keep}}


def status(stack: Stack) -> dict[str, Any]:
    marks = SyncState(stack.client("dynamodb"), stack.output("SyncStateTableName")).publish_marks()
    dimensions = [
        {"Name": "Instance", "Value": stack.output("InstanceName")},
        {"Name": "service", "Value": "catalog-worker"},
    ]
    lag = _metric(stack, stack.output("MetricsNamespace"), "SyncLagSeconds", dimensions,
                  ExtendedStatistics=["p50", "p99"])  # fmt: skip
    return {
        "queue": _queue(stack, "CatalogQueueUrl"),
        "deadLetters": _queue(stack, "CatalogDeadLetterQueueUrl"),
        "lastSnapshot": _last_report(stack),
        "lastPublish": {
            "startedAt": iso_time(marks.started_at),
            "running": marks.running,
            "changedSince": marks.changed_at > marks.started_at,
            "oldestUnpublishedChange": iso_time(marks.first_changed_at),
            "verification": {
                "at": iso_time(marks.verified_at),
                "verified": marks.verified,
                "mismatched": marks.mismatched,
            }
            if marks.verified_at
            else None,
        },
        "syncLagSeconds": lag,
    }


def show(found: dict[str, Any]) -> str:
    queue, letters = found["queue"], found["deadLetters"]
    age = queue["oldestAgeSeconds"]
    lines = [
        f"queue          {queue['waiting']} waiting, {queue['inFlight']} being applied"
        + (f", oldest {age:.0f} s" if age is not None else ""),
        f"dead letters   {letters['waiting'] + letters['inFlight']}"
        + ("  (tweakwise-ops redrive --dry-run)" if letters["waiting"] + letters["inFlight"] else ""),
    ]
    report = found["lastSnapshot"]
    if report is None:
        lines.append("last snapshot  none")
    else:
        items = report.get("items") or {}
        counts = ", ".join(f"{items.get(k, 0)} {k}" for k in ("created", "updated", "unchanged"))
        lines.append(
            f"last snapshot  {report['snapshot']}: {report['outcome']}"
            + (f" ({report['reason']})" if report.get("reason") else "")
            + f"; {counts}, {report.get('deleted') or 0} deleted"
        )
    publish = found["lastPublish"]
    if publish["startedAt"] is None:
        lines.append("last publish   none" + (" (changes wait for one)" if publish["changedSince"] else ""))
    else:
        state = "running" if publish["running"] else "started"
        waiting = (
            f"; changes since, the oldest of {publish['oldestUnpublishedChange']}"
            if publish["changedSince"]
            else ""
        )
        lines.append(f"last publish   {state} {publish['startedAt']}{waiting}")
    check = publish["verification"]
    if check:
        lines.append(
            f"publish check  {check['verified']} items shoppers see as sent, {check['mismatched']} otherwise "
            f"({check['at']})"
        )
    lag = found["syncLagSeconds"]
    lines.append(
        "sync lag       "
        + (f"p50 {lag['p50']:.1f} s, p99 {lag['p99']:.1f} s (last hour)" if lag else "no data")
    )
    return "\n".join(lines)
