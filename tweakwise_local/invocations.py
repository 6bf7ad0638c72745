"""What Lambda hands a handler and what a handler prints, built the way AWS does: the one source for the
local runner, the tests and the benchmarks.

- `LambdaContext`: the context object, with a real deadline.
- `api_event`: an API Gateway HTTP API (payload 2.0) event; `signed_headers`: the webhook's signature.
- `sqs_event`: the SQS event source's batch; `queue_messages`: catalog events as the webhook queues them.
- `load_handler`: a function's app.py imported fresh, as a cold start does.
- `emf_blobs` / `emf_metrics`: the CloudWatch embedded-metric lines a handler printed.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from tweakwise_local.template import ROOT

REGION = "eu-west-1"
ACCOUNT = "123456789012"


class LambdaContext:
    """The parts of the Lambda context the handlers use, with a real deadline."""

    function_version = "$LATEST"
    log_stream_name = "local"

    def __init__(self, name: str = "test-function", memory: int = 256, timeout: float = 30.0):
        self.function_name = name
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        self.memory_limit_in_mb = memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_event(name: str) -> dict[str, Any]:
    """A sample event of events/."""
    return json.loads((ROOT / "events" / name).read_text(encoding="utf-8"))


def load_handler(function_dir: str) -> ModuleType:
    """Import functions/<function_dir>/app.py as a fresh module, the way a cold start would."""
    path = ROOT / "functions" / function_dir / "app.py"
    name = f"handler_{function_dir}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def http_api_event(
    method: str,
    raw_path: str,
    headers: dict[str, str],
    body: bytes,
    *,
    route: str,
    host: str = "local",
    base64_encoded: bool = False,
) -> dict:
    """API Gateway's HTTP API (payload 2.0) event for one request: the body as text, or base64 when it is
    not UTF-8 (as API Gateway sends it) or `base64_encoded` asks for it."""
    parts = urlsplit(raw_path)
    try:
        text, encoded = body.decode("utf-8"), base64_encoded
    except UnicodeDecodeError:
        encoded = True
    if encoded:
        text = base64.b64encode(body).decode()
    now = datetime.now(UTC)
    return {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": host,
            "http": {
                "method": method,
                "path": parts.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": f"local-{time.time_ns()}",
            "routeKey": f"{method} {route}",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def api_event(body: bytes | str, headers: dict[str, str] | None = None, base64_encoded: bool = False) -> dict:
    """The webhook's request: POST /webhooks/catalog with a JSON body and these headers."""
    raw = body.encode() if isinstance(body, str) else body
    all_headers = {"content-type": "application/json", **(headers or {})}
    route = "/webhooks/catalog"
    return http_api_event("POST", route, all_headers, raw, route=route, base64_encoded=base64_encoded)


def signed_headers(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers a sender signs `body` with."""
    from tweakwise.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

    stamp = int(time.time()) if timestamp is None else timestamp
    return {TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: sign(secret, stamp, body)}


def sqs_event(
    messages: Sequence[Mapping[str, Any]], queue_arn: str = f"arn:aws:sqs:{REGION}:{ACCOUNT}:catalog.fifo"
) -> dict:
    """Lambda's SQS event for received messages (the shape the event source mapping sends)."""
    records = []
    for message in messages:
        attributes = dict(message.get("Attributes", {}))
        attributes.setdefault("ApproximateReceiveCount", "1")
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message.get("ReceiptHandle", "rh"),
                "body": message["Body"],
                "attributes": attributes,
                "messageAttributes": {
                    k: {"stringValue": v.get("StringValue"), "dataType": v["DataType"]}
                    for k, v in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3],
            }
        )
    return {"Records": records}


def queue_messages(events: list[dict], prefix: str = "m-") -> list[dict]:
    """Received SQS messages for catalog events, with the group and deduplication ids the webhook gives."""
    from tweakwise.catalog import EVENT_ADAPTER
    from tweakwise.queueing import deduplication_id, message_group_id

    messages = []
    for index, raw in enumerate(events):
        event = EVENT_ADAPTER.validate_python(raw)
        messages.append(
            {
                "MessageId": f"{prefix}{index}",
                "Body": event.model_dump_json(exclude_unset=True),
                "Attributes": {
                    "MessageGroupId": message_group_id(event),
                    "MessageDeduplicationId": deduplication_id(event),
                },
            }
        )
    return messages


def emf_blobs(output: str) -> list[dict]:
    """The CloudWatch embedded-metric-format lines a handler printed, parsed."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"_aws"' in line]


def emf_metrics(output: str) -> dict[str, float]:
    """name -> value of the CloudWatch EMF lines a handler printed."""
    found: dict[str, float] = {}
    for blob in emf_blobs(output):
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = blob.get(metric["Name"])
                if value is not None:
                    found[metric["Name"]] = float(sum(value) if isinstance(value, list) else value)
    return found


def log_lines(output: str) -> Iterator[tuple[str, dict | None]]:
    """What a handler printed, less its EMF metrics: each line, with its JSON log entry when it is one."""
    for line in output.splitlines():
        entry = None
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
        if isinstance(entry, dict) and "_aws" in entry:
            continue
        if line.strip():
            yield line, entry if isinstance(entry, dict) else None
