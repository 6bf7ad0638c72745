"""Whole-catalog snapshots: a JSON Lines object (plain or gzip) a shop drops under `snapshots/`, made to
agree with Tweakwise by the snapshot state machine, one step per method of `SnapshotJob`:

1. `validate`: stream the object line by line (never whole in memory), check every line with the
   webhook's models and order the categories parents first (`snapshot_lines`), write the items as a
   JSON array for the Distributed Map's item reader and every id of the snapshot (invalid lines' too) as
   a sorted digest list. Refuse the whole snapshot when too many lines are invalid, an id appears twice
   or the file cannot be read to its end.
2. `apply_categories`, then `apply_batch` per Distributed Map batch: each line goes through the worker's
   apply path (`CatalogSync.prepare` + `apply_change`), skipped when its body's digest equals the
   ledger's, so an unchanged snapshot sends Tweakwise nothing. Each batch that ends leaves one
   done-marker, so a batch run twice counts once.
3. `plan_orphans`: the ledger's entities whose id the snapshot does not hold, behind the guards (a failed
   batch, an invalid line naming no readable id, the shrink guard per kind); `apply_deletes` deletes them
   per batch.
4. `report`: counts, deleted ids, durations and the first invalid lines as JSON in
   `reports/<snapshot id>/<execution name>.json`, for every execution (`report_unvalidated` when the
   validation itself failed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from .errors import (
    PathParameterError,
    RejectedError,
    SnapshotBatchError,
    SnapshotInputError,
    UnknownCategoryError,
)
from .events import Category, CategoryDelete, CategoryUpsert, Item, ItemDelete, ItemUpsert
from .lazy import Lazy
from .ledger import Entry, Ledger
from .snapshot_lines import MAX_LINE_BYTES, check_lines, contains, digest, read_lines
from .state import SyncState
from .sync import CatalogSync, Outcome, entity_key

if TYPE_CHECKING:  # boto3-stubs, a dev dependency: the layer ships no stubs
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger("tweakwise")

SNAPSHOTS_PREFIX = "snapshots/"
RUNS_PREFIX = "runs/"  # work files of an execution: items, ids, validation, done-markers
REPORTS_PREFIX = "reports/"  # reports/<snapshot>/<execution name>.json: one per execution
DONE = "done/"  # runs/<run>/done/<kind>/...: one marker per batch applied (snapshot, ids and all)
IDS = "ids.bin"  # the 64-bit digests of every id the snapshot holds, sorted
MARKED = ("categories", "items", "deletes")
KINDS = ("item", "category")  # orphans are deleted items first
PLURAL = {"item": "items", "category": "categories"}
MAX_REPORTED = 100  # rejected items shown in a report (invalid lines: snapshot_lines.MAX_REPORTED)
MAX_DELETED_REPORTED = 1000  # deleted ids shown in a report, per kind (and their count)
# Tweakwise answers that retrying cannot fix: counted `rejected` with the reason, never retried.
REJECTIONS = (RejectedError, PathParameterError, UnknownCategoryError)


def object_key(execution_input: dict[str, Any], bucket: str) -> str:
    """The snapshot object an execution is for: the S3 "Object Created" event EventBridge sends (or the
    same input started by hand)."""
    detail = execution_input.get("detail") if isinstance(execution_input, dict) else None
    try:
        found_bucket, key = detail["bucket"]["name"], detail["object"]["key"]  # type: ignore[index]
    except (KeyError, TypeError):
        raise SnapshotInputError(
            'The execution input must be the S3 event: {"detail": {"bucket": {"name": ...}, "object": '
            '{"key": "snapshots/..."}}} (docs/snapshots.md)'
        ) from None
    if found_bucket != bucket or not isinstance(key, str) or not key.startswith(SNAPSHOTS_PREFIX):
        raise SnapshotInputError(
            f"s3://{found_bucket}/{key} is not a snapshot: upload to s3://{bucket}/{SNAPSHOTS_PREFIX}"
        )
    return key


STEPS = ("validate", "categories", "apply", "delete", "orphans", "finish")


def not_a_step(event: Any, bucket: str) -> SnapshotInputError:
    """What the snapshot function says of an event that is no step of its state machine (an S3
    notification or EventBridge event sent to it straight, a test event typed by hand)."""
    start = {"detail": {"bucket": {"name": bucket}, "object": {"key": f"{SNAPSHOTS_PREFIX}<file>"}}}
    how = (
        f"to apply a snapshot, upload it under s3://{bucket}/{SNAPSHOTS_PREFIX} (the rule "
        "SnapshotUploadedRule starts the state machine), or start the state machine yourself: aws "
        "stepfunctions start-execution --state-machine-arn <SnapshotStateMachineArn output> --input "
        f"'{json.dumps(start)}'"
    )
    records = event.get("Records") if isinstance(event, dict) else None
    if isinstance(event, dict) and (
        event.get("source") == "aws.s3"
        or (isinstance(records, list) and any(isinstance(r, dict) and "s3" in r for r in records))
    ):
        return SnapshotInputError(
            "This function runs the steps of the snapshot state machine (SnapshotStateMachine) and got "
            f"an S3 event, which only the state machine is started with: {how}"
        )
    step = event.get("BatchInput", event) if isinstance(event, dict) else None
    action = step.get("action") if isinstance(step, dict) else None
    return SnapshotInputError(
        f"Unknown snapshot step {action!r} (one of {', '.join(STEPS)}): this function runs the steps of "
        f"the snapshot state machine (SnapshotStateMachine); {how}"
    )


def snapshot_id(key: str, etag: str) -> str:
    """A snapshot's id: its file name and a piece of its ETag (the same upload, the same id)."""
    name = key.rsplit("/", 1)[-1].removesuffix(".gz").removesuffix(".jsonl").removesuffix(".json")
    name = re.sub(r"[^A-Za-z0-9._-]", "-", name)[:60] or "snapshot"
    return f"{name}-{etag.strip(chr(34))[:12]}"


