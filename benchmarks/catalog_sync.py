"""Catalog sync benchmarks (not a timed test): `make bench` writes docs/benchmarks.md.

1. Worker throughput: 1,000 item upserts in batches of 10 through the real worker handler, against the
   local Tweakwise sandbox answering after 50 ms. The
   sequential baseline (WORKER_CONCURRENCY=1) and the concurrent worker run side by side in one process.
   AWS is a moto server in a separate process, reached over HTTP as real AWS would be.
2. Webhook handler cost, warm, signature check included: per event for a 1-event request and for a
   100-event request, with SQS replaced by a no-op client so only this bundle's code is measured.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from shared import BENCH_ENV, DynamoDBStandIn, write_sections  # beside this script

ROOT = Path(__file__).resolve().parent.parent

ITEMS = 1000
BATCH = 10
LATENCY = 0.05
DYNAMODB_LATENCY = 0.005


def _env() -> None:
    os.environ.update(
        {
            **BENCH_ENV,
            "WEBHOOK_SECRET_ID": "bench/webhook",
            "SYNC_STATE_TABLE": "bench-sync-state",
            "LEDGER_TABLE": "bench-ledger",
        }
    )


def _aws(sandbox) -> None:
    import boto3

    from tweakwise_local.provision import create_table

    sm = boto3.client("secretsmanager")
    sm.create_secret(
        Name="bench/tweakwise",
        SecretString=json.dumps({"instance_key": sandbox.instance_key, "access_token": sandbox.access_token}),
    )
    sm.create_secret(Name="bench/webhook", SecretString=json.dumps({"signing_secret": "b" * 32}))
    create_table(boto3.client("dynamodb"), "bench-sync-state", "SYNC_STATE_TABLE")
    create_table(boto3.client("dynamodb"), "bench-ledger", "LEDGER_TABLE")
    sqs = boto3.client("sqs")
    os.environ["DEAD_LETTER_QUEUE_URL"] = sqs.create_queue(
        QueueName="bench-dlq.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]


def _batches(run: str) -> list[dict]:
    from tweakwise_local.events import queue_messages, sqs_event

    events = [
        {
            "id": f"{run}-{i}",
            "type": "item.upsert",
            "occurredAt": "2026-11-28T07:00:00Z",
            "item": {"id": f"SKU-{i}", "name": f"Item {i}", "price": 9.95, "stock": i},
        }
        for i in range(ITEMS)
    ]
    messages = queue_messages(events, prefix=f"{run}-")
    return [sqs_event(messages[i : i + BATCH]) for i in range(0, ITEMS, BATCH)]


@contextlib.contextmanager
def moto_server():
    """moto in its own process, reached over HTTP like real AWS: in process, moto's and its request
    interceptor's CPU would compete with the worker's threads for this process's GIL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            break
        time.sleep(0.1)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        yield endpoint
    finally:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        server.terminate()
        server.wait(timeout=10)


def worker_throughput(dynamodb: str) -> dict[str, float]:
    from tweakwise_local.events import LambdaContext, load_handler
    from tweakwise_local.sandbox import Sandbox

    results = {}
    with moto_server():
        sandbox = Sandbox()
        os.environ["TWEAKWISE_API_URL"] = sandbox.start()
        _aws(sandbox)
        for i in range(ITEMS):  # existing items: each upsert is one PATCH
            sandbox.items[f"SKU-{i}"] = {"ArticleNumber": f"SKU-{i}"}
        sandbox.latency = LATENCY
        for name, workers in (("sequential", "1"), ("concurrent", "10")):
            os.environ["WORKER_CONCURRENCY"] = workers
            handler = load_handler("catalog_worker")
            if dynamodb == "stand-in":  # the guard's claim and the ledger's record, one call each
                handler.state.dynamodb = handler.ledger.dynamodb = DynamoDBStandIn(DYNAMODB_LATENCY)
            batches = _batches(name)
            started = time.perf_counter()
            for event in batches:
                response = handler.lambda_handler(event, LambdaContext(timeout=60))
                assert response == {"batchItemFailures": []}, response
            results[name] = ITEMS / (time.perf_counter() - started)
        sandbox.stop()
    return results


