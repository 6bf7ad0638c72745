"""Whole-catalog snapshot benchmarks (not timed tests): `make bench-snapshot` writes the snapshot section of
docs/benchmarks.md.

The steps are the snapshot function's own (`SnapshotJob`: validate, categories, plan, batches, orphans,
report), driven the way the state machine drives them: the Distributed Map is played by
SNAPSHOT_MAP_CONCURRENCY slot processes (`map_slots`), each a "container" with its own job, client and
thread pool of SNAPSHOT_BATCH_CONCURRENCY, over batches of SNAPSHOT_BATCH_SIZE; the other steps run in
this process. (moto runs the state machine itself in the tests, one Lambda call at a time: too slow to say
anything about throughput.) Tweakwise is the sandbox answering after 50 ms over real sockets, in a process
of its own; S3 and Secrets Manager are a moto server; DynamoDB is one stand-in answering after 5 ms, as
in-region DynamoDB does, served to the slots from this process (moto spends ~10 ms of CPU per call, one
at a time, which would measure moto). No mock_aws: every process reaches AWS as a function would, by URL.

1. First load of 20,000 items, and a sequential apply (one batch at a time, one item at a time) of the
   first 300 of them, side by side: items per second and the ratio.
2. The same snapshot again: Tweakwise writes (must be 0) and wall time.
3. 1 % of items changed and 0.5 % removed: exactly those writes and deletes.
4. 10 % removed: the shrink guard stops it, 0 deletes.
5. Validation of a 1,000,000-line snapshot (gzip, streamed from disk): lines per second and peak memory,
   beside 100,000 lines (flat memory: the same peak).
6. The first load again with OLD_PATH's layer, in a process of its own: the old verbs' writes and items/s.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.map_slots import BUCKET, MapSlot, snapshot_job
from benchmarks.shared import BENCH_ENV, write_sections
from scripts.standins import DynamoDBStandIn, serve

ROOT = Path(__file__).resolve().parent.parent

ITEMS = int(os.environ.get("BENCH_ITEMS", "20000"))  # fewer for a quick try
SEQUENTIAL_ITEMS = min(300, ITEMS // 10)
LATENCY = 0.05
DYNAMODB_LATENCY = 0.005
MAP_CONCURRENCY, BATCH_CONCURRENCY, BATCH_SIZE = 10, 8, 200  # the template's defaults
ITEM_LATENCY = LATENCY + 4 * DYNAMODB_LATENCY  # a new item: claim, ledger read, POST, ledger record, release
LIMIT = MAP_CONCURRENCY * BATCH_CONCURRENCY / ITEM_LATENCY  # items/s with no CPU time at all
MAP_ATTEMPTS = 5  # a failed batch is tried again, as the Map's Retry (MaxAttempts 4) does
VALIDATION_LINES = tuple(
    int(n) for n in os.environ.get("BENCH_VALIDATION_LINES", "100000,1000000").split(",")
)
PATCH_LINES = int(os.environ.get("BENCH_PATCH_LINES", "100000"))  # a stock feed's validation
OLD_PATH = "163a79b"  # the last commit before field patches: a new item was PATCH, 404, then POST


def _env() -> None:
    os.environ.update(BENCH_ENV)


class Bench:
    """The state machine's steps: the Map's batches in `map_slots` processes (`benchmarks.map_slots`),
    each applying `batch_threads` items at once; the other steps in this process, as one more container."""

    def __init__(self, sandbox, dynamodb: DynamoDBStandIn, map_slots: int, batch_threads: int):
        import boto3

        self.sandbox, self.dynamodb = sandbox, dynamodb
        self.s3 = boto3.client("s3")
        self.runs = 0
        self.mapped = 0
        self.retries = 0  # batches tried again: a run with retries measured its failures too
        served = serve(dynamodb)
        with ThreadPoolExecutor(max_workers=map_slots) as pool:  # their cold starts, at once
            self.slots = list(pool.map(lambda _: MapSlot(served, batch_threads), range(map_slots)))

    def stop(self) -> None:
        for slot in self.slots:
            slot.stop()

    def apply(self, path: Path, limit: int | None = None, allow=False):
        """The state machine's steps; returns the report, the wall time and the sandbox writes."""
        key = f"snapshots/{path.name}"
        self.s3.upload_file(str(path), BUCKET, key)
        self.runs += 1
        execution = f"arn:aws:states:eu-west-1:123456789012:execution:bench:run-{self.runs}"
        job = snapshot_job(self.dynamodb, BATCH_CONCURRENCY)  # this process's container
        with ThreadPoolExecutor(max_workers=len(self.slots)) as pool:
            list(pool.map(MapSlot.new_job, self.slots))
        before, started = self.sandbox.request_count(), time.perf_counter()
        began = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 1))
        found = job.validate({"action": "validate", "input": _event(key, allow), "execution": execution})
        assert not found["refused"], found["refused"]
        step = {"snapshot": found["snapshot"], "run": found["run"], "takenAt": found["takenAt"]}
        batch_step = {**step, "scope": found.get("scope", "whole")}  # .get: OLD_PATH's layer has none
        job.categories({"action": "categories", **step})
        items_key = found["itemsKey"]
        if hasattr(job, "plan"):  # OLD_PATH's layer has no plan: its Map reads every item
            items_key = job.plan({"action": "plan", **batch_step})["changedKey"]
        items = json.loads(self.s3.get_object(Bucket=BUCKET, Key=items_key)["Body"].read())[:limit]
        self._map(items, {"action": "apply", **batch_step})
        outcome, reason = "applied", ""
        if limit is None:
            plan = job.orphans(
                {
                    "action": "orphans",
                    **step,
                    "items": found["items"],
                    "allowMassDelete": allow,
                    "started": began,
                }
            )
            if plan["guard"]:
                outcome, reason = "guarded", plan["guard"]
            else:
                orphans = json.loads(self.s3.get_object(Bucket=BUCKET, Key=plan["orphansKey"])["Body"].read())
                self._map(orphans, {"action": "delete", **step})
        finish = {"action": "finish", "execution": execution, "started": began, "outcome": outcome}
        report = job.report(step["snapshot"], step["run"], {**finish, "reason": reason})
        state = job.state
        state.unlock_snapshot(execution)
        self.mapped = len(items)  # what the Map got (the plan's changed items)
        total = len(items) if limit is not None else found["items"]
        seconds = time.perf_counter() - started
        return report, seconds, self.sandbox.writes_since(before), total

    def _map(self, items: list, batch_input: dict) -> None:
        batches = [items[i : i + BATCH_SIZE] for i in range(0, len(items), BATCH_SIZE)]
        free = list(self.slots)
        lock = threading.Lock()

        def one(batch):
            with lock:
                slot = free.pop()
            try:
                for attempt in range(MAP_ATTEMPTS):  # the Map retries a batch (snapshot.asl.yaml)
                    try:
                        return slot.run({"Items": batch, "BatchInput": batch_input})
                    except RuntimeError:
                        with lock:  # the Map's threads count into one total
                            self.retries += 1
                        if attempt + 1 == MAP_ATTEMPTS:
                            raise
                        time.sleep(1)
            finally:
                with lock:
                    free.append(slot)

        with ThreadPoolExecutor(max_workers=len(self.slots)) as pool:
            list(pool.map(one, batches))


