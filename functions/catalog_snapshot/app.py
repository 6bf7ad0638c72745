"""Whole-catalog snapshots: every step of the snapshot state machine, chosen by `action`.

- {"action": "validate", "input": <execution input>, "execution": ..., "started": ...}
- {"action": "categories" | "orphans" | "finish", "snapshot": ..., "run": ..., ...}
- a Distributed Map batch: {"Items": [...], "BatchInput": {"action": "apply" | "delete", ...}}
"""

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from tweakwise.client import TweakwiseClient
from tweakwise.ledger import Ledger
from tweakwise.observability import logger_and_tracer
from tweakwise.settings import MetricsSettings, SnapshotSettings
from tweakwise.snapshot import SnapshotJob, not_a_step, object_key
from tweakwise.state import SyncState
from tweakwise.sync import CatalogSync

logger, tracer = logger_and_tracer()
metrics = Metrics()
settings = SnapshotSettings.from_env()
instance = MetricsSettings.from_env().instance_name
# Reads no secret and opens no connection until the first call; one pooled connection per thread.
client = TweakwiseClient.from_env(tracer, pool_size=settings.concurrency)
dynamodb = boto3.client("dynamodb")
state = SyncState(dynamodb, settings.sync_state_table, settings.sync_state_ttl_days)
ledger = Ledger(dynamodb, settings.ledger_table)
job = SnapshotJob(
    lambda: boto3.client("s3"),  # made on first use: not at init, which every Map slot's cold start pays
    settings.bucket,
    CatalogSync(client, state, ledger=ledger),
    ledger,
    state,
    concurrency=settings.concurrency,
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    client.set_deadline(context)
    step = event.get("BatchInput", event) if isinstance(event, dict) else {}
    action = step.get("action") if isinstance(step, dict) else None
    if action == "validate":
        found = job.validate(
            object_key(event["input"], settings.bucket),
            event["execution"],
            settings.max_invalid_percent,
            settings.lock_seconds,
            settings.max_line_bytes,
        )
        return {
            **found,
            "allowMassDelete": event["input"].get("allowMassDelete") is True,
            "mapConcurrency": settings.map_concurrency,
            "batchSize": settings.batch_size,
            "toleratedFailurePercent": settings.tolerated_failure_percent,
        }
    if action == "categories":
        return job.apply_categories(step["snapshot"], step["run"], step["takenAt"])
    if action == "apply":
        return job.apply_batch(event["Items"], step["snapshot"], step["run"], step["takenAt"])
    if action == "delete":
        return job.apply_deletes(event["Items"], step["snapshot"], step["run"], step["takenAt"])
    if action == "orphans":
        return job.plan_orphans(
            step["snapshot"],
            step["run"],
            step["takenAt"],
            items=step["items"],
            allow_mass_delete=step["allowMassDelete"],
            max_delete_percent=settings.max_delete_percent,
            min_product_count=settings.min_product_count,
            started=step["started"],
        )
    if action == "finish":
        try:
            return _finish(step)
        finally:
            metrics.flush_metrics()  # only this step counts: the others publish no metric
    raise not_a_step(event, settings.bucket)


def _finish(step: dict) -> dict:
    """Report, count, mark the instance changed (publish after sync) and release the lock."""
    metrics.add_dimension(name="Instance", value=instance)
    metrics.add_metric(name=f"Snapshots{step['outcome'].capitalize()}", unit=MetricUnit.Count, value=1)
    if "run" not in step:  # validation itself failed: reported under the snapshot's name, when it has one
        state.unlock_snapshot(step["execution"])
        logger.error("Snapshot failed before validation: %s", step.get("reason"))
        job.report_unvalidated(
            step.get("input"),
            execution=step["execution"],
            outcome=step["outcome"],
            reason=step.get("reason") or "",
            started=step["started"],
        )
        return {"outcome": step["outcome"], "reason": step.get("reason") or ""}
    report = job.report(
        step["snapshot"],
        step["run"],
        execution=step["execution"],
        outcome=step["outcome"],
        reason=step.get("reason") or "",
        started=step["started"],
    )
    written = sum(report["items"][n] + report["categories"][n] for n in ("created", "updated"))
    written += report["deleted"]
    if written:
        state.mark_changed()
    if not step.get("busy"):
        state.unlock_snapshot(step["execution"])
    for name in ("created", "updated", "unchanged", "rejected", "stale"):
        count = report["items"][name]
        metrics.add_metric(name=f"SnapshotItems{name.capitalize()}", unit=MetricUnit.Count, value=count)
    metrics.add_metric(name="SnapshotItemsDeleted", unit=MetricUnit.Count, value=report["deleted"])
    metrics.add_metric(name="SnapshotInvalidLines", unit=MetricUnit.Count, value=report["invalid"])
    logger.info("Snapshot %s %s", report["snapshot"], report["outcome"], extra={"reason": report["reason"]})
    return {key: value for key, value in report.items() if key not in ("invalidLines", "rejected")}
