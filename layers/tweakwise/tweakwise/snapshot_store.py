"""The snapshot bucket's work files and reports: the one module that knows their keys.

- `runs/<run>/`: one execution's work files: items.json (the valid item lines as the snapshot holds
  them), changed.json (those the plan found changed: the Distributed Map's item reader), ids.bin (the
  sorted 64-bit digests of every id of the snapshot), categories.json (parents first), category-ids.json,
  validation.json, orphans.json, and `done/<kind>/<entities>-<digest>.json`: one marker per batch applied
  (and `done/items/plan.json`: the items the plan found unchanged).
- `reports/<snapshot>/<execution name>.json`: one report per execution.
A run is `<snapshot>/<execution name>`, so a re-run starts clean and never overwrites an earlier report.
"""

from __future__ import annotations

import hashlib
import json
import re
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from .lazy import Lazy
from .snapshot_contract import LineOutcome
from .snapshot_stream import read_lines

if TYPE_CHECKING:  # boto3-stubs, a dev dependency: the layer ships no stubs
    from mypy_boto3_s3 import S3Client

RUNS_PREFIX = "runs/"
REPORTS_PREFIX = "reports/"
MARKED = ("categories", "items", "deletes")
PLAN_MARKER = "done/items/plan.json"  # the kinds of batch, each its own folder of markers
MAX_REPORTED = 100  # rejected entities shown in a report (invalid lines: snapshot_lines.MAX_REPORTED)


def snapshot_id(key: str, etag: str) -> str:
    """A snapshot's id: its file name and a piece of its ETag (the same upload, the same id)."""
    name = key.rsplit("/", 1)[-1].removesuffix(".gz").removesuffix(".jsonl").removesuffix(".json")
    name = re.sub(r"[^A-Za-z0-9._-]", "-", name)[:60] or "snapshot"
    return f"{name}-{etag.strip(chr(34))[:12]}"


def run_id(snapshot: str, execution: str) -> str:
    """One execution over a snapshot: its work files and report (`<snapshot>/<execution name>`)."""
    return f"{snapshot}/{execution.rsplit(':', 1)[-1]}"


def report_key(run: str) -> str:
    return f"{REPORTS_PREFIX}{run}.json"


def read_report(s3: Any, bucket: str, key: str, execution: str) -> dict[str, Any] | None:
    """The report an execution wrote for the snapshot object `key` (None when it wrote none)."""
    try:
        etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    except s3.exceptions.ClientError:
        etag = ""  # gone: reported under its name alone
    for tag in dict.fromkeys((etag, "")):
        try:
            body = s3.get_object(Bucket=bucket, Key=report_key(run_id(snapshot_id(key, tag), execution)))
        except s3.exceptions.NoSuchKey:
            continue
        return json.loads(body["Body"].read())
    return None


def work_key(run: str, name: str) -> str:
    return f"{RUNS_PREFIX}{run}/{name}"


@dataclass
class Marker:
    """What one batch did: its counts, the entities Tweakwise refused, and (deletes) what it removed."""

    counts: Counter[LineOutcome] = field(default_factory=Counter)
    rejected: list[dict[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


@dataclass
class Done:
    """A run's batches summed over their markers, each batch once: counts by kind of batch."""

    counts: dict[str, Counter[LineOutcome]]
    rejected: list[dict[str, str]]
    deleted: list[str]


class SnapshotStore:
    """One snapshot bucket. Thread-safe (boto3 clients are)."""

    def __init__(self, s3: S3Client | Callable[[], S3Client], bucket: str, pool: ThreadPoolExecutor):
        """`s3`: a client, or a function that makes one on first use (most invocations are Distributed
        Map batches, which read S3 only to leave their done-marker)."""
        self._s3 = Lazy(s3)
        self.bucket, self.pool = bucket, pool

    @property
    def s3(self) -> S3Client:
        return self._s3.get()

    def put_json(self, key: str, value: Any) -> None:
        body = json.dumps(value, separators=(",", ":"), default=str).encode()
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")

    def get_json(self, key: str, default: Any = None) -> Any:
        try:
            return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except self.s3.exceptions.NoSuchKey:
            if default is None:
                raise
            return default

    def upload(self, file: IO[bytes], key: str) -> None:
        self.s3.upload_fileobj(file, self.bucket, key)

    def put_ids(self, run: str, ids: array) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=work_key(run, "ids.bin"), Body=ids.tobytes())

    def ids(self, run: str) -> array:
        present = array("Q")
        present.frombytes(self.s3.get_object(Bucket=self.bucket, Key=work_key(run, "ids.bin"))["Body"].read())
        return present

    def leave_marker(self, run: str, kind: str, entities: Iterable[str], marker: Marker) -> None:
        """Leave a batch's done-marker: `done/<kind>/<entities>-<digest of their keys>.json`. The same batch
        run again (its answer lost, the Map retrying it) finds its marker there and leaves it be, so a
        batch counts once however often it ran; a batch that failed leaves none."""
        names = sorted(entities)
        batch = hashlib.blake2b("\n".join(names).encode(), digest_size=12).hexdigest()
        body = {
            "counts": dict(marker.counts),
            "rejected": marker.rejected[:MAX_REPORTED],
            "deleted": marker.deleted,
        }
        key = work_key(run, f"done/{kind}/{len(names)}-{batch}.json")
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=json.dumps(body, separators=(",", ":")).encode(),
                IfNoneMatch="*",
            )
        except self.s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
            ):
                raise

    def leave_plan_marker(self, run: str, unchanged: int) -> None:
        """The plan's done-marker: the items it found unchanged, counted as one batch. Written over by
        the plan run again (its count may differ then), so it counts once."""
        body = {
            "counts": {LineOutcome.UNCHANGED: unchanged},
            "rejected": [],
            "deleted": [],
            "entities": unchanged,
        }
        self.put_json(work_key(run, PLAN_MARKER), body)

    def markers(self, run: str, kind: str) -> list[tuple[int, str]]:
        """(entities, key) of each done-marker of `kind` in a run."""
        found = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=work_key(run, f"done/{kind}/")):
            for entry in page.get("Contents", []):
                key = entry["Key"]
                if key == work_key(run, PLAN_MARKER):
                    found.append((int(self.get_json(key)["entities"]), key))
                else:
                    found.append((int(key.rsplit("/", 1)[-1].split("-", 1)[0]), key))
        return found

    def lines(self, key: str) -> Iterator[bytes]:
        """An object's lines, streamed."""
        return read_lines(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"])

    def done(self, run: str) -> Done:
        """The run's counts, rejections and deletes, summed over its done-markers (each batch once)."""
        keys = [(kind, key) for kind in MARKED for _n, key in self.markers(run, kind)]
        done = Done({kind: Counter() for kind in MARKED}, [], [])
        for (kind, _key), marker in zip(
            keys, self.pool.map(self.get_json, [k for _, k in keys]), strict=True
        ):
            done.counts[kind].update({LineOutcome(name): n for name, n in marker["counts"].items()})
            done.rejected += marker["rejected"][: MAX_REPORTED - len(done.rejected)]
            done.deleted += marker["deleted"]
        return done
