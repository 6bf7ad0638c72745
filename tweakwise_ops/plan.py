"""`tweakwise-ops snapshot plan FILE`: what a snapshot would do, with Tweakwise getting no write. The file
goes under dry-runs/ in the snapshot bucket (no rule watches it) and the snapshot state machine runs with
`{"dryRun": true}`: validation, the plan and the orphans as usual, then a report of what would be created,
updated and deleted, and whether the shrink guard would stop the deletes."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tweakwise.snapshot_contract import DRY_RUNS_PREFIX, execution_input
from tweakwise.snapshot_store import read_report
from tweakwise_ops.stack import OpsError, Stack

POLL_SECONDS = 2.0


def _local(port: int, path: Path, timeout: float) -> dict[str, Any]:
    """Through `make run`, which runs its state machine in process."""
    query = urllib.parse.urlencode({"name": path.name, "dryRun": 1})
    url = f"http://127.0.0.1:{port}/_local/snapshots?{query}"
    request = urllib.request.Request(url, data=path.read_bytes(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - 127.0.0.1 only
            found = json.load(answer)
    except (urllib.error.URLError, OSError) as exc:
        raise OpsError(f"nothing answers on {url} ({exc}): start `make run`, or give --stack") from None
    if found.get("report") is None:
        raise OpsError(f"the dry run wrote no report: {found.get('outcome')}: {found.get('reason')}")
    return found["report"]


def _deployed(stack: Stack, path: Path, timeout: float) -> dict[str, Any]:
    bucket, key = stack.output("SnapshotBucketName"), f"{DRY_RUNS_PREFIX}{path.name}"
    s3, sfn = stack.client("s3"), stack.client("stepfunctions")
    s3.upload_file(str(path), bucket, key)
    arn = sfn.start_execution(
        stateMachineArn=stack.output("SnapshotStateMachineArn"),
        input=json.dumps(execution_input(bucket, key, dry_run=True)),
    )["executionArn"]
    deadline = time.monotonic() + timeout
    while (status := sfn.describe_execution(executionArn=arn)["status"]) == "RUNNING":
        if time.monotonic() > deadline:
            raise OpsError(
                f"the dry run {arn} still runs after {timeout:.0f} s; its report will be in reports/"
            )
        time.sleep(POLL_SECONDS)
    report = read_report(s3, bucket, key, arn)
    if report is None:
        raise OpsError(f"the dry run {arn} ended {status} without a report: see its execution history")
    return report


def plan(stack: Stack, path: Path, port: int, timeout: float = 3600.0) -> dict[str, Any]:
    if not path.is_file():
        raise OpsError(f"no file {path}: give a JSON Lines snapshot, plain or gzip")
    if stack.endpoint_url:  # make run
        return _local(port, path, timeout)
    return _deployed(stack, path, timeout)


def show(report: dict[str, Any]) -> str:
    if report.get("outcome") != "planned":
        return f"snapshot {report.get('snapshot')}: {report.get('outcome')}: {report.get('reason')}"
    lines = [
        f"snapshot {report['snapshot']} (dry run: nothing was sent to Tweakwise)",
        f"  {report['lines']} lines, {report['invalid']} invalid, {report['categories']} categories",
    ]
    for what in ("wouldCreate", "wouldUpdate", "wouldDelete"):
        listed = report[what]
        shown = ", ".join(map(str, listed["ids"][:10])) + (" ..." if listed["count"] > 10 else "")
        verb = {"wouldCreate": "create", "wouldUpdate": "update", "wouldDelete": "delete"}[what]
        lines.append(f"  would {verb:<7}{listed['count']}" + (f": {shown}" if listed["count"] else ""))
    lines.append(f"  unchanged     {report['unchanged']}")
    guard = report.get("guard")
    lines.append(
        f"  shrink guard  {'would stop the deletes: ' + guard if guard else 'would let the deletes go'}"
    )
    lines.append(f"  report        {report['reportKey']}")
    return "\n".join(lines)
