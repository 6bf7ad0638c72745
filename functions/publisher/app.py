"""Publish after sync (scheduled): starts the Tweakwise `publish` task when the worker applied changes
since the last publish, and never while one is still running."""

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from tweakwise.lazy import Lazy
from tweakwise.observability import logger_and_tracer
from tweakwise.publish import Publisher
from tweakwise.settings import ClientSettings, MetricsSettings, PublisherSettings
from tweakwise.state import SyncState
from tweakwise.tasks import TaskState

logger, tracer = logger_and_tracer()
metrics = Metrics()
settings = PublisherSettings.from_env()
instance = MetricsSettings.from_env().instance_name
client_settings = ClientSettings.from_env()  # read at init, as every setting


def _tweakwise():
    # Most runs find nothing to publish: `requests` and the client wait for the first that calls Tweakwise.
    from tweakwise.client import TweakwiseClient

    return TweakwiseClient.from_settings(client_settings, tracer)


publisher = Publisher(
    Lazy(_tweakwise),
    SyncState(boto3.client("dynamodb"), settings.sync_state_table),
    max_publish_seconds=settings.max_publish_seconds,
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    outcome = publisher.run(context=context)
    metrics.add_dimension(name="Instance", value=instance)
    metrics.add_metric(name="PublishesStarted", unit=MetricUnit.Count, value=int(outcome.published))
    metrics.add_metric(
        name="PublishFailures", unit=MetricUnit.Count, value=int(outcome.last_publish == TaskState.FAILED)
    )
    if outcome.lag is not None:  # from the oldest change this publish carries to its start
        metrics.add_metric(name="PublishLagSeconds", unit=MetricUnit.Seconds, value=round(outcome.lag, 3))
    logger.info("Publisher: %s", outcome.reason, extra=outcome.as_dict())
    return outcome.as_dict()
