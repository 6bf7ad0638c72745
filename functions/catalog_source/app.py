"""Catalog source (EventBridge rules on the commercetools and Shopify partner buses): maps each platform
event to catalog events and queues them on the catalog queue, as the webhook does."""

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from tweakwise.observability import logger_and_tracer
from tweakwise.settings import MetricsSettings, SourceSettings
from tweakwise.source_flow import SourceFlow
from tweakwise.source_map import SourceMap

logger, tracer = logger_and_tracer()
metrics = Metrics()
settings = SourceSettings.from_env()
instance = MetricsSettings.from_env().instance_name
flow = SourceFlow(
    settings, SourceMap(boto3.client("dynamodb"), settings.source_map_table), boto3.client("sqs")
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    outcome = flow.handle(event)
    metrics.add_dimension(name="Instance", value=instance)
    metrics.add_metric(name="SourceEventsQueued", unit=MetricUnit.Count, value=outcome.queued)
    metrics.add_metric(name="SourceEventsSkipped", unit=MetricUnit.Count, value=int(bool(outcome.skipped)))
    metrics.add_metric(
        name="SourceEventsDeadLettered", unit=MetricUnit.Count, value=int(bool(outcome.dead_lettered))
    )
    return {
        "source": outcome.source,
        "type": outcome.kind,
        "queued": outcome.queued,
        "skipped": outcome.skipped,
    }
