"""Scheduled catalog monitor: publishes Tweakwise's product and category counts as CloudWatch metrics."""

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from tweakwise.client import TweakwiseClient
from tweakwise.monitor import CATEGORIES_METRIC, PRODUCTS_METRIC, read_catalog_stats
from tweakwise.observability import logger_and_tracer
from tweakwise.settings import MetricsSettings

logger, tracer = logger_and_tracer()
metrics = Metrics()
instance = MetricsSettings.from_env().instance_name
client = TweakwiseClient.from_env(tracer)  # reads no secret, opens no connection until the first call


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    client.set_deadline(context)
    stats = read_catalog_stats(client)
    # The instance key is never a dimension: the instance is named by a template parameter.
    metrics.add_dimension(name="Instance", value=instance)
    metrics.add_metric(name=PRODUCTS_METRIC, unit=MetricUnit.Count, value=stats.total_products)
    metrics.add_metric(name=CATEGORIES_METRIC, unit=MetricUnit.Count, value=stats.total_categories)
    logger.info("Catalog stats published", extra=stats.as_dict())
    return stats.as_dict()