# -- applying --------------------------------------------------------------------------------------------


@dataclass
class BatchResult:
    """What one batch did: its counts, the entities Tweakwise refused, and (deletes) what it removed."""

    counts: dict[str, int] = field(default_factory=dict)
    rejected: list[dict[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, name: str) -> None:
        with self.lock:  # the items of a batch are applied by several threads
            self.counts[name] = self.counts.get(name, 0) + 1


class SnapshotJob:
    """The snapshot state machine's steps, over one bucket, the sync state and the ledger.

    `snapshot` names the content (the ledger remembers it); `run` is one execution over it
    (`<snapshot>/<execution name>`): its work files, its done-markers and its report, so a re-run starts
    clean and never overwrites an earlier run's report."""

    def __init__(
        self,
        s3: S3Client | Callable[[], S3Client],
        bucket: str,
        sync: CatalogSync,
        ledger: Ledger,
        state: SyncState,
        *,
        concurrency: int = 8,
    ):
        """`s3`: a client, or a function that makes one on first use (most invocations are Distributed
        Map batches, which read S3 only to leave their done-marker)."""
        self._s3 = Lazy(s3)
        self.bucket, self.sync, self.ledger, self.state = bucket, sync, ledger, state
        self.pool = ThreadPoolExecutor(max_workers=max(1, concurrency))  # reused across invocations

    @property
    def s3(self) -> S3Client:
        return self._s3.get()

    # -- 1. validate ----------------------------------------------------------------------------------

    def validate(
        self,
        key: str,
        execution: str,
        max_invalid_percent: float,
        lock_seconds: float,
        max_line: int = MAX_LINE_BYTES,
    ) -> dict[str, Any]:
        head, key = self._head(key)
        snapshot = snapshot_id(key, head["ETag"])
        run = run_id(snapshot, execution)
        summary: dict[str, Any] = {
            **dict.fromkeys(("refused", "takenAt", "itemsKey"), ""),
            **dict.fromkeys(("lines", "items", "categories", "invalid"), 0),
            "snapshot": snapshot,
            "run": run,
            "key": key,
            "busy": False,
        }
        holder = self.state.lock_snapshot(execution, lock_seconds)
        if holder:
            summary["refused"] = (
                f"another snapshot is running (execution {holder}); upload this one again when it ends"
            )
            summary["busy"] = True
            return summary

        def open_lines() -> Iterator[bytes]:
            return read_lines(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"], max_line)

        started = time.monotonic()
        uploaded = head["LastModified"].timestamp()
        with tempfile.TemporaryFile() as items:  # /tmp: the items never sit whole in memory
            result, categories, ids = check_lines(
                open_lines, items, snapshot, uploaded, max_invalid_percent, max_line=max_line
            )
            items.seek(0)
            if not result.refused:
                self.s3.upload_fileobj(items, self.bucket, _work(run, "items.json"))
        if not result.refused:
            # Every id of the snapshot, held ones too: what orphans are told apart by (never by which
            # batches happened to run).
            present = ids.sorted(digest(entity) for entity in result.held)
            self.s3.put_object(Bucket=self.bucket, Key=_work(run, IDS), Body=present.tobytes())
        ordered = [{"line": n, "category": c.model_dump(exclude_none=True)} for n, c in categories]
        self._put_json(_work(run, "categories.json"), ordered)
        validation = {**result.summary(), "seconds": round(time.monotonic() - started, 3)}
        self._put_json(_work(run, "validation.json"), validation)
        summary.update(
            refused=result.refused,
            takenAt=datetime.fromtimestamp(result.taken_at, UTC).isoformat(),
            lines=result.lines,
            items=result.items,
            categories=result.categories,
            invalid=result.invalid,
            itemsKey=_work(run, "items.json"),
        )
        return summary

    def _head(self, key: str) -> tuple[Any, str]:
        """The object and its key: S3 event notifications URL-encode keys ("a b" arrives as "a+b")."""
        from botocore.exceptions import ClientError

        try:
            return self.s3.head_object(Bucket=self.bucket, Key=key), key
        except ClientError as exc:
            decoded = unquote_plus(key)
            if decoded == key or exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
                raise
        return self.s3.head_object(Bucket=self.bucket, Key=decoded), decoded

    # -- 2. apply -------------------------------------------------------------------------------------

    def apply_categories(self, snapshot: str, run: str, taken_at: str) -> dict[str, int]:
        """Parents first, one at a time (a child needs its parent's Tweakwise id)."""
        ordered = self._get_json(_work(run, "categories.json"))
        at = datetime.fromisoformat(taken_at)
        events = [
            CategoryUpsert.model_construct(
                type="category.upsert",
                id=f"snapshot:{snapshot}",
                occurredAt=at,
                category=Category.model_validate(line["category"]),
            )
            for line in ordered
        ]
        result = BatchResult()
        entries = self.ledger.get_many([entity_key(e) for e in events])
        _raise_failures(
            [self._apply_one(e, entries, snapshot, "categories", result) for e in events], "categories"
        )
        return self._finish_batch(run, result, "categories", [entity_key(e) for e in events])

    def apply_batch(
        self, items: list[dict[str, Any]], snapshot: str, run: str, taken_at: str
    ) -> dict[str, int]:
        """One Distributed Map batch of items, applied `concurrency` at a time."""
        at = datetime.fromisoformat(taken_at)
        events = [
            ItemUpsert.model_construct(
                type="item.upsert", id=f"snapshot:{snapshot}", occurredAt=at, item=Item.model_validate(item)
            )
            for item in items
        ]
        entities = [entity_key(e) for e in events]
        entries = self.ledger.get_many(entities)
        result = BatchResult()
        outcomes = self.pool.map(lambda e: self._apply_one(e, entries, snapshot, "items", result), events)
        _raise_failures(list(outcomes), "items")
        return self._finish_batch(run, result, "items", entities)

    def apply_deletes(
        self, entities: list[dict[str, str]], snapshot: str, run: str, taken_at: str
    ) -> dict[str, int]:
        """One batch of orphans: deleted in Tweakwise and forgotten by the ledger."""
        at = datetime.fromisoformat(taken_at)
        result = BatchResult()
        names = [entry["entity"] for entry in entities]
        _raise_failures([self._delete_one(entity, snapshot, at, result) for entity in names], "deletes")
        return self._finish_batch(run, result, "deletes", names)

    def _delete_one(self, entity: str, snapshot: str, at: datetime, result: BatchResult) -> str:
        """Delete one orphan; return "" or, when retrying may help, why it failed."""
        try:
            outcome = self.sync.apply_change(self.sync.prepare(_delete_event(entity, snapshot, at)), snapshot)
        except REJECTIONS as exc:
            result.count("deletes.rejected")
            result.rejected.append({"entity": entity, "reason": str(exc)})
            return ""
        except Exception as exc:
            return f"{entity}: {type(exc).__name__}: {exc}"
        if outcome is Outcome.APPLIED:
            result.count("deletes.deleted")
            with result.lock:
                result.deleted.append(entity)
        else:
            result.count("deletes.stale")
        return ""

    def _apply_one(
        self, event: Any, entries: dict[str, Entry], snapshot: str, kind: str, result: BatchResult
    ) -> str:
        """Apply one snapshot line; return "" or, when retrying may help, why it failed."""
        entity = entity_key(event)
        previous = entries.get(entity)
        try:
            change = self.sync.prepare(event)
            if previous is not None and previous.digest == change.digest:
                self.ledger.confirm(entity, snapshot)
                result.count(f"{kind}.unchanged")
                return ""
            if previous is not None and previous.occurred_at > event.occurredAt.timestamp():
                outcome = Outcome.STALE  # a webhook change newer than the snapshot: keep it
            else:
                outcome = self.sync.apply_change(change, snapshot)
        except REJECTIONS as exc:
            self.ledger.confirm(entity, snapshot)  # still in the snapshot: no orphan
            result.count(f"{kind}.rejected")
            with result.lock:
                result.rejected.append({"entity": entity, "reason": str(exc)})
            return ""
        except Exception as exc:
            return f"{entity}: {type(exc).__name__}: {exc}"
        if outcome is Outcome.STALE:
            self.ledger.confirm(entity, snapshot)
            result.count(f"{kind}.stale")
        else:
            result.count(f"{kind}.created" if previous is None else f"{kind}.updated")
        return ""

    def _finish_batch(self, run: str, result: BatchResult, kind: str, entities: list[str]) -> dict[str, int]:
        """Leave the batch's done-marker: `done/<kind>/<entities>-<digest of their keys>.json`. The same
        batch run again (its answer lost, the Map retrying it) finds its marker there and leaves it be, so
        a batch counts once however often it ran; a batch that failed leaves none."""
        counts = dict(result.counts)
        batch = hashlib.blake2b("\n".join(sorted(entities)).encode(), digest_size=12).hexdigest()
        marker = {
            "counts": counts,
            "rejected": result.rejected[:MAX_REPORTED],
            "deleted": result.deleted,
        }
        body = json.dumps(marker, separators=(",", ":")).encode()
        key = _work(run, f"{DONE}{kind}/{len(entities)}-{batch}.json")
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
        except self.s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
            ):
                raise
        return counts

    def _markers(self, run: str, kind: str) -> list[tuple[int, str]]:
        """(entities, key) of each done-marker of `kind` in a run."""
        found = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=_work(run, f"{DONE}{kind}/")):
            for entry in page.get("Contents", []):
                name = entry["Key"].rsplit("/", 1)[-1]
                found.append((int(name.split("-", 1)[0]), entry["Key"]))
        return found

    def _done(self, run: str) -> dict[str, Any]:
        """The run's counts, rejections and deletes, summed over its done-markers (each batch once)."""
        keys = [key for kind in MARKED for _n, key in self._markers(run, kind)]
        counts: dict[str, int] = {}
        rejected: list[dict[str, str]] = []
        deleted: list[str] = []
        for marker in self.pool.map(self._get_json, keys):
            for name, value in marker["counts"].items():
                counts[name] = counts.get(name, 0) + value
            rejected += marker["rejected"][: MAX_REPORTED - len(rejected)]
            deleted += marker["deleted"]
        return {"counts": counts, "rejected": rejected, "deleted": deleted}

    # -- 3. orphans -----------------------------------------------------------------------------------

    def plan_orphans(
        self,
        snapshot: str,
        run: str,
        taken_at: str,
        *,
        items: int,
        allow_mass_delete: bool,
        max_delete_percent: float,
        min_product_count: int,
        started: str,
    ) -> dict[str, Any]:
        """The ledger's entities this snapshot lacks (written before it was cut), behind the guards.

        - Incomplete: the items applied are counted from the done-markers, one per batch however often it
          ran; fewer than the snapshot holds, and nothing is deleted (the execution fails).
        - An entity whose id is in the snapshot (a valid line, or an invalid one it could be read from) is
          never an orphan, whichever batches ran.
        - The shrink guard: per kind, the orphans' share of the entities that existed before this
          execution started (not of what it created), and MinProductCount."""
        cut = datetime.fromisoformat(taken_at).timestamp()
        began = datetime.fromisoformat(started).timestamp()
        validation = self._get_json(_work(run, "validation.json"))
        present = array("Q")
        present.frombytes(self.s3.get_object(Bucket=self.bucket, Key=_work(run, IDS))["Body"].read())
        applied = sum(count for count, _key in self._markers(run, "items"))
        before = dict.fromkeys(KINDS, 0)
        orphans: dict[str, list[str]] = {kind: [] for kind in KINDS}
        total = 0
        for entry in self.ledger.scan():
            total += 1
            kind = entry.entity.partition("#")[0]
            if kind not in before:
                continue
            if entry.created_at < began:
                before[kind] += 1
            if entry.occurred_at <= cut and not contains(present, entry.entity):
                orphans[kind].append(entry.entity)
        guard = _guard(
            items=items,
            applied=applied,
            keeps=validation.get("keeps_orphans", ""),
            orphans={kind: len(found) for kind, found in orphans.items()},
            before=before,
            allow_mass_delete=allow_mass_delete,
            max_delete_percent=max_delete_percent,
            min_product_count=min_product_count,
        )
        planned = [{"entity": entity} for kind in KINDS for entity in sorted(orphans[kind])]  # items first
        key = _work(run, "orphans.json")
        self._put_json(key, [] if guard else planned)
        return {
            "ledger": total,
            "orphans": len(planned),
            "guard": guard,
            "incomplete": applied < items,  # failed batches: the execution fails, whatever the guard
            "orphansKey": key,
        }

    # -- 4. report ------------------------------------------------------------------------------------

    def report(
        self, snapshot: str, run: str, *, execution: str, outcome: str, reason: str, started: str
    ) -> dict[str, Any]:
        validation = self._get_json(_work(run, "validation.json"), default={})
        done = self._done(run)
        counts = done["counts"]
        now = datetime.now(UTC)
        taken_at, given = validation.get("taken_at"), validation.get("taken_at_given")
        report = {
            "snapshot": snapshot,
            "execution": execution,
            "outcome": outcome,
            "reason": reason,
            "takenAt": _iso(taken_at),
            "takenAtGiven": _iso(given),  # a header later than the upload, taken as the upload
            "lines": validation.get("lines", 0),
            "invalid": validation.get("invalid", 0),
            "items": _counts(counts, "items"),
            "categories": _counts(counts, "categories"),
            "deleted": counts.get("deletes.deleted", 0),
            "deletesRejected": counts.get("deletes.rejected", 0),
            "deletesStale": counts.get("deletes.stale", 0),
            "deletedItems": _deleted(done["deleted"], "item"),
            "deletedCategories": _deleted(done["deleted"], "category"),
            "durations": {
                "validateSeconds": validation.get("seconds", 0),
                "totalSeconds": round((now - datetime.fromisoformat(started)).total_seconds(), 3),
            },
            "invalidLines": validation.get("invalid_lines", []),
            "rejected": done["rejected"],
            "reportKey": report_key(run),
        }
        self._put_json(report["reportKey"], report)
        return report

    def report_unvalidated(
        self, execution_input: Any, *, execution: str, outcome: str, reason: str, started: str
    ) -> dict[str, Any] | None:
        """The report of an execution whose validation itself failed (the function timed out, S3 failed):
        under the snapshot's name when its input names one, else None (nothing to file it under)."""
        try:
            key = object_key(execution_input, self.bucket)
        except SnapshotInputError:
            return None
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head, key = self._head(key)
            etag = head["ETag"]
        except (BotoCoreError, ClientError):
            etag = ""  # the object is gone or unreadable: its name alone
        snapshot = snapshot_id(key, etag)
        run = run_id(snapshot, execution)
        return self.report(
            snapshot, run, execution=execution, outcome=outcome, reason=reason, started=started
        )

    # -- S3 -------------------------------------------------------------------------------------------

    def _put_json(self, key: str, value: Any) -> None:
        body = json.dumps(value, separators=(",", ":"), default=str).encode()
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")

    def _get_json(self, key: str, default: Any = None) -> Any:
        try:
            return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except self.s3.exceptions.NoSuchKey:
            if default is None:
                raise
            return default


