"""`make importtime`: cold starts as Lambda runs them (scripts/lambda_like.py: python3.13, the layer as
the layer build makes it, read-only code, the function's environment, X-Ray on). Not a timed test.

1. Import: each handler's whole process (`python3.13 -c "import app"`) beside `python3.13 -c "import
   boto3"`, interleaved, in the same round; medians and their ratio. Beside it, the same handler with the
   layer's bytecode removed: what every cold start paid when the layer shipped none.
2. Init + first invocation: each function with its sample event from events/ against moto and the
   Tweakwise sandbox, in a fresh process per round: its INIT (the import), its first invocation (clients,
   secret, first calls) and a second, warm one.
Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.shared import write_sections
from scripts.lambda_like import MB_PER_VCPU, ROOT, Tree, cpu_share, local_aws_and_tweakwise
from tweakwise_local.template import Resolver

# A handler's import, at most this many times `import boto3` (issue 20); the others: as low as they are.
TARGETS = {
    "CatalogWebhookFunction": 1.8,
    "CatalogWorkerFunction": 2.2,
    "CatalogSnapshotFunction": 2.2,
    "PublisherFunction": 1.65,
}
# Clients as the handlers make them at init (tests/integration/test_cold_start.py pins which): the floor
# under a handler's import that no code of ours can lower.
FLOORS = {
    "import boto3; boto3.client('sqs')": "the webhook's floor",
    # what validating with pydantic models at all would add to it: one model of one field, built (the
    # webhook validates with pydantic-core alone, decision 0014)
    "import boto3; boto3.client('sqs'); import pydantic; pydantic.create_model('M', x=(int, ...))": (
        "the webhook's floor had it kept pydantic models: the smallest one"
    ),
    "import boto3; boto3.client('dynamodb')": "the worker's, publisher's and snapshot function's floor",
}
# A function whose sample event is not events/<its folder>.json.
SAMPLE_EVENTS = {"catalog_source": "sources/shopify-products-update"}
# The function a caller waits on (the shop's webhook sender), measured at these memory sizes.
WAITED_ON = "CatalogWebhookFunction"
SIZES = (256, 512, 1024, 1769)


def _event(logical: str, tree: Tree, resolver: Resolver) -> dict[str, Any]:
    """The function's sample event, made current: fresh event times (so the worker applies, not skips)
    and, for the webhook, a fresh signature."""
    from tweakwise.settings import WebhookSettings
    from tweakwise_local.invoke import resign

    name = Path(tree.template["Resources"][logical]["Properties"]["CodeUri"]).name
    name = SAMPLE_EVENTS.get(name, name)
    event = json.loads((tree.root / "events" / f"{name}.json").read_text(encoding="utf-8"))
    now = datetime.now(UTC).isoformat()
    for record in event.get("Records", []):
        body = json.loads(record["body"])
        if "occurredAt" in body:
            record["body"] = json.dumps({**body, "occurredAt": now})
    if WebhookSettings.variable("signing_secret_id") in tree.environment(logical, resolver):
        if event.get("isBase64Encoded"):
            event["body"] = base64.b64decode(event["body"]).decode()
            event["isBase64Encoded"] = False
        event = resign(event, tree.template, resolver)
    return event


def imports(tree: Tree, rounds: int) -> list[list[Any]]:
    resolver = Resolver(tree.template)  # names only: nothing is called at import
    subjects: dict[str, tuple[str, dict[str, str]]] = {
        "import boto3": ("import boto3", tree.environment(None, resolver))
    }
    for code in FLOORS:
        subjects[code] = (code, tree.environment(None, resolver))
    for logical in tree.functions():
        subjects[logical] = ("import app", tree.environment(logical, resolver))
        subjects[f"{logical} (no bytecode)"] = (
            "import app",
            tree.environment(logical, resolver, bytecode=False),
        )
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    for _ in range(rounds):
        for name, (code, env) in subjects.items():
            samples[name].append(tree.process_seconds(code, env) * 1000)
    base = statistics.median(samples["import boto3"])
    rows = [["`python3.13 -c 'import boto3'`", f"{base:.0f}", "1.00", "", ""]]
    for code, what in FLOORS.items():
        ms = statistics.median(samples[code])
        rows.append([f'`python3.13 -c "{code}"` ({what})', f"{ms:.0f}", f"{ms / base:.2f}", "", ""])
    for logical in tree.functions():
        ms = statistics.median(samples[logical])
        bare = statistics.median(samples[f"{logical} (no bytecode)"])
        rows.append([logical, f"{ms:.0f}", f"{ms / base:.2f}", f"{bare:.0f}", f"{bare / ms:.2f}"])
    return rows


def invocations(tree: Tree, rounds: int, resolver: Resolver, local: dict[str, str]) -> list[list[Any]]:
    """Init and the first two invocations of each function, the functions interleaved round by round:
    on one CPU, then at the CPU share its memory gets."""
    rows = []
    for at_memory in (False, True):
        shares = {
            logical: cpu_share(tree.memory(logical)) if at_memory else None for logical in tree.functions()
        }
        envs = {logical: tree.environment(logical, resolver, local) for logical in shares}
        samples: dict[str, list[tuple[float, float, float]]] = {logical: [] for logical in shares}
        for _ in range(rounds):
            for logical, share in shares.items():
                event = _event(logical, tree, resolver)
                try:
                    run = tree.invoke(logical, [event, event], envs[logical], cpu_share=share)
                except RuntimeError as exc:
                    print(f"importtime: {logical}: {str(exc).splitlines()[0]}", file=sys.stderr)
                    continue
                samples[logical].append((run["init_ms"], *run["invocations_ms"][:2]))
        for logical, share in shares.items():
            memory = f"{tree.memory(logical)} MB ({share:.2f} CPU)" if share else "one CPU"
            if not samples[logical]:
                rows.append([logical, memory, "failed", "", "", ""])
                continue
            init, first, second = (
                statistics.median(column) for column in zip(*samples[logical], strict=True)
            )
            row = [f"{init:.0f}", f"{first:.0f}", f"{init + first:.0f}", f"{second:.1f}"]
            rows.append([logical, memory, *row])
    return rows


def memory_sizes(tree: Tree, rounds: int, resolver: Resolver, local: dict[str, str]) -> list[list[Any]]:
    """The function a caller waits on, cold and warm, at each memory size's CPU share, with what a warm
    invocation costs (memory x duration: Lambda bills both)."""
    rows = []
    envs = {
        size: tree.environment(WAITED_ON, resolver, {**local, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(size)})
        for size in SIZES
    }
    samples: dict[int, list[tuple[float, float]]] = {size: [] for size in SIZES}
    for _ in range(rounds):
        for size in SIZES:
            event = _event(WAITED_ON, tree, resolver)
            run = tree.invoke(WAITED_ON, [event] * 4, envs[size], cpu_share=cpu_share(size))
            first, *warm = run["invocations_ms"]
            samples[size].append((run["init_ms"] + first, statistics.median(warm)))
    for size in SIZES:
        cold, warm = (statistics.median(column) for column in zip(*samples[size], strict=True))
        template = ", the template's" if size == tree.memory(WAITED_ON) else ""
        rows.append(
            [
                f"{size} MB ({cpu_share(size):.2f} CPU){template}",
                f"{cold:.0f}",
                f"{warm:.1f}",
                f"{size * warm / 1000:.1f}",
            ]
        )
    return rows


def _table(rows: list[list[Any]]) -> list[str]:
    return ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15, help="import rounds (interleaved)")
    parser.add_argument("--invoke-rounds", type=int, default=5, help="init + first invocation rounds")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose functions are measured")
    args = parser.parse_args(argv)
    tree = Tree(args.root).make()
    import_rows = imports(tree, args.rounds)
    with local_aws_and_tweakwise(tree.template) as (resolver, _tweakwise, local):
        invoke_rows = invocations(tree, args.invoke_rounds, resolver, local)
        size_rows = memory_sizes(tree, args.invoke_rounds, resolver, local)
    pydantic_floor = next(float(r[2]) for r in import_rows if "pydantic models" in str(r[0]))
    sqs_floor = next(float(r[2]) for r in import_rows if str(r[0]).endswith("(the webhook's floor)"))
    worst = max(float(row[2]) for row in import_rows[1 + len(FLOORS) :])
    ratios = {str(row[0]): float(row[2]) for row in import_rows[1 + len(FLOORS) :]}
    lines = [
        "## Cold starts, Lambda-like (`make importtime`)",
        "",
        f"Measured on {time.strftime('%Y-%m-%d')} with python3.13 "
        f"({tree.python}, from a bare virtualenv), {platform.machine()}, as scripts/lambda_like.py sets it "
        "up: the layer as its "
        "build makes it (for this CPU), code read-only with no bytecode written, the function's template "
        "environment, `LAMBDA_TASK_ROOT` and the X-Ray variables set. Whole processes, interleaved; medians "
        f"of {args.rounds} rounds.",
        "",
        "| process | median ms | x `import boto3` | without the layer's bytecode, ms | bytecode saves (x) |",
        "|---|---|---|---|---|",
        *_table(import_rows),
        "",
        "Targets, x `import boto3`: "
        + "; ".join(
            f"{name} {target}x, {'met' if ratios[name] <= target else 'not met'} ({ratios[name]:.2f}x)"
            for name, target in TARGETS.items()
        )
        + f". The slowest handler is at {worst:.2f}x. A handler "
        "makes at init the boto3 clients every invocation uses (the first request needs them anyway): the "
        "floor rows are `import boto3` and those clients alone, what the handler would cost with no code of "
        f"ours. The webhook validates with its contract compiled for pydantic-core (decision 0014): with "
        f"pydantic's smallest model its floor alone would be {pydantic_floor:.2f}x, against a target of "
        f"{TARGETS[WAITED_ON]}x. Its compiled contract, flow and logger add "
        f"{(ratios[WAITED_ON] - sqs_floor) * float(import_rows[0][1]):.0f} ms to the SQS floor.",
        "",
        "Init and first invocation (sample event from `events/`, moto and the sandbox over HTTP, medians "
        f"of {args.invoke_rounds} fresh processes; the first invocation reads the secret, makes its "
        "clients and connections). Then the same at the CPU share each function's memory gets (memory / "
        f"{MB_PER_VCPU:,} MB of one CPU, as Lambda allocates it):",
        "",
        "| function | CPU | init ms | first invocation ms | init + first ms | second invocation ms |",
        "|---|---|---|---|---|---|",
        *_table(invoke_rows),
        "",
        f"{WAITED_ON}, the one function a caller waits on (the shop's webhook sender), at other memory "
        "sizes: cold (init + first invocation) and warm (the median of the next three), and what a warm "
        "invocation costs in MB-seconds (Lambda bills memory x duration):",
        "",
        "| memory (CPU share) | init + first ms | warm ms | warm MB-s |",
        "|---|---|---|---|",
        *_table(size_rows),
        "",
    ]
    write_sections(["Cold starts"], "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
