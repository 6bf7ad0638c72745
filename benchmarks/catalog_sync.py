"""Catalog sync benchmarks (not a timed test): `make bench` writes docs/benchmarks.md.

1. Worker throughput, measured as Lambda runs the worker (scripts/lambda_like.py): python3.13, the layer
   as its build makes it, the worker's template environment, in a process of its own pinned to one CPU,
   unlimited and at the CPU share Lambda gives 256 MB and the default memory (a cgroup CPU quota, or a
   SIGSTOP/SIGCONT duty cycle where cgroups cannot be made). Batches of 10 item upserts through the real
   handler; Tweakwise is the sandbox (another process: this one) answering after 50 ms over HTTP/1.1
   keep-alive; DynamoDB a stand-in in the worker's process answering after 5 ms as in-region DynamoDB
   does; Secrets Manager a moto server. The first (cold) invocation is left out of the rate.
2. 10,000 upserts and then 10,000 stock patches of the same items through webhook, queue and worker
   (benchmarks/pipeline.py).
3. Webhook handler cost, warm, signature check included: per event for a 1-event request and for a
   100-event request, with SQS replaced by a no-op client so only this bundle's code is measured; then a
   100-event request against an SQS stand-in at 5 and 15 ms, its calls one after another and at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import pipeline
from benchmarks.shared import BENCH_ENV, write_sections
from scripts.lambda_like import MB_PER_VCPU, Tree, cpu_share, local_aws_and_tweakwise

ROOT = Path(__file__).resolve().parent.parent

ITEMS = 1000
SEQUENTIAL_ITEMS = 300  # the baseline's rate needs fewer items (each takes ~65 ms)
BATCH = 10
LATENCY = 0.05
DYNAMODB_LATENCY = 0.005
WORKER = "CatalogWorkerFunction"
TARGET = 8.0  # concurrent at least this many times the sequential baseline, one CPU
WEBHOOK_TARGET = 5.0  # a 100-event request's latency, at once against one after another
SQS_LATENCIES = (0.005, 0.015)  # in-region SQS, and a slow moment of it


def _batches(run: str, items: int, patch: bool = False) -> list[dict]:
    """Upserts of new items (one POST each), or stock patches of existing ones (one PATCH each)."""
    from tweakwise_local.invocations import queue_messages, sqs_event

    now = datetime.now(UTC).isoformat()
    events = [
        {
            "id": f"{run}-{i}",
            "type": "item.patch" if patch else "item.upsert",
            "occurredAt": now,
            "item": {"id": f"SKU-{i}", "stock": i + 1}
            if patch
            else {"id": f"SKU-{run}-{i}", "name": f"Item {i}", "price": 9.95, "stock": i},
        }
        for i in range(items)
    ]
    messages = queue_messages(events, prefix=f"{run}-")
    return [sqs_event(messages[i : i + BATCH]) for i in range(0, items, BATCH)]


def worker_throughput(tree: Tree) -> tuple[list[dict], str, int, list[dict]]:
    """Each run: (label, WORKER_CONCURRENCY, memory MB or None for one whole CPU, extra env, items). Then
    the 10,000 changes through webhook, queue and worker (benchmarks/pipeline.py)."""
    memory = tree.memory(WORKER)
    runs = [
        ("sequential", 1, None, {}, SEQUENTIAL_ITEMS),
        ("concurrent", 10, None, {}, ITEMS),
        ("concurrent", 10, 1024, {}, ITEMS),
        ("concurrent", 10, 512, {}, ITEMS),
        ("concurrent", 10, 256, {}, ITEMS),
        ("sequential", 1, 256, {}, SEQUENTIAL_ITEMS),
        ("concurrent, TraceCalls=true", 10, memory, {"TRACE_CALLS": "true"}, ITEMS),
        ("concurrent, stock patches", 10, None, {}, ITEMS),
    ]
    results, how = [], ""
    with local_aws_and_tweakwise(tree.template, latency=LATENCY) as (resolver, tweakwise, local):
        for i in range(ITEMS):  # what the stock patches change
            tweakwise.sandbox.items[f"SKU-{i}"] = {
                "ArticleNumber": f"SKU-{i}",
                "Name": f"Item {i}",
                "Stock": 0,
            }
        for number, (label, concurrency, mb, extra, items) in enumerate(runs):
            env = tree.environment(
                WORKER,
                resolver,
                {**local, "WORKER_CONCURRENCY": str(concurrency), "POWERTOOLS_LOG_LEVEL": "WARNING", **extra},
            )
            share = None if mb is None else cpu_share(mb)
            batches = _batches(f"r{number}", items, patch="patches" in label)
            before = len(tweakwise.sandbox.requests)
            run = tree.invoke(WORKER, batches, env, cpu_share=share, dynamodb_latency=DYNAMODB_LATENCY)
            sent = [r for r in tweakwise.sandbox.requests[before:] if r[0] != "GET"]
            warm = run["invocations_ms"][1:]
            failures = [r for r in run["results"] if r != {"batchItemFailures": []}]
            assert not failures, failures[:2]
            results.append(
                {
                    "label": label,
                    "concurrency": concurrency,
                    "memory": mb,
                    "share": share,
                    "items_per_s": (len(warm) * BATCH) / (sum(warm) / 1000),
                    "requests_per_item": len(sent) / items,
                    "bytes_per_request": sum(
                        len(json.dumps(b or {}, separators=(",", ":"))) for *_r, b in sent
                    )
                    / max(1, len(sent)),
                }
            )
            if share is not None:
                how = run["cpu_limit"]
        through = pipeline.run(tree, resolver, tweakwise, local, LATENCY)
    return results, how, memory, through


def webhook_cost() -> tuple[dict[str, float], list[dict]]:
    """The handler's own cost (SQS a no-op), then a 100-event request against an SQS stand-in answering
    after 5 and 15 ms: its SendMessageBatch calls one after another (SEND_CONCURRENCY 1, the path before
    lanes) and at once, alternated in one run."""
    from moto import mock_aws

    from scripts.standins import SQSStandIn
    from tweakwise import queueing
    from tweakwise_local.invocations import LambdaContext, load_handler

    class NoOpSqs:
        def send_message_batch(self, **_kwargs):
            return {"Successful": []}

    results, sends = {}, []
    with mock_aws():
        import boto3

        boto3.client("secretsmanager").create_secret(
            Name="bench/webhook", SecretString=json.dumps({"signing_secret": "b" * 32})
        )
        os.environ["CATALOG_QUEUE_URL"] = "https://sqs.eu-west-1.amazonaws.com/123456789012/bench.fifo"
        handler = load_handler("catalog_webhook")
        requests = {size: _webhook_request(size) for size in (1, 100)}

        def call(request: dict, rounds: int) -> float:
            """The median of 5 samples of `rounds` calls, in microseconds per call."""
            handler.lambda_handler(request, LambdaContext())  # warm: secret cached, code loaded
            samples = []
            for _ in range(5):
                started = time.perf_counter()
                for _ in range(rounds):
                    answer = handler.lambda_handler(request, LambdaContext())
                samples.append((time.perf_counter() - started) / rounds)
                assert answer["statusCode"] == 202, answer
            return statistics.median(samples) * 1e6

        handler.sqs = NoOpSqs()
        for size, request in requests.items():
            request_us = call(request, 2000 if size == 1 else 100)
            results[f"{size}-event request, per request (us)"] = request_us
            results[f"{size}-event request, per event (us)"] = request_us / size
        for latency in SQS_LATENCIES:
            handler.sqs = stand_in = SQSStandIn(latency)
            timed: dict[int, list[float]] = {1: [], queueing.SEND_CONCURRENCY: []}
            for _ in range(3):  # alternated, so both see the same machine
                for concurrency in list(timed):
                    queueing.SEND_CONCURRENCY = concurrency
                    timed[concurrency].append(call(requests[100], 10) / 1000)
            queueing.SEND_CONCURRENCY = max(timed)
            before = stand_in.calls
            handler.lambda_handler(requests[100], LambdaContext())
            calls = stand_in.calls - before
            sequential, concurrent = (statistics.median(timed[c]) for c in sorted(timed))
            sends.append(
                {"latency_ms": latency * 1000, "sequential_ms": sequential, "concurrent_ms": concurrent,
                 "calls": calls}
            )  # fmt: skip
    return results, sends


def _webhook_request(size: int) -> dict:
    from tweakwise_local.invocations import api_event, signed_headers

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
    return api_event(raw, {**signed_headers(raw, "b" * 32)})


def main(argv: list[str] | None = None) -> int:
    import io

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose worker is measured")
    args = parser.parse_args(argv)
    os.environ.update({**BENCH_ENV, "WEBHOOK_SECRET_ID": "bench/webhook"})
    runs, how, memory, through = worker_throughput(Tree(args.root).make())
    with contextlib.redirect_stdout(io.StringIO()):  # the handlers' EMF metric lines
        costs, sends = webhook_cost()
    base = runs[0]["items_per_s"]
    ratio = runs[1]["items_per_s"] / base
    lines = [
        "# Benchmarks",
        "",
        f"Measured with `make bench` on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores "
        f"({platform.machine()}). Timings on this machine are noisy; the ratios, measured side by side in "
        "one run, are the figures to compare.",
        "",
        f"## Worker throughput ({ITEMS} upserts, batch size {BATCH}, Tweakwise answering after "
        f"{LATENCY * 1000:.0f} ms)",
        "",
        "The worker runs as Lambda runs it (`scripts/lambda_like.py`): python3.13, the layer as its build "
        "makes it, the template's environment, in a process of its own pinned to one CPU; each record goes "
        "through the real handler: the stale-guard claim and its lease (a conditional UpdateItem), "
        "`PATCH /item` over HTTP/1.1 keep-alive to the Tweakwise sandbox in another process, the ledger's "
        "record and the lease's release (two more UpdateItems); DynamoDB answers after "
        f"{DYNAMODB_LATENCY * 1000:.0f} ms as in-region DynamoDB does (a stand-in in the worker's process). "
        "The first, cold invocation is left out. A memory size stands "
        f"for its CPU share, memory / {MB_PER_VCPU:,} MB of one CPU, as Lambda allocates it; limited by: "
        f"{how}.",
        "",
        "| run | WORKER_CONCURRENCY | CPU | items/s | x sequential | requests/item | bytes/request |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        cpu = "one CPU" if run["memory"] is None else f"{run['memory']} MB ({run['share']:.2f} CPU)"
        if run["memory"] == memory:
            cpu += ", the template's"
        lines.append(
            f"| {run['label']} | {run['concurrency']} | {cpu} | {run['items_per_s']:.1f} | "
            f"**{run['items_per_s'] / base:.1f}x** | {run['requests_per_item']:.2f} | "
            f"{run['bytes_per_request']:.0f} |"
        )
    lines += [
        "",
        f"Target: at least {TARGET:g}x the sequential baseline on one CPU; it is {ratio:.1f}x. Upserts are "
        "of new items (one POST each); stock patches change existing items (one PATCH each, `Stock` alone): "
        f"{runs[-1]['items_per_s'] / runs[1]['items_per_s']:.2f}x the upserts' rate on one CPU.",
        "",
        "## Webhook handler cost (warm, signature check and schema validation included)",
        "",
        "| measure | microseconds |",
        "|---|---|",
        *[f"| {name} | {value:,.0f} |" for name, value in costs.items()],
        "",
        "A 100-event request (100 items) against an SQS stand-in answering each SendMessageBatch after a "
        "fixed latency, warm, medians of 3 alternated rounds: its calls one after another (the path before "
        "lanes) and at once (lanes that share no message group; a group's calls stay in order).",
        "",
        "| SQS latency | SendMessageBatch calls | one after another, ms | at once, ms | x lower latency |",
        "|---|---|---|---|---|",
        *[
            f"| {r['latency_ms']:.0f} ms | {r['calls']} | {r['sequential_ms']:.1f} | "
            f"{r['concurrent_ms']:.1f} | **{r['sequential_ms'] / r['concurrent_ms']:.1f}x** |"
            for r in sends
        ],
        "",
        *pipeline.section(through, LATENCY),
    ]
    write_sections(["Worker throughput", "Webhook handler cost", "Stock patches through"], "\n".join(lines))
    print("\n".join(lines))
    one_request = all(run["requests_per_change"] == 1.0 for run in through)
    lanes = all(r["sequential_ms"] / r["concurrent_ms"] >= WEBHOOK_TARGET for r in sends)
    return 0 if ratio >= TARGET and one_request and lanes else 1


if __name__ == "__main__":
    sys.exit(main())
