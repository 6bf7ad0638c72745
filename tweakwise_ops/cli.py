"""tweakwise-ops: answers for the operator of a deployed stack (--stack NAME) or of `make run` (--local,
the default when no stack is given).

  status                        queues, dead letters, the last snapshot and publish, sync lag
  trace ID                      what this stack sent, what Tweakwise holds, where they differ, what waits
  redrive [--id ID ...] [--type TYPE] [--reason TEXT] [--dry-run]
                                move chosen dead letters back to the catalog queue
  snapshot plan FILE            what a snapshot would create, update and delete; no write
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tweakwise_ops.stack import OpsError, Stack

DEFAULT_PORT = 3000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tweakwise-ops", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--stack", help="a deployed stack's name (its outputs name every resource)")
    where.add_argument("--local", action="store_true", help="the `make run` of this machine (the default)")
    parser.add_argument("--region", help="the stack's region (default: your AWS configuration's)")
    parser.add_argument(
        "--api-port",
        type=int,
        default=int(os.environ.get("API_PORT") or DEFAULT_PORT),
        help="make run's port",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document instead of the summary")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="is it healthy: queues, dead letters, last snapshot and publish, lag")
    trace = commands.add_parser("trace", help="one item (an id) or category (category:KEY), everywhere")
    trace.add_argument("id")
    trace.add_argument("--peek", action="store_true", help="read the catalog queue for its changes")
    redrive = commands.add_parser("redrive", help="move matching dead letters back to the catalog queue")
    redrive.add_argument("--id", action="append", default=[], dest="ids", help="an item id or category:KEY")
    redrive.add_argument("--type", default="", help="an event type, e.g. category.upsert")
    redrive.add_argument("--reason", default="", help="a part of the failure's reason, any case")
    redrive.add_argument("--dry-run", action="store_true", help="say what would move; move nothing")
    snapshot = commands.add_parser("snapshot", help="snapshots").add_subparsers(
        dest="snapshot", required=True
    )
    plan = snapshot.add_parser("plan", help="a dry run: what the snapshot would do; Tweakwise gets no write")
    plan.add_argument("file", type=Path)
    return parser


def _run(args: argparse.Namespace, stack: Stack) -> tuple[dict[str, Any], Callable[[dict[str, Any]], str]]:
    if args.command == "status":
        from tweakwise_ops import status

        return status.status(stack), status.show
    if args.command == "snapshot":
        from tweakwise_ops import plan

        return plan.plan(stack, args.file, args.api_port), plan.show
    if args.command == "trace":
        from tweakwise_ops import trace

        return trace.trace(stack, args.id, args.peek), trace.show
    from tweakwise_ops import redrive

    match = redrive.Match(args.ids, args.type, args.reason)
    return redrive.redrive(stack, match, args.dry_run), redrive.show


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        stack = Stack.deployed(args.stack, args.region) if args.stack else Stack.local(args.api_port)
        result, show = _run(args, stack)
    except OpsError as exc:
        print(f"tweakwise-ops: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str) if args.json else show(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
