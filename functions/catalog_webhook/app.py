"""Catalog webhook (API Gateway HTTP API): checks the signature and schema, queues events on SQS FIFO."""

import boto3
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types

from tweakwise.observability import logger_and_tracer
from tweakwise.settings import WebhookSettings
from tweakwise.webhook import SigningSecrets, Verifier, WebhookRequest, handle_webhook

logger, tracer = logger_and_tracer()
app = APIGatewayHttpResolver()
settings = WebhookSettings.from_env()
sqs = boto3.client("sqs")
# Reads no secret until the first request.
verifier = Verifier(SigningSecrets(settings.signing_secret_id, settings.signing_secret_max_age))


@app.post("/webhooks/catalog")
def catalog_webhook() -> Response:
    event = app.current_event
    request = WebhookRequest(event.headers or {}, event.body or "", bool(event.is_base64_encoded))
    answer = handle_webhook(request, verifier, sqs, settings.queue_url)
    return Response(status_code=answer.status, content_type=content_types.APPLICATION_JSON, body=answer.body)


@app.not_found
def not_found(_exc: Exception) -> Response:
    return Response(
        status_code=404,
        content_type=content_types.APPLICATION_JSON,
        body={"message": "Not found; POST catalog events to /webhooks/catalog"},
    )


@app.exception_handler(Exception)
def unexpected(exc: Exception) -> Response:
    # Never a stack trace to the sender: log it, and ask for a retry (queued events are deduplicated).
    logger.exception("Webhook failed unexpectedly")
    return Response(
        status_code=503,
        content_type=content_types.APPLICATION_JSON,
        body={"message": "Temporarily unable to accept events; retry the same request"},
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
