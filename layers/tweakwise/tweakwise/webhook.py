"""The catalog webhook's HTTP flow: a request's body, its signature (`signatures`), its events queued on
SQS FIFO (`queueing`).

`handle_webhook` is the whole request flow as one plain function over a `WebhookRequest`;
`http_response` turns API Gateway's event (HTTP API, payload 2.0) into that request and its answer into
the response. Every answer is a 2xx or 4xx, except 503 when SQS itself fails or something unexpected
happens (the sender retries, and the deduplication ids make that retry safe).

The body is validated by the contract compiled for pydantic-core (`webhook_contract`, generated from the
models in `catalog`): the same rules, without importing pydantic at every cold start (decision 0014). Its
validator is built here, at init: the first request needs it anyway, and building it at init keeps that
cost out of the first sender's wait.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from pydantic_core import SchemaValidator, ValidationError

from .contract_rules import error_list
from .errors import (
    BodyEncodingError,
    CredentialsError,
    QueueError,
    SignatureError,
)
from .queueing import enqueue, oversized, queue_entries
from .signatures import Verifier
from .webhook_contract import SCHEMA

if TYPE_CHECKING:  # boto3-stubs, a dev dependency: the layer ships no stubs
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger("tweakwise")
BODY = SchemaValidator(SCHEMA)  # {"events": [...]} as typed dicts: what left out stays out


MAX_BODY_BYTES = 1024 * 1024


# A 400 lists at most this many errors (and counts them all): the answer stays far below Lambda's 6 MB.
MAX_ERRORS = 100


@dataclass(frozen=True)
class WebhookRequest:
    """One HTTP request as any transport hands it over: its headers, and its body text (base64 when the
    transport carried it as binary)."""

    headers: Mapping[str, str]
    body: str = ""
    base64_encoded: bool = False

    def raw_body(self) -> bytes:
        """The body exactly as the sender sent it: what the signature covers."""
        if self.base64_encoded:
            try:
                return base64.b64decode(self.body, validate=True)
            except ValueError:
                raise BodyEncodingError("The body is not valid base64 although it is marked so") from None
        return self.body.encode("utf-8", "surrogatepass")

    def header_map(self) -> dict[str, str]:
        """Header names in lower case (HTTP names are case-insensitive)."""
        return {str(k).lower(): str(v) for k, v in self.headers.items()}


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: its status and JSON body."""

    status: HTTPStatus
    body: dict[str, Any]


def _error(status: HTTPStatus, message: str, errors: list[dict[str, str]] | None = None) -> Answer:
    body: dict[str, Any] = {"message": message}
    if errors is not None:
        body["errors"] = errors[:MAX_ERRORS]
        body["errorCount"] = len(errors)
    return Answer(status, body)


def handle_webhook(request: WebhookRequest, verifier: Verifier, sqs: SQSClient, queue_url: str) -> Answer:  # noqa: PLR0911 - one return per answer
    """One webhook request, from the HTTP request to the answer."""
    invalid = "The body does not match the catalog webhook schema"
    try:
        body = request.raw_body()
    except BodyEncodingError as exc:
        return _error(HTTPStatus.BAD_REQUEST, str(exc))
    if len(body) > MAX_BODY_BYTES:
        return _error(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"The body is over {MAX_BODY_BYTES} bytes; send at most 100 events per request",
        )
    try:
        verifier.verify(request.header_map(), body)
    except CredentialsError as exc:
        logger.error("Webhook cannot check signatures: %s", exc)
        return _error(HTTPStatus.SERVICE_UNAVAILABLE, "The webhook is not configured yet; retry later")
    except SignatureError as exc:
        logger.warning("Webhook refused: %s", exc)
        return _error(HTTPStatus.UNAUTHORIZED, f"Unauthorized: {exc}")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return _error(
            HTTPStatus.BAD_REQUEST,
            "The body is not valid JSON",
            [{"path": "(body)", "error": "invalid JSON"}],
        )
    try:
        events = BODY.validate_python(payload)["events"]
    except ValidationError as exc:
        return _error(HTTPStatus.BAD_REQUEST, invalid, error_list(exc))
    entries = queue_entries(events)
    too_large = oversized(entries)
    if too_large:
        return _error(HTTPStatus.BAD_REQUEST, invalid, too_large)
    try:
        enqueue(sqs, queue_url, entries)
    except QueueError as exc:
        logger.error("Webhook could not queue %d events: %s", len(events), exc)
        return _error(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "The events could not be queued; retry the same request (it is deduplicated)",
        )
    logger.info("Webhook accepted %d events", len(events))
    return Answer(HTTPStatus.ACCEPTED, {"accepted": len(events)})


WEBHOOK_ROUTE = ("POST", "/webhooks/catalog")  # template.yaml: the function's one HttpApi route


MISWIRED = (
    "The catalog webhook expects an API Gateway HTTP API event (payload format 2.0, as template.yaml's "
    "CatalogApi sends); it got a REST API or payload format 1.0 event. Route POST /webhooks/catalog "
    "to it through the template's HTTP API, or set the integration's payload format version to 2.0"
)


def http_response(event: Mapping[str, Any], verifier: Verifier, sqs: SQSClient, queue_url: str) -> dict:
    """API Gateway's event to `handle_webhook` and its answer to the HTTP response. Anything unexpected
    is logged and answered 503 (retry the same request), never with a stack trace."""
    http = event.get("requestContext", {}).get("http", {})
    if not http and ("httpMethod" in event or event.get("version") == "1.0"):
        # A deployment fault, not the sender's: 500, so the sender keeps its events and retries them
        # once the function sits behind the template's HTTP API again.
        logger.error(MISWIRED)
        answer = Answer(HTTPStatus.INTERNAL_SERVER_ERROR, {"message": MISWIRED})
    elif (http.get("method"), event.get("rawPath")) != WEBHOOK_ROUTE:
        answer = Answer(
            HTTPStatus.NOT_FOUND, {"message": "Not found; POST catalog events to /webhooks/catalog"}
        )
    else:
        request = WebhookRequest(
            event.get("headers") or {}, event.get("body") or "", bool(event.get("isBase64Encoded"))
        )
        try:
            answer = handle_webhook(request, verifier, sqs, queue_url)
        except Exception:
            logger.exception("Webhook failed unexpectedly")
            answer = Answer(
                HTTPStatus.SERVICE_UNAVAILABLE,
                {"message": "Temporarily unable to accept events; retry the same request"},
            )
    return {
        "statusCode": int(answer.status),
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(answer.body),
    }
