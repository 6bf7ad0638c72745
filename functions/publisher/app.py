"""Publish after sync (scheduled): starts the Tweakwise `publish` task when the worker applied changes
since the last publish, and never while one is still running."""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from tweakwise.lazy import Lazy
from tweakwise.observability import logger_and_tracer
from tweakwise.publish import Publisher
from tweakwise.settings import ClientSettings, MetricsSettings, PublisherSettings
from tweakwise.state import SyncState
from tweakwise.tasks import TaskState

if TYPE_CHECKING:
    from tweakwise.client import TweakwiseClient
    from tweakwise.verify import Announcer, Verification

logger, tracer = logger_and_tracer()
metrics = Metrics()
settings = PublisherSettings.from_env()
instance = MetricsSettings.from_env().instance_name
client_settings = ClientSettings.from_env()  # read at init, as every setting


def _tweakwise() -> TweakwiseClient:
    # Most runs find nothing to publish: `requests` and the client wait for the first that calls Tweakwise.
    from tweakwise.client import TweakwiseClient

    return TweakwiseClient.from_settings(client_settings, tracer)


dynamodb = boto3.client("dynamodb")
tweakwise: Lazy[TweakwiseClient] = Lazy(_tweakwise)


def _announcer() -> Announcer:
    from tweakwise.verify import Announcer

    return Announcer(settings, instance)


announcer: Lazy[Announcer] = Lazy(_announcer)  # its clients and module: only once a publish ended


def _verify(item_ids: tuple[str, ...], context) -> Verification:
    from tweakwise.ledger import Ledger
    from tweakwise.verify import frontend, verify

    client = tweakwise.get()
    client.set_deadline(context)
    return verify(item_ids, Ledger(dynamodb, settings.ledger_table), frontend(settings, client))


publisher = Publisher(
    tweakwise,
    SyncState(dynamodb, settings.sync_state_table),
    max_publish_seconds=settings.max_publish_seconds,
    verifier=_verify if settings.publish_verify_sample else None,
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
    if outcome.last_publish == TaskState.FINISHED:  # what shoppers see of it; a shop may flush its caches
        from tweakwise.verify import Verification

        verification = outcome.verification or Verification()
        metrics.add_metric(name="PublishVerified", unit=MetricUnit.Count, value=verification.verified)
        metrics.add_metric(
            name="PublishMismatches", unit=MetricUnit.Count, value=len(verification.mismatches)
        )
        announcer.get().announce(verification)
    logger.info("Publisher: %s", outcome.reason, extra=outcome.as_dict())
    return outcome.as_dict()