def _guard(
    *,
    items: int,
    applied: int,
    keeps: str,
    orphans: dict[str, int],
    before: dict[str, int],
    allow_mass_delete: bool,
    max_delete_percent: float,
    min_product_count: int,
) -> str:
    """Why nothing may be deleted ("" when the orphans may go)."""
    if applied < items:
        return (
            f"{items - applied} of {items} items were not applied (failed batches), so orphans cannot be "
            "told apart: nothing was deleted; run the snapshot again"
        )
    if not any(orphans.values()) or allow_mass_delete:
        return ""
    if keeps:
        return keeps
    for kind in KINDS:
        base = before[kind]
        if orphans[kind] and orphans[kind] * 100 > max_delete_percent * base:
            return (
                f"{orphans[kind]} of the {base} {PLURAL[kind]} that existed before this snapshot would be "
                f"deleted, above SnapshotMaxDeletePercent ({max_delete_percent:g} %): nothing was deleted"
            )
    if items < min_product_count:
        return (
            f"the snapshot holds {items} items, fewer than MinProductCount ({min_product_count}): "
            "nothing was deleted"
        )
    return ""


def run_id(snapshot: str, execution: str) -> str:
    """One execution over a snapshot: its work files and report (`<snapshot>/<execution name>`)."""
    return f"{snapshot}/{execution.rsplit(':', 1)[-1]}"


