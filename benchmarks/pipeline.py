"""10,000 changes through the whole path, as Lambda runs it: signed webhook requests of 100 events to the
webhook function, whose SendMessageBatch calls an SQS stand-in answers after 5 ms (scripts/standins.py:
moto's FIFO send slows as its queue grows); the messages, in the order sent, handed in batches of 10 to the
worker as the event source mapping does; the worker writes to the Tweakwise sandbox answering after 50 ms.

Two runs over the same items, side by side: full upserts of new items (one POST each, every field), then
stock patches of them (one PATCH each, `Stock` alone). Part of `make bench` (benchmarks/catalog_sync.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from scripts.lambda_like import Tree

ITEMS = 10_000
EVENTS_PER_REQUEST = 100
BATCH = 10  # the template's BatchSize
WEBHOOK = "CatalogWebhookFunction"
WORKER = "CatalogWorkerFunction"
SQS_LATENCY = DYNAMODB_LATENCY = 0.005  # in-region


def _events(kind: str, items: int) -> list[dict]:
    now = datetime.now(UTC).isoformat()
    events = []
    for i in range(items):
        item: dict[str, Any] = {"id": f"SKU-P-{i}", "stock": i % 50}
        if kind == "item.upsert":
            item.update(
                name=f"Trail runner {i}",
                price=89.95,
                brand="Northwind",
                attributes={"color": "blue", "sizes": ["41", "42"]},
            )
        events.append({"id": f"{kind}-{i}", "type": kind, "occurredAt": now, "item": item})
    return events


def _webhook_requests(events: list[dict], secret: str) -> list[dict]:
    from tweakwise_local.invocations import api_event, signed_headers

    requests = []
    for start in range(0, len(events), EVENTS_PER_REQUEST):
        raw = json.dumps({"events": events[start : start + EVENTS_PER_REQUEST]}).encode()
        requests.append(api_event(raw, signed_headers(raw, secret)))
    return requests


def run(tree: Tree, resolver: Any, tweakwise: Any, local: dict[str, str], latency: float) -> list[dict]:
    """Upserts then stock patches of the same ITEMS items; per run: webhook and worker figures."""
    from tweakwise.settings import WebhookSettings
    from tweakwise_local.invocations import sqs_event
    from tweakwise_local.template import variable_target

    secret_logical = variable_target(tree.template, WebhookSettings.variable("signing_secret_id"), resolver)
    secret = resolver.resources[secret_logical]["Value"]["signing_secret"]
    queue_arn = resolver.resources[
        variable_target(tree.template, WebhookSettings.variable("queue_url"), resolver)
    ]["Arn"]
    quiet = {"POWERTOOLS_LOG_LEVEL": "WARNING"}
    results = []
    for kind in ("item.upsert", "item.patch"):
        requests = _webhook_requests(_events(kind, ITEMS), secret)
        webhook_env = tree.environment(WEBHOOK, resolver, {**local, **quiet})
        hook = tree.invoke(WEBHOOK, requests, webhook_env, sqs_latency=SQS_LATENCY)
        refused = [r for r in hook["results"] if r["statusCode"] != 202]
        assert not refused, refused[:2]
        messages = hook["queued"]
        assert len(messages) == ITEMS, len(messages)
        batches = [sqs_event(messages[i : i + BATCH], queue_arn) for i in range(0, ITEMS, BATCH)]
        before = len(tweakwise.sandbox.requests)
        env = tree.environment(WORKER, resolver, {**local, **quiet, "WORKER_CONCURRENCY": "10"})
        work = tree.invoke(WORKER, batches, env, dynamodb_latency=DYNAMODB_LATENCY)
        failures = [r for r in work["results"] if r != {"batchItemFailures": []}]
        assert not failures, failures[:2]
        sent = [r for r in tweakwise.sandbox.requests[before:] if r[0] != "GET"]
        warm = work["invocations_ms"][1:]
        results.append(
            {
                "kind": kind,
                "webhook_ms_per_request": sum(hook["invocations_ms"][1:]) / max(1, len(requests) - 1),
                "changes_per_s": len(warm) * BATCH / (sum(warm) / 1000),
                "requests_per_change": len(sent) / ITEMS,
                "verbs": sorted({r[0] for r in sent}),
                "bytes_per_request": sum(len(json.dumps(b or {}, separators=(",", ":"))) for *_r, b in sent)
                / max(1, len(sent)),
            }
        )
    return results


def section(results: list[dict], latency: float) -> list[str]:
    upserts, patches = results
    lines = [
        f"## Stock patches through webhook, queue and worker ({ITEMS:,} changes, Tweakwise answering after "
        f"{latency * 1000:.0f} ms)",
        "",
        f"Signed webhook requests of {EVENTS_PER_REQUEST} events to the webhook function, its "
        f"SendMessageBatch calls answered by an SQS stand-in after {SQS_LATENCY * 1000:.0f} ms "
        "(moto's FIFO send slows as its queue grows); the messages, in the order sent, handed to the "
        f"worker in batches of {BATCH} (WORKER_CONCURRENCY 10, one CPU, DynamoDB answering after "
        f"{DYNAMODB_LATENCY * 1000:.0f} ms), both functions as Lambda runs them. The same items twice, in "
        "one run: full upserts of new items, then stock patches of them.",
        "",
        "| run | webhook ms per request | verbs | requests/change | bytes/request | worker changes/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['kind']} | {r['webhook_ms_per_request']:.0f} | {', '.join(r['verbs'])} | "
            f"{r['requests_per_change']:.2f} | {r['bytes_per_request']:.0f} | {r['changes_per_s']:.1f} |"
        )
    lines += [
        "",
        f"A stock patch is {patches['requests_per_change']:.2f} request and "
        f"{patches['bytes_per_request']:.0f} bytes against an upsert's {upserts['bytes_per_request']:.0f} "
        f"({patches['bytes_per_request'] / upserts['bytes_per_request']:.2f}x); the worker applies patches "
        f"at {patches['changes_per_s'] / upserts['changes_per_s']:.2f}x the upserts' rate (both wait on "
        "Tweakwise's 50 ms, which bounds the rate, not the body's size).",
        "",
    ]
    return lines
