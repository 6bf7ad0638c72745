"""Catalog worker (SQS FIFO): applies queued webhook events to Tweakwise, reporting partial failures."""

import os

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import process_partial_response

from tweakwise.client import TweakwiseClient
from tweakwise.monitor import INSTANCE_NAME_ENV
from tweakwise.publish import PublishState
from tweakwise.secrecy import TRACER_PATCH_MODULES
from tweakwise.sync import APPLIED, REJECTED, STALE, CatalogSync, ConcurrentFifoProcessor, StaleGuard

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"tweakwise"})
tracer = Tracer(patch_modules=TRACER_PATCH_MODULES)
metrics = Metrics()
client = TweakwiseClient.from_env(tracer)  # reads no secret, opens no connection until the first call
processor = ConcurrentFifoProcessor(max_workers=int(os.environ.get("WORKER_CONCURRENCY", "10")))
sync = CatalogSync(
    client,
    StaleGuard(
        boto3.client("dynamodb"),
        os.environ["SYNC_STATE_TABLE"],
        int(os.environ.get("SYNC_STATE_TTL_DAYS", "30")),
    ),
    boto3.client("sqs"),
    os.environ["DEAD_LETTER_QUEUE_URL"],
)
publish_state = PublishState(sync.guard.dynamodb, os.environ["SYNC_STATE_TABLE"])
METRIC_NAMES = {APPLIED: "EventsApplied", STALE: "StaleEventsSkipped", REJECTED: "EventsRejected"}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    client.set_deadline(context)
    sync.counts.clear()
    response = process_partial_response(
        event=event, record_handler=sync.apply_record, processor=processor, context=context
    )
    marked = publish_state.mark_changed() if sync.counts[APPLIED] else True  # for publish after sync
    metrics.add_dimension(name="Instance", value=os.environ.get(INSTANCE_NAME_ENV, "default"))
    metrics.add_metric(name="PublishMarkFailures", unit=MetricUnit.Count, value=int(not marked))
    for outcome, name in METRIC_NAMES.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=sync.counts[outcome])
    metrics.add_metric(name="EventsRetried", unit=MetricUnit.Count, value=len(response["batchItemFailures"]))
    return response
