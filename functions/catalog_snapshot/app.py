"""Whole-catalog snapshots: every step of the snapshot state machine, chosen by `action`
(tweakwise/snapshot_contract.py types each step's input and answer)."""

import boto3
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from tweakwise.client import TweakwiseClient
from tweakwise.ledger import Ledger
from tweakwise.observability import logger_and_tracer
from tweakwise.settings import MetricsSettings, SnapshotSettings
from tweakwise.snapshot import SnapshotJob
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
# The S3 client is made on first use: not at init, which every Map slot's cold start pays.
job = SnapshotJob(
    lambda: boto3.client("s3"), CatalogSync(client, state, ledger=ledger), ledger, state, settings
)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    client.set_deadline(context)
    done = job.run(event)
    if done.metrics:  # only the last step counts: the others publish no metric
        metrics.add_dimension(name="Instance", value=instance)
        for name, value in done.metrics.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        metrics.flush_metrics()
    return done.answer
