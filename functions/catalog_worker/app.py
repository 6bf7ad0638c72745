"""Catalog worker (SQS FIFO): applies queued webhook events to Tweakwise, reporting partial failures."""

from __future__ import annotations

import time
from collections import Counter

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from tweakwise.client import TweakwiseClient
from tweakwise.fifo import ConcurrentFifoProcessor
from tweakwise.ledger import Ledger
from tweakwise.observability import logger_and_tracer
from tweakwise.publish_mark import PublishMark
from tweakwise.settings import MetricsSettings, WorkerSettings
from tweakwise.state import SyncState
from tweakwise.sync import CatalogSync, Outcome
from tweakwise.worker import QueueWorker

logger, tracer = logger_and_tracer()
metrics = Metrics()
settings = WorkerSettings.from_env()
instance = MetricsSettings.from_env().instance_name
# Reads no secret and opens no connection until the first call; one pooled connection per thread.
client = TweakwiseClient.from_env(tracer, pool_size=settings.concurrency)
dynamodb = boto3.client("dynamodb")
state = SyncState(dynamodb, settings.sync_state_table, settings.sync_state_ttl_days)
ledger = Ledger(dynamodb, settings.ledger_table)  # what a snapshot compares with: one apply path writes it
# For publish after sync: started with the batch's first write; offers items for the publish's check.
mark = PublishMark(state, sample=settings.publish_verify_sample)
sync = CatalogSync(client, state, ledger, on_send=mark.sending)
# The SQS client is made only when an event is dead-lettered.
worker = QueueWorker(sync, lambda: boto3.client("sqs"), settings.dead_letter_queue_url)
processor = ConcurrentFifoProcessor(max_workers=settings.concurrency)
METRIC_NAMES = {  # each outcome's metric; created, updated and deleted are all applied
    "EventsApplied": (Outcome.CREATED, Outcome.UPDATED, Outcome.DELETED),
    "EventsUnchanged": (Outcome.UNCHANGED,),
    "StaleEventsSkipped": (Outcome.STALE,),
    "PatchesSkipped": (Outcome.MISSING,),  # a patch of an item Tweakwise does not have
    "EventsRejected": (Outcome.REJECTED,),
}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    client.set_deadline(context)
    mark.begin(until=time.time() + context.get_remaining_time_in_millis() / 1000)
    batch = processor.process(event["Records"], worker.apply_record)
    outcomes = Counter(batch.results.values())
    response = batch.response()
    marked = mark.wait()
    metrics.add_dimension(name="Instance", value=instance)
    metrics.add_metric(name="PublishMarkFailures", unit=MetricUnit.Count, value=int(not marked))
    for name, counted in METRIC_NAMES.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=sum(outcomes[o] for o in counted))
    metrics.add_metric(name="EventsRetried", unit=MetricUnit.Count, value=len(response["batchItemFailures"]))
    for lag in worker.take_lags():  # each applied change: its occurredAt to Tweakwise's answer
        metrics.add_metric(name="SyncLagSeconds", unit=MetricUnit.Seconds, value=round(lag, 3))
    return response
