"""Catalog worker (SQS FIFO): applies queued webhook events to Tweakwise, reporting partial failures."""

from collections import Counter

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from tweakwise.client import TweakwiseClient
from tweakwise.ledger import Ledger
from tweakwise.observability import logger_and_tracer
from tweakwise.settings import MetricsSettings, WorkerSettings
from tweakwise.state import SyncState
from tweakwise.sync import CatalogSync, ConcurrentFifoProcessor, Outcome

logger, tracer = logger_and_tracer()
metrics = Metrics()
settings = WorkerSettings.from_env()
instance = MetricsSettings.from_env().instance_name
client = TweakwiseClient.from_env(tracer)  # reads no secret, opens no connection until the first call
dynamodb = boto3.client("dynamodb")
state = SyncState(dynamodb, settings.sync_state_table, settings.sync_state_ttl_days)
ledger = Ledger(dynamodb, settings.ledger_table)  # what a snapshot compares with: one apply path writes it
sync = CatalogSync(client, state, boto3.client("sqs"), settings.dead_letter_queue_url, ledger)
processor = ConcurrentFifoProcessor(max_workers=settings.concurrency)
METRIC_NAMES = {
    Outcome.APPLIED: "EventsApplied",
    Outcome.STALE: "StaleEventsSkipped",
    Outcome.REJECTED: "EventsRejected",
}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    client.set_deadline(context)
    with processor(records=event["Records"], handler=sync.apply_record, lambda_context=context):
        results = processor.process()
    outcomes = Counter(result for status, result, _record in results if status == "success")
    response = processor.response()
    marked = state.mark_changed() if outcomes[Outcome.APPLIED] else True  # for publish after sync
    metrics.add_dimension(name="Instance", value=instance)
    metrics.add_metric(name="PublishMarkFailures", unit=MetricUnit.Count, value=int(not marked))
    for outcome, name in METRIC_NAMES.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=outcomes[outcome])
    metrics.add_metric(name="EventsRetried", unit=MetricUnit.Count, value=len(response["batchItemFailures"]))
    return response
