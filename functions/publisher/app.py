"""Publish after sync (scheduled): starts the Tweakwise `publish` task when the worker applied changes
since the last publish, and never while one is still running."""

import os

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from tweakwise.client import TweakwiseClient
from tweakwise.monitor import INSTANCE_NAME_ENV
from tweakwise.publish import Publisher, PublishState
from tweakwise.secrecy import TRACER_PATCH_MODULES

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"tweakwise"})
tracer = Tracer(patch_modules=TRACER_PATCH_MODULES)
metrics = Metrics()
client = TweakwiseClient.from_env(tracer)
publisher = Publisher(
    client,
    PublishState(boto3.client("dynamodb"), os.environ["SYNC_STATE_TABLE"]),
    max_publish_seconds=float(os.environ.get("MAX_PUBLISH_SECONDS", "3600")),
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    client.set_deadline(context)
    outcome = publisher.run()
    metrics.add_dimension(name="Instance", value=os.environ.get(INSTANCE_NAME_ENV, "default"))
    metrics.add_metric(name="PublishesStarted", unit=MetricUnit.Count, value=int(outcome["published"]))
    metrics.add_metric(
        name="PublishFailures", unit=MetricUnit.Count, value=int(outcome.get("lastPublish") == "failed")
    )
    logger.info("Publisher: %s", outcome["reason"], extra=outcome)
    return outcome
