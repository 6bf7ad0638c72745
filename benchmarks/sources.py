"""Native sources benchmark (not a timed test): `make bench-sources` writes its section of docs/benchmarks.md.

1. Shopify events through `make run`'s EventBridge (a `make run` of this checkout in a process of its own,
   driven over HTTP as a user drives it): 1,000 `products/update` (each a product of 2 variants, built from
   Shopify's documented example), then 10,000 `inventory_levels/update` of their inventory items over 5
   locations, PutEvents bodies of 10 entries. Per run: events per second from the first PutEvents to the
   last change applied in the Tweakwise sandbox, and Tweakwise requests (and writes) per event.
2. The source function's cold start as Lambda runs it (scripts/lambda_like.py) against the webhook's:
   whole `import app` processes, interleaved, x `import boto3`.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from benchmarks.shared import write_sections
from scripts.lambda_like import Tree
from tweakwise_local import eventbridge
from tweakwise_local.process import api_url, running
from tweakwise_local.template import ROOT, Resolver

EVENTS = ROOT / "events" / "sources"
LOCATIONS = 5
PER_PUT = eventbridge.PUT_EVENTS_LIMIT
COLD = ("CatalogSourceFunction", "CatalogWebhookFunction")


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


def _stamp(seconds: int) -> str:
    return (datetime(2026, 12, 1, tzinfo=UTC) + timedelta(seconds=seconds)).isoformat()


def products(count: int) -> list[dict[str, Any]]:
    """`count` products/update events: the documented example with its ids, names and stock made unique."""
    base = _fixture("shopify-products-update")
    made = []
    for i in range(count):
        event = copy.deepcopy(base)
        meta, product = event["detail"]["metadata"], event["detail"]["payload"]
        meta.update({"X-Shopify-Event-Id": f"bench-product-{i}", "X-Shopify-Triggered-At": _stamp(i)})
        product.update(id=10_000_000 + i, title=f"Trail runner {i}", handle=f"trail-runner-{i}")
        product["product_type"] = f"Shoes {i % 5}"
        for n, variant in enumerate(product["variants"]):
            variant.update(id=20_000_000 + 2 * i + n, inventory_item_id=30_000_000 + 2 * i + n)
            variant.update(product_id=product["id"], inventory_quantity=3)
        made.append(event)
    return made


def levels(count: int, inventory_items: int) -> list[dict[str, Any]]:
    """`count` inventory_levels/update events: each inventory item at one location after another, each a
    level it did not report before, so every event changes its item's stock."""
    base = _fixture("shopify-inventory_levels-update")
    made = []
    for j in range(count):
        event = copy.deepcopy(base)
        item, location = 30_000_000 + j % inventory_items, 1 + (j // inventory_items) % LOCATIONS
        event["detail"]["metadata"].update(
            {"X-Shopify-Event-Id": f"bench-level-{j}", "X-Shopify-Triggered-At": _stamp(10_000 + j)}
        )
        event["detail"]["payload"].update(
            inventory_item_id=item, location_id=location, available=1 + j % 7, updated_at=_stamp(10_000 + j)
        )
        made.append(event)
    return made


def _status(api: str) -> dict[str, Any]:
    return requests.get(f"{api}/_local/status", timeout=30).json()


def _settled(api: str, queue: str) -> dict[str, Any]:
    """The status once the catalog queue is empty and nothing is in flight."""
    while True:
        status = _status(api)
        depth = status["queues"][queue]
        if not depth["ApproximateNumberOfMessages"] and not depth["ApproximateNumberOfMessagesNotVisible"]:
            return status
        time.sleep(0.2)


def through(api: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Put `events` 10 at a time; wait until the worker has applied them all."""
    session = requests.Session()
    before = _status(api)["sandbox"]
    started = time.perf_counter()
    delivered = queued = 0
    for start in range(0, len(events), PER_PUT):
        body = {"Entries": [eventbridge.entry(e) for e in events[start : start + PER_PUT]]}
        answer = session.post(f"{api}/_local/events", json=body, timeout=120).json()
        if answer["FailedEntryCount"]:
            raise RuntimeError(f"PutEvents refused entries: {answer['Entries']}")
        delivered += len(answer["Deliveries"])
        queued += sum(json.loads(d["result"])["queued"] for d in answer["Deliveries"])
    put = time.perf_counter() - started
    after = _settled(api, "CatalogQueue")["sandbox"]
    seconds = time.perf_counter() - started
    return {
        "events": len(events),
        "delivered": delivered,
        "queued": queued,
        "put_s": put,
        "seconds": seconds,
        "requests": after["requests"] - before["requests"],
        "writes": after["writes"] - before["writes"],
        "items": after["items"],
    }


def end_to_end(product_count: int, level_count: int) -> list[dict[str, Any]]:
    command = [sys.executable, "-m", "tweakwise_local.run", "--api-port", "0"]
    with running(command, {"RUN_LOG_LEVEL": "ERROR"}) as (_child, banner):
        api = api_url(banner)
        runs = [{"run": f"{product_count:,} products/update", **through(api, products(product_count))}]
        level_events = levels(level_count, 2 * product_count)
        runs.append({"run": f"{level_count:,} inventory_levels/update", **through(api, level_events)})
    return runs


def cold_starts(rounds: int) -> dict[str, float]:
    """Median ms of `import boto3` and of each function's `import app`, Lambda-like, interleaved."""
    tree = Tree().make()
    resolver = Resolver(tree.template)
    subjects = {"import boto3": ("import boto3", tree.environment(None, resolver))}
    subjects.update({logical: ("import app", tree.environment(logical, resolver)) for logical in COLD})
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    for _ in range(rounds):
        for name, (code, env) in subjects.items():
            samples[name].append(tree.process_seconds(code, env) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def section(runs: list[dict[str, Any]], cold: dict[str, float], rounds: int) -> list[str]:
    base = cold["import boto3"]
    source, webhook = (cold[name] for name in COLD)
    lines = [
        "## Native sources through make run's EventBridge (`make bench-sources`)",
        "",
        f"Measured on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores ({platform.machine()}). A "
        "`make run` of this checkout in a process of its own (moto's EventBridge matching the "
        "template's rules, the source and worker functions in that process, the Tweakwise sandbox "
        f"answering at once), driven over HTTP: PutEvents bodies of {PER_PUT} Shopify entries, one after "
        "another, to `/_local/events`, which answers once each event is queued; the time runs from the "
        "first PutEvents to the catalog queue empty again (every change applied). The products are "
        "Shopify's documented `products/update` example with its ids made unique (2 variants each, 5 "
        "product types); the levels report each inventory item at "
        f"{LOCATIONS} locations, each a level it did not report before.",
        "",
        "| run | events | events/s end to end | PutEvents done, s | catalog events queued | "
        "Tweakwise requests/event | writes/event |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        rate, per = (
            run["events"] / run["seconds"],
            {k: run[k] / run["events"] for k in ("requests", "writes")},
        )
        lines.append(
            f"| {run['run']} | {run['events']:,} | {rate:.1f} | {run['put_s']:.1f} | {run['queued']:,} | "
            f"{per['requests']:.2f} | {per['writes']:.2f} |"
        )
    lines += [
        "",
        "A `products/update` queues its product type's `category.upsert` and its item's `item.upsert`: the "
        "item is one write, the category one write the first time and none after (the ledger knows it). An "
        "`inventory_levels/update` is one stock patch (`PATCH`, `Stock` alone) of the item whose levels it "
        "sums, or none when the sum did not change. Requests that are not writes are the worker's category "
        "look-ups. Locally everything runs in one process on this machine's cores: these rates say what "
        "the local emulation sustains, not what Lambda, which scales the source function out, does.",
        "",
        f"Cold start as Lambda runs it (scripts/lambda_like.py: python3.13, the built layer, read-only code, "
        f"the function's template environment), whole processes interleaved, medians of {rounds} rounds:",
        "",
        "| process | median ms | x `import boto3` |",
        "|---|---|---|",
        f"| `import boto3` | {base:.0f} | 1.00 |",
        f"| CatalogSourceFunction | {source:.0f} | {source / base:.2f} |",
        f"| CatalogWebhookFunction | {webhook:.0f} | {webhook / base:.2f} |",
        "",
        f"The source function's import is {source / webhook:.2f}x the webhook's: it builds the catalog event "
        "models (pydantic) to validate what it queues, where the webhook runs their compiled form on "
        "pydantic-core alone (decision 0014), and makes a DynamoDB client (its map table) besides SQS.",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--levels", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15, help="cold-start rounds (interleaved)")
    parser.add_argument("--no-write", action="store_true", help="print, leave docs/benchmarks.md as it is")
    args = parser.parse_args(argv)
    runs = end_to_end(args.products, args.levels)
    lines = section(runs, cold_starts(args.rounds), args.rounds)
    if not args.no_write:
        write_sections(["Native sources"], "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
