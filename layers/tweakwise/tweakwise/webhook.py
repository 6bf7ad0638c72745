"""The catalog webhook: HMAC-SHA256 signatures, the request body, and the SQS FIFO messages it becomes.

`handle_webhook` is the whole request flow as one plain function over a `WebhookRequest`;
`http_response` turns API Gateway's event (HTTP API, payload 2.0) into that request and its answer into
the response. Every answer is a 2xx or 4xx, except 503 when SQS itself fails or something unexpected
happens (the sender retries, and the deduplication ids make that retry safe).

The models are imported here, at init: the first request needs them anyway, and building them at init
keeps that cost out of the first sender's wait.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from . import secrecy
from .credentials import JsonSecret
from .errors import (
    BodyEncodingError,
    CredentialsError,
    MalformedSignatureError,
    MissingSignatureError,
    QueueError,
    SignatureError,
    SignatureMismatchError,
    TimestampError,
)
from .events import WebhookBody, error_list
from .settings import WebhookSettings

if TYPE_CHECKING:  # boto3-stubs, a dev dependency: the layer ships no stubs
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef as Entry

logger = logging.getLogger("tweakwise")

SIGNATURE_HEADER = "x-signature"
TIMESTAMP_HEADER = "x-signature-timestamp"
TOLERANCE_SECONDS = 300
MAX_BODY_BYTES = 1024 * 1024
SQS_BATCH = 10
# SQS's limit for one message and for one SendMessageBatch call, whichever region and quota.
MAX_MESSAGE_BYTES = 256 * 1024
# A 400 lists at most this many errors (and counts them all): the answer stays far below Lambda's 6 MB.
MAX_ERRORS = 100
# A signature that matches no cached key may mean the secret was rotated: re-read it, at most this often.
# Short, so a stream of bad signatures (each may trigger the re-read) delays a new key by 5 s at most;
# at worst one GetSecretValue call per 5 s per container.
REFRESH_INTERVAL = 5.0


class SigningSecrets(JsonSecret[tuple[bytes, ...]]):
    """The webhook signing secret: {"signing_secret": "...", "previous_signing_secret": "..."}."""

    NAMED_BY = WebhookSettings.variable("signing_secret_id")
    DEFAULT_MAX_AGE: int = WebhookSettings.default("signing_secret_max_age")
    SHAPE = "a JSON object with 'signing_secret' (and optionally 'previous_signing_secret')"

    def parse(self, value: Any) -> tuple[bytes, ...]:
        if not isinstance(value, dict):
            raise CredentialsError(
                f"Secret {self.secret_id!r} must be {self.SHAPE}", secret_id=self.secret_id
            )
        keys = []
        for name in ("signing_secret", "previous_signing_secret"):
            key = value.get(name)
            if key is None or (key == "" and name == "previous_signing_secret"):
                if name == "signing_secret":
                    raise CredentialsError(
                        f"Secret {self.secret_id!r} has no 'signing_secret'", secret_id=self.secret_id
                    )
                continue
            if not isinstance(key, str) or len(key) < 16:
                raise CredentialsError(
                    f"Secret {self.secret_id!r} key {name!r} must be a string of at least 16 characters",
                    secret_id=self.secret_id,
                )
            keys.append(key.encode())
        secrecy.remember(*(k.decode() for k in keys))
        return tuple(keys)


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
    status: HTTPStatus
    body: dict[str, Any]


def sign(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """The X-Signature value for a body: what a sender computes."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(keys: Sequence[bytes], headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Return when the request is authentic; otherwise raise the SignatureError subclass saying why."""
    timestamp = (headers.get(TIMESTAMP_HEADER) or "").strip()
    signature = (headers.get(SIGNATURE_HEADER) or "").strip()
    if not timestamp or not signature:
        raise MissingSignatureError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise TimestampError(f"{TIMESTAMP_HEADER} must be whole unix seconds")
    if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        raise TimestampError(f"{TIMESTAMP_HEADER} is more than {TOLERANCE_SECONDS} s from now")
    if not signature.startswith("sha256=") or not signature.isascii():
        raise MalformedSignatureError(f"{SIGNATURE_HEADER} must look like sha256=<hex>")
    # The digest's case carries no secret: .NET's Convert.ToHexString sends upper case.
    given = ("sha256=" + signature[7:].lower()).encode()
    # Compare against every valid key, always: the time taken does not tell which key matched.
    matches = [hmac.compare_digest(sign(key, timestamp, body).encode(), given) for key in keys]
    if not any(matches):
        raise SignatureMismatchError("signature does not match")