def report_key(run: str) -> str:
    return f"{REPORTS_PREFIX}{run}.json"


def _raise_failures(outcomes: list[str], what: str) -> None:
    """Raise for the Map to retry the batch when any of its entities failed for a reason retrying may fix
    (what was applied is unchanged the next time). `outcomes`: "" per entity done, else why it failed."""
    failed = [outcome for outcome in outcomes if outcome]
    if failed:
        raise SnapshotBatchError(f"{len(failed)} of {len(outcomes)} {what} failed, first: {failed[0]}")


def _work(run: str, name: str) -> str:
    return f"{RUNS_PREFIX}{run}/{name}"


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp else None


def _counts(counts: dict[str, int], kind: str) -> dict[str, int]:
    names = ("created", "updated", "unchanged", "rejected", "stale")
    return {name: counts.get(f"{kind}.{name}", 0) for name in names}


def _deleted(entities: list[str], kind: str) -> dict[str, Any]:
    """The shop's ids of the deleted entities of a kind (the first MAX_DELETED_REPORTED), and their count:
    what a user needs to restore them."""
    ids: list[int | str] = []
    count = 0
    for entity in sorted(entities):
        found, _, ref = entity.partition("#")
        if found != kind:
            continue
        count += 1
        if len(ids) < MAX_DELETED_REPORTED:
            space, _, value = ref.partition(":")
            ids.append(ref if kind == "item" else int(value) if space == "id" else value)
    return {"count": count, "ids": ids}


def _delete_event(entity: str, snapshot: str, at: datetime) -> Any:
    kind, _, ref = entity.partition("#")
    if kind == "item":
        return ItemDelete.model_construct(
            type="item.delete", id=f"snapshot:{snapshot}", occurredAt=at, itemId=ref
        )
    space, _, value = ref.partition(":")
    category: int | str = int(value) if space == "id" else value
    return CategoryDelete.model_construct(
        type="category.delete", id=f"snapshot:{snapshot}", occurredAt=at, categoryId=category
    )