def sync_runs(first_load_only: bool = False) -> dict[str, Any]:
    import logging

    from moto.server import ThreadedMotoServer

    from benchmarks.sandbox_process import SandboxProcess
    from tweakwise_local import generate

    work = ROOT / "build" / "bench"
    first = generate.write(work / "catalog.jsonl.gz", ITEMS)
    if not first_load_only:
        changed = generate.write(work / "changed.jsonl.gz", ITEMS, change=1, remove=0.5)
        shrunk = generate.write(work / "shrunk.jsonl.gz", ITEMS, remove=10)
        stock = generate.write(work / "stock.jsonl.gz", ITEMS, stock=True)
    results: dict[str, Any] = {}
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's line per request
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # S3, Secrets Manager
    moto.start()
    try:
        import boto3

        host, port = moto.get_host_and_port()
        os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"  # here and in the slots
        sandbox = SandboxProcess(LATENCY)
        os.environ["TWEAKWISE_API_URL"] = sandbox.url
        boto3.client("secretsmanager").create_secret(
            Name="bench/tweakwise",
            SecretString=json.dumps(
                {"instance_key": sandbox.instance_key, "access_token": sandbox.access_token}
            ),
        )
        boto3.client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        if not first_load_only:  # the sequential baseline first, on a Tweakwise and ledger of its own
            bench = Bench(sandbox, DynamoDBStandIn(DYNAMODB_LATENCY), 1, 1)
            _, seconds, _, count = bench.apply(first, limit=SEQUENTIAL_ITEMS)
            bench.stop()
            results["sequential"] = count / seconds
            sandbox.clear()
        dynamodb = DynamoDBStandIn(DYNAMODB_LATENCY)
        bench = Bench(sandbox, dynamodb, MAP_CONCURRENCY, BATCH_CONCURRENCY)
        runs = [("first", first)]
        if not first_load_only:
            runs += [("again", first), ("changed", changed), ("shrunk", shrunk), ("stock", stock)]
        for name, path in runs:
            before, ops, retries = sandbox.request_count(), dynamodb.ops.copy(), bench.retries
            report, seconds, writes, count = bench.apply(path)
            received = sandbox.requests_since(before)
            sent = [m for m, _p, _b in received if m != "GET"]
            ops = dynamodb.ops - ops
            results[name] = {
                "requests": len(received),
                "dynamodb_writes": ops["UpdateItem"] + ops["DeleteItem"],
                "dynamodb_reads": ops["GetItem"] + ops["BatchGetItem"] + ops["Scan"],
                "batches": -(-bench.mapped // BATCH_SIZE),
                "seconds": seconds,
                "items_per_second": count / seconds,
                "writes": writes,
                "patches": sent.count("PATCH"),
                "posts": sent.count("POST"),
                "deletes": sent.count("DELETE"),
                "bytes_per_write": _bytes_per_write(received),
                "retries": bench.retries - retries,
                "report": report,
            }
        bench.stop()
        sandbox.stop()
    finally:
        moto.stop()
    return results


def old_path_first_load() -> dict[str, Any]:
    """The first load with OLD_PATH's layer (a new item: PATCH, 404, then POST), in a process of its own
    running this harness: the old path's items/s and writes in the same run as the new one's."""
    import tarfile

    old = ROOT / "build" / "bench" / f"layer-{OLD_PATH}"
    if not old.exists():
        archive = subprocess.run(  # noqa: S603
            ["git", "-C", str(ROOT), "archive", OLD_PATH, "layers/tweakwise/tweakwise"],  # noqa: S607
            capture_output=True,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(old, filter="data")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(old / "layers" / "tweakwise"), str(ROOT)])}
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.snapshot_sync", "--first-load"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
    )
    return json.loads(run.stdout.splitlines()[-1])