class Verifier:
    """Checks signatures against the current and previous signing secret, re-reading the secret (rate
    limited) when a signature matches neither, so a rotated secret is picked up without a redeploy."""

    def __init__(self, secrets: SigningSecrets):
        self.secrets = secrets
        self._refreshed_at = 0.0
        self._lock = threading.Lock()

    def verify(self, headers: Mapping[str, str], body: bytes, now: float | None = None) -> None:
        """Raise a SignatureError unless the request is authentic (CredentialsError: no usable secret)."""
        now = time.time() if now is None else now
        try:
            verify_signature(self.secrets.get(), headers, body, now)
        except SignatureMismatchError:
            with self._lock:
                due = time.monotonic() - self._refreshed_at > REFRESH_INTERVAL
                if due:
                    self._refreshed_at = time.monotonic()
            if not due:
                raise
            verify_signature(self.secrets.get(force=True), headers, body, now)


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()  # validated text: no lone surrogates


def message_group_id(event: Any) -> str:
    """Same entity, same group: its changes apply in order. A hash keeps SQS's 128 ASCII chars rule."""
    key = event.entity()
    return f"{key.kind}-{_hash(key.ref)}"


def deduplication_id(event: Any) -> str:
    return _hash(event.id)


def queue_entries(events: Sequence[Any]) -> list[Entry]:
    return [
        {
            "Id": str(index),
            "MessageBody": event.model_dump_json(exclude_none=True),
            "MessageGroupId": message_group_id(event),
            "MessageDeduplicationId": deduplication_id(event),
            "MessageAttributes": {"type": {"DataType": "String", "StringValue": event.type}},
        }
        for index, event in enumerate(events)
    ]


def _size(entry: Entry) -> int:
    attributes = entry["MessageAttributes"]
    return len(entry["MessageBody"].encode()) + sum(
        len(name) + len(value["DataType"]) + len(value["StringValue"].encode())
        for name, value in attributes.items()
    )


def oversized(entries: Sequence[Entry]) -> list[dict[str, str]]:
    """The events SQS could never take, as [{path, error}]."""
    return [
        {"path": f"events[{index}]", "error": f"the event is over {MAX_MESSAGE_BYTES} bytes once queued"}
        for index, entry in enumerate(entries)
        if _size(entry) > MAX_MESSAGE_BYTES
    ]


def batches(entries: Sequence[Entry]) -> list[list[Entry]]:
    """Entries in order, in SendMessageBatch calls of at most ten entries and MAX_MESSAGE_BYTES."""
    chunks: list[list[Entry]] = []
    sizes: list[int] = []
    for entry in entries:
        size = _size(entry)
        if chunks and len(chunks[-1]) < SQS_BATCH and sizes[-1] + size <= MAX_MESSAGE_BYTES:
            chunks[-1].append(entry)
            sizes[-1] += size
        else:
            chunks.append([entry])
            sizes.append(size)
    return chunks


def enqueue(sqs: SQSClient, queue_url: str, entries: Sequence[Entry]) -> None:
    """Send every entry, in order. Raises QueueError if any is not accepted."""
    from botocore.exceptions import BotoCoreError, ClientError

    for chunk in batches(entries):
        try:
            answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=chunk)
        except (BotoCoreError, ClientError) as exc:
            raise QueueError(f"SQS send_message_batch failed: {type(exc).__name__}") from exc
        if answer.get("Failed"):
            codes = sorted({f["Code"] for f in answer["Failed"]})
            raise QueueError(f"SQS refused {len(answer['Failed'])} messages ({', '.join(codes)})")


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
        parsed = WebhookBody.model_validate(payload)
    except ValidationError as exc:
        return _error(HTTPStatus.BAD_REQUEST, invalid, error_list(exc))
    entries = queue_entries(parsed.events)
    too_large = oversized(entries)
    if too_large:
        return _error(HTTPStatus.BAD_REQUEST, invalid, too_large)
    try:
        enqueue(sqs, queue_url, entries)
    except QueueError as exc:
        logger.error("Webhook could not queue %d events: %s", len(parsed.events), exc)
        return _error(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "The events could not be queued; retry the same request (it is deduplicated)",
        )
    logger.info("Webhook accepted %d events", len(parsed.events))
    return Answer(HTTPStatus.ACCEPTED, {"accepted": len(parsed.events)})


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