def webhook_cost() -> dict[str, float]:
    from moto import mock_aws

    from tweakwise_local.events import LambdaContext, api_event, load_handler, signed_headers

    class NoOpSqs:
        def send_message_batch(self, **_kwargs):
            return {"Successful": []}

    results = {}
    with mock_aws():
        import boto3

        boto3.client("secretsmanager").create_secret(
            Name="bench/webhook", SecretString=json.dumps({"signing_secret": "b" * 32})
        )
        os.environ["CATALOG_QUEUE_URL"] = "https://sqs.eu-west-1.amazonaws.com/123456789012/bench.fifo"
        handler = load_handler("catalog_webhook")
        handler.sqs = NoOpSqs()
        for size in (1, 100):
            events = [
                {
                    "id": f"e{i}",
                    "type": "item.upsert",
                    "occurredAt": "2026-11-28T07:00:00Z",
                    "item": {
                        "id": f"SKU-{i}",
                        "name": "Trail runner",
                        "price": 89.95,
                        "stock": 3,
                        "categories": [100, "shoes"],
                        "attributes": {"color": "blue", "sizes": ["41", "42"]},
                    },
                }
                for i in range(size)
            ]
            raw = json.dumps({"events": events}).encode()
            request = api_event(raw, {**signed_headers(raw, "b" * 32)})
            handler.lambda_handler(request, LambdaContext())  # warm: secret cached, code loaded
            rounds = 2000 if size == 1 else 100
            samples = []
            for _ in range(5):
                started = time.perf_counter()
                for _ in range(rounds):
                    answer = handler.lambda_handler(request, LambdaContext())
                samples.append((time.perf_counter() - started) / rounds)
                assert answer["statusCode"] == 202, answer
            request_us = statistics.median(samples) * 1e6
            results[f"{size}-event request, per request (us)"] = request_us
            results[f"{size}-event request, per event (us)"] = request_us / size
    return results


def main() -> int:
    import io

    _env()
    with contextlib.redirect_stdout(io.StringIO()):  # the handlers' EMF metric lines
        runs = {name: worker_throughput(name) for name in ("stand-in", "moto")}
        costs = webhook_cost()
    ratio = runs["stand-in"]["concurrent"] / runs["stand-in"]["sequential"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured with `make bench` on {time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores ({platform.machine()}). Timings on this machine are noisy; the ratios, "
        "measured side by side in one run, are the figures to compare.",
        "",
        f"## Worker throughput ({ITEMS} upserts, batch size {BATCH}, Tweakwise answering after "
        f"{LATENCY * 1000:.0f} ms)",
        "",
        "Each record goes through the real worker handler: the stale-guard claim (one conditional "
        "UpdateItem), then `PATCH /item` over HTTP/1.1 keep-alive to the local Tweakwise sandbox, then the "
        "ledger's record of the body sent (one more conditional UpdateItem); and per batch one more "
        "UpdateItem, the publish-after-sync marker. "
        "Secrets Manager and SQS are a moto server in its own process, reached over HTTP.",
        "",
        "| DynamoDB | sequential (WORKER_CONCURRENCY=1) | concurrent (WORKER_CONCURRENCY=10) | ratio |",
        "|---|---|---|---|",
    ]
    for name, label in (
        ("stand-in", f"answers after {DYNAMODB_LATENCY * 1000:.0f} ms, as in-region DynamoDB does"),
        ("moto", "moto server (~10 ms of CPU per call, one call at a time)"),
    ):
        run = runs[name]
        lines.append(
            f"| {label} | {run['sequential']:.1f} items/s | {run['concurrent']:.1f} items/s | "
            f"**{run['concurrent'] / run['sequential']:.1f}x** |"
        )
    lines += [
        "",
        f"Target: at least 5x the sequential baseline. With DynamoDB answering like DynamoDB it is "
        f"{ratio:.1f}x. With moto, the claims queue behind moto's own CPU time, which bounds a batch at "
        "about "
        "10 x 10 ms + 50 ms; in AWS the ten claims run in parallel like the Tweakwise calls.",
        "",
        "## Webhook handler cost (warm, signature check and schema validation included, SQS excluded)",
        "",
        "| measure | microseconds |",
        "|---|---|",
        *[f"| {name} | {value:,.0f} |" for name, value in costs.items()],
        "",
    ]
    write_sections(["Worker throughput", "Webhook handler cost"], "\n".join(lines))
    print("\n".join(lines))
    return 0 if ratio >= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