def _bytes_per_write(requests: list) -> float:
    bodies = [
        len(json.dumps(body, separators=(",", ":"))) for method, _p, body in requests if method != "GET"
    ]
    return sum(bodies) / len(bodies) if bodies else 0.0


VALIDATE = """
import io, json, sys, time
from tweakwise.snapshot_lines import check_lines
from tweakwise.snapshot_models import SNAPSHOT_LINE_ADAPTER
from tweakwise.snapshot_stream import read_lines
path, pace = sys.argv[1], sys.argv[2] == "pydantic"
started, cpu = time.perf_counter(), time.process_time()
if pace:  # pydantic's own pace: the same lines, read the same way, each only validated by the adapter
    lines = 0
    for raw in read_lines(open(path, "rb")):
        SNAPSHOT_LINE_ADAPTER.validate_json(raw)
        lines += 1
else:
    with open("/dev/null", "wb") as out:  # where the items file goes does not change the peak
        result, _, _ = check_lines(lambda: read_lines(open(path, "rb")), out, "s", 0.0, 0.1)
    lines = result.lines
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
# VmHWM: this process's own peak (ru_maxrss would keep the parent's peak across fork and exec)
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"lines": lines, "seconds": seconds, "cpu": cpu, "peak_mib": peak / 1024}))
"""


def _validate(path: Path, mode: str) -> dict[str, Any]:
    """VALIDATE in a process of its own: "ours" (check_lines) or "pydantic" (the adapter alone)."""
    run = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", VALIDATE, str(path), mode], capture_output=True, text=True, check=True
    )
    return json.loads(run.stdout)


