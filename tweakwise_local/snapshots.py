"""`make snapshot FILE=...` against a running `make run`.

    python -m tweakwise_local.snapshots catalog.jsonl[.gz] [--allow-mass-delete] [--dry-run]

uploads the file to the local S3 of `make run` (found on API_PORT), runs the whole flow, prints the report
and exits 0 when the snapshot was applied (or, with --dry-run, planned: nothing is sent to Tweakwise), 1
when it was refused, stopped by the shrink guard or failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tweakwise_local import runs

SNAPSHOT_MACHINE = "SnapshotStateMachine"


def _post(url: str, body: bytes, timeout: float) -> dict[str, Any]:
    headers = {"Content-Type": "application/octet-stream"}
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - 127.0.0.1 only
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - 127.0.0.1 only
        return json.loads(answer.read())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", type=Path, help="a JSON Lines snapshot, plain or gzip")
    parser.add_argument("--allow-mass-delete", action="store_true", help="pass the shrink guard")
    parser.add_argument("--dry-run", action="store_true", help="plan only: what would change, no write")
    parser.add_argument(
        "--api-port",
        type=int,
        default=int(os.environ["API_PORT"]) if os.environ.get("API_PORT") else None,
        help="the API port of `make run` (default: the one `make run` of this checkout running)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"make snapshot: no file {args.file} (FILE=path/to/catalog.jsonl[.gz])", file=sys.stderr)
        return 2
    if args.api_port is None:
        found = runs.running_ports()
        if len(found) > 1:
            ports = ", ".join(map(str, found))
            print(
                f"make snapshot: {len(found)} `make run` are running (API ports {ports}); say which: "
                f"make snapshot API_PORT={found[0]} FILE={args.file}",
                file=sys.stderr,
            )
            return 2
        args.api_port = found[0] if found else runs.DEFAULT_PORT
    flags = {"allowMassDelete": int(args.allow_mass_delete), "dryRun": int(args.dry_run)}
    query = urllib.parse.urlencode({"name": args.file.name, **flags})
    url = f"http://127.0.0.1:{args.api_port}/_local/snapshots?{query}"
    try:
        answer = _post(url, args.file.read_bytes(), args.timeout)
    except urllib.error.HTTPError as exc:
        print(f"make snapshot: {url} answered {exc.code}: {exc.read().decode()[:300]}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"make snapshot: nothing answers on {url} ({exc}); start `make run` first (or say its API_PORT)",
            file=sys.stderr,
        )
        return 2
    if answer.get("report") is not None:
        print(json.dumps(answer["report"], indent=2))
    outcome = answer.get("outcome")
    if outcome in ("applied", "planned"):
        print(f"snapshot {outcome}: {answer.get('key')}", file=sys.stderr)
        return 0
    print(f"snapshot {outcome}: {answer.get('reason')}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
