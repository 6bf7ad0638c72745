"""Catalog webhook (API Gateway HTTP API): checks the signature and schema, queues events on SQS FIFO."""

import boto3

from tweakwise.observability import logger_and_tracer
from tweakwise.settings import WebhookSettings
from tweakwise.signatures import SigningSecrets, Verifier
from tweakwise.webhook import http_response

logger, tracer = logger_and_tracer()
settings = WebhookSettings.from_env()
sqs = boto3.client("sqs")
# Reads no secret until the first request.
verifier = Verifier(SigningSecrets(settings.signing_secret_id, settings.signing_secret_max_age))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    # One route, so no router (Powertools' event handler would add ~90 ms to every cold start).
    return http_response(event, verifier, sqs, settings.queue_url)