def validation_runs() -> dict[int, dict]:
    from tweakwise_local import generate

    found: dict[Any, dict] = {}
    runs = [(lines, lines, False) for lines in VALIDATION_LINES] + [("stock", PATCH_LINES, True)]
    for name, lines, stock in runs:
        path = generate.write(ROOT / "build" / "bench" / f"validate-{name}.jsonl.gz", lines, stock=stock)
        found[name] = _validate(path, "ours")
        pace = _validate(path, "pydantic")
        found[name]["pydantic_cpu"] = pace["cpu"]
        found[name]["mib_on_disk"] = path.stat().st_size / 2**20
        with path.open("rb") as raw:  # gzip's last 4 bytes: the uncompressed size (mod 4 GiB)
            raw.seek(-4, 2)
            found[name]["mib_plain"] = int.from_bytes(raw.read(4), "little") / 2**20
    return found


def _row(*cells: Any) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _retried(sync: dict[str, Any]) -> str:
    retried = {k: v["retries"] for k, v in sync.items() if isinstance(v, dict) and v.get("retries")}
    if not retried:
        return "No batch failed: none was tried again."
    return "Batches tried again (the Map's retry): " + ", ".join(f"{k} {n}" for k, n in retried.items()) + "."


def section(sync: dict[str, Any], validation: dict[int, dict]) -> list[str]:
    first, again, changed, shrunk, stock, old = (
        sync[k] for k in ("first", "again", "changed", "shrunk", "stock", "old")
    )
    updated, kept = changed["report"]["items"]["updated"], changed["report"]["items"]["unchanged"]
    where = f"{os.cpu_count()} cores ({platform.machine()})"
    lines = [
        "## Whole-catalog snapshots (`make bench-snapshot`)",
        "",
        f"Measured on {time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, {where}. The snapshot "
        "function's steps are driven as the state machine drives them: "
        f"{MAP_CONCURRENCY} Map slots, each a process of its own as each is a Lambda container in AWS (its "
        f"own job, client and {BATCH_CONCURRENCY}-thread pool), batches of {BATCH_SIZE}; the other steps in "
        "the benchmark's process. Tweakwise: the sandbox answering after "
        f"{LATENCY * 1000:.0f} ms over real sockets, in a process of its own. DynamoDB: one stand-in "
        f"answering after {DYNAMODB_LATENCY * 1000:.0f} ms, served to the slots over local sockets. S3 and "
        "Secrets Manager: a moto server (no `mock_aws`: every process reaches AWS by URL). "
        + _retried(sync),
        "",
        "| run | items | wall time | items/s | Tweakwise writes | what was sent |",
        "|---|---|---|---|---|---|",
        _row(
            "first load", f"{ITEMS:,}", f"{first['seconds']:.1f} s", f"{first['items_per_second']:.0f}",
            f"{first['writes']:,}", f"{first['posts']:,} POST (new: one each), {first['patches']:,} PATCH",
        ),
        _row(
            f"first load, the old path ({OLD_PATH}'s layer, its own process)", f"{ITEMS:,}", "",
            f"{old['items_per_second']:.0f}", f"{old['writes']:,}",
            f"{old['posts']:,} POST, {old['patches']:,} PATCH (a new item: PATCH, 404, then POST)",
        ),
        _row(
            f"sequential apply (1 slot, 1 thread), first {SEQUENTIAL_ITEMS} items", SEQUENTIAL_ITEMS, "",
            f"{sync['sequential']:.1f}", "", "the same requests, one at a time",
        ),
        _row(
            "the same snapshot again", f"{ITEMS:,}", f"{again['seconds']:.1f} s",
            f"{again['items_per_second']:.0f}", f"**{again['writes']}**",
            f"nothing: {again['report']['items']['unchanged']:,} unchanged",
        ),
        _row(
            "1 % changed, 0.5 % removed", f"{updated + kept:,}", f"{changed['seconds']:.1f} s",
            f"{changed['items_per_second']:.0f}", changed["writes"],
            f"{changed['patches']} PATCH ({updated} updated), {changed['deletes']} DELETE "
            f"({changed['report']['deleted']} orphans)",
        ),
        _row(
            "10 % removed", f"{shrunk['report']['items']['unchanged']:,}", f"{shrunk['seconds']:.1f} s",
            f"{shrunk['items_per_second']:.0f}", shrunk["writes"],
            f"guard: {shrunk['report']['outcome']}, {shrunk['deletes']} DELETE",
        ),
        _row(
            "patch snapshot: every item's stock", f"{ITEMS:,}", f"{stock['seconds']:.1f} s",
            f"{stock['items_per_second']:.0f}", f"{stock['writes']:,}",
            f"{stock['patches']:,} PATCH of {stock['bytes_per_write']:.0f} bytes (a first-load POST: "
            f"{first['bytes_per_write']:.0f}), {stock['deletes']} DELETE",
        ),
        "",
        f"First load: **{first['items_per_second'] / sync['sequential']:.1f}x** the sequential apply, "
        f"**{first['items_per_second'] / old['items_per_second']:.2f}x** the old path's items/s with "
        f"{first['writes'] / old['writes']:.2f}x its writes. Its latency limit: {MAP_CONCURRENCY} slots x "
        f"{BATCH_CONCURRENCY} threads / {ITEM_LATENCY * 1000:.0f} ms an item (Tweakwise's "
        f"{LATENCY * 1000:.0f} ms and 4 DynamoDB calls: claim, ledger read and record, release) = "
        f"{LIMIT:,.0f} items/s; the first load reached **{first['items_per_second'] / LIMIT:.0%}** of it, "
        "validation, categories and plan included (the rest is CPU: two cores for ten slots, the sandbox "
        "and the stand-ins; in AWS each Map slot has a CPU share of its own).",
        f'Guard message: "{shrunk["report"]["reason"]}".',
        "",
        "Calls per entity of the snapshot (the state table's lock and the steps' own reads counted too): "
        "DynamoDB reads (calls: a BatchGetItem reads up to 100 entries, a Scan page ~1,000) and writes, "
        "Tweakwise requests (the categories listing included), and Distributed Map batches (one child "
        "execution and Lambda invocation each).",
        "",
        "| run | DynamoDB reads | DynamoDB writes | Tweakwise requests | Map batches |",
        "|---|---|---|---|---|",
        *[
            _row(
                label, *(f"{run[k] / ITEMS:.4f}" for k in ("dynamodb_reads", "dynamodb_writes", "requests")),
                f"{run['batches']:,} ({run['batches'] / ITEMS:.4f})",
            )
            for label, run in (("first load", first), ("the same again", again), ("1 % changed", changed))
        ],
        "",
        "| validation (gzip, streamed) | gzip / plain size | lines/s | lines/s of CPU | x pydantic's "
        "`validate_json` alone | peak memory (RSS, whole process) |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    for count, found in validation.items():
        name = f"{count:,} lines" if count != "stock" else f"{PATCH_LINES:,} stock patches (a patch snapshot)"
        lines.append(
            _row(
                name,
                f"{found['mib_on_disk']:.1f} / {found['mib_plain']:.0f} MiB",
                f"{found['lines'] / found['seconds']:,.0f}",
                f"{found['lines'] / found['cpu']:,.0f}",
                f"**{found['pydantic_cpu'] / found['cpu']:.2f}x**",
                f"{found['peak_mib']:.0f} MiB",
            )
        )  # fmt: skip
    small, large = (validation[n]["peak_mib"] for n in VALIDATION_LINES)
    lines += [
        "",
        "Against pydantic's pace: the same file read the same way (`read_lines`) in a process of its own, "
        "each line only validated by `TypeAdapter.validate_json` of the snapshot line models (CPU time). "
        "Validation parses and checks each line in that one pass (json.loads and the line's model only for "
        "a line it refuses, for the errors) and writes the line itself for the Distributed Map.",
        "",
        f"Peak memory grows {large - small:.0f} MiB from {VALIDATION_LINES[0]:,} to {VALIDATION_LINES[1]:,} "
        "lines (the interpreter, pydantic and boto3 are the rest): the lines are streamed, one 1 MiB chunk "
        "at a time; what grows is the repeated-id check, 8 bytes per id (about 12 with the arrays' growth "
        "margin).",
        "",
    ]
    return lines


def _event(key: str, allow: bool) -> dict:
    """The execution input: the S3 event EventBridge sends."""
    return {"detail": {"bucket": {"name": BUCKET}, "object": {"key": key}}, "allowMassDelete": allow}


def main() -> int:
    _env()
    if sys.argv[1:] == ["--first-load"]:  # old_path_first_load's process: one JSON line
        with contextlib.redirect_stdout(io.StringIO()):
            first = sync_runs(first_load_only=True)["first"]
        print(json.dumps({k: first[k] for k in ("items_per_second", "writes", "patches", "posts")}))
        return 0
    with contextlib.redirect_stdout(io.StringIO()):
        sync = sync_runs()
    sync["old"] = old_path_first_load()
    validation = validation_runs()
    text = "\n".join(section(sync, validation))
    write_sections(["Whole-catalog snapshots"], text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
