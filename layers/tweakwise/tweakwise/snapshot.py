"""Whole-catalog snapshots: a JSON Lines object (plain or gzip) a shop drops under `snapshots/`, made to
agree with Tweakwise by the snapshot state machine, one step per method of `SnapshotJob` (`run` picks it
by the step's `action`; the types of each step are `snapshot_contract`'s):

1. `validate`: stream the object line by line (never whole in memory), check every line with the
   webhook's models and order the categories parents first (`snapshot_lines`), write the items for the
   Distributed Map's item reader and every id of the snapshot (invalid lines' too) as a sorted digest
   list (`snapshot_store`). Refuse the whole snapshot when too many lines are invalid, an id appears twice
   or the file cannot be read to its end.
2. `categories`; `plan`: the item lines whose fields differ from the ledger's (`snapshot_plan`), the
   only ones the Distributed Map gets; then `apply` per Map batch: each line goes through the worker's
   apply path (`snapshot_apply`), skipped when its fields equal the ledger's. Each batch that ends leaves
   one done-marker, so a batch run twice counts once.
3. `orphans`: the ledger's entities whose id the snapshot does not hold, behind the shrink guard
   (`snapshot_guard`); `delete` deletes them per batch.
4. `finish`: the report (counts, deleted ids, durations, the first invalid lines), the publish mark, the
   lock released, and the metrics the handler publishes.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from .entity import KINDS, EntityKey, Kind, is_stale
from .errors import SnapshotInputError
from .ledger import Ledger
from .settings import SnapshotSettings
from .snapshot_apply import BatchApplier, item_event
from .snapshot_contract import (
    COUNTED,
    ITEM_METRICS,
    OUTCOME_METRICS,
    Action,
    BatchOutput,
    CategoriesInput,
    FinishInput,
    FinishOutput,
    LineOutcome,
    OrphansInput,
    OrphansOutput,
    PlanInput,
    PlanOutput,
    Report,
    ValidateInput,
    ValidateOutput,
    action_of,
    object_key,
)
from .snapshot_store import SnapshotStore, report_key, run_id, snapshot_id, work_key
from .snapshot_stream import read_lines
from .state import SyncState
from .sync import CatalogSync

if TYPE_CHECKING:  # boto3-stubs, a dev dependency: the layer ships no stubs
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger("tweakwise")

MAX_DELETED_REPORTED = 1000  # deleted ids shown in a report, per kind (and their count)


@dataclass(frozen=True)
class StepResult:
    """A step's answer to the state machine, and the metrics it publishes (only `finish` has any)."""

    answer: Any
    metrics: dict[str, int] = field(default_factory=dict)


class SnapshotJob:
    """The snapshot state machine's steps, over one bucket, the sync state and the ledger."""

    def __init__(
        self,
        s3: S3Client | Callable[[], S3Client],
        sync: CatalogSync,
        ledger: Ledger,
        state: SyncState,
        settings: SnapshotSettings,
    ):
        self.pool = ThreadPoolExecutor(max_workers=settings.concurrency)  # reused across invocations
        self.store = SnapshotStore(s3, settings.bucket, self.pool)
        self.sync, self.ledger, self.state, self.settings = sync, ledger, state, settings
        self.applier = BatchApplier(sync, ledger, self.store, self.pool)
        self.steps: dict[Action, Callable[[Any], Any]] = {
            Action.VALIDATE: self.validate,
            Action.CATEGORIES: self.categories,
            Action.PLAN: self.plan,
            Action.APPLY: lambda batch: self.applier.items(batch["Items"], batch["BatchInput"]),
            Action.DELETE: lambda batch: self.applier.deletes(batch["Items"], batch["BatchInput"]),
            Action.ORPHANS: self.orphans,
        }

    def run(self, event: Any) -> StepResult:
        """The step `event` asks for (SnapshotInputError when it is no step of the state machine)."""
        action = action_of(event, self.settings.bucket)
        if action is Action.FINISH:
            return self.finish(event)
        return StepResult(self.steps[action](event))

    # -- 1. validate ----------------------------------------------------------------------------------

    def validate(self, step: ValidateInput) -> ValidateOutput:
        settings = self.settings
        head, key = self._head(object_key(step["input"], settings.bucket))
        snapshot = snapshot_id(key, head["ETag"])
        run = run_id(snapshot, step["execution"])
        allow, dry = (step["input"].get(name) is True for name in ("allowMassDelete", "dryRun"))
        answer = ValidateOutput(
            snapshot=snapshot, run=run, takenAt="", key=key, scope="full", refused="", busy=False, lines=0,
            items=0, categories=0, invalid=0, itemsKey="", allowMassDelete=allow, dryRun=dry,
            mapConcurrency=settings.map_concurrency, batchSize=settings.batch_size,
            toleratedFailurePercent=settings.tolerated_failure_percent,
        )  # fmt: skip
        holder = "" if dry else self.state.lock_snapshot(step["execution"], settings.lock_seconds)
        if holder:
            refused = f"another snapshot is running (execution {holder}); upload this one again when it ends"
            return {**answer, "refused": refused, "busy": True}

        from .snapshot_ids import digest  # here: the Map's batches (most cold starts) never validate
        from .snapshot_lines import check_lines

        def open_lines() -> Iterator[bytes]:
            body = self.store.s3.get_object(Bucket=settings.bucket, Key=key)["Body"]
            return read_lines(body, settings.max_line_bytes)

        started = time.monotonic()
        with tempfile.TemporaryFile() as items:  # /tmp: the items never sit whole in memory
            result, categories, ids = check_lines(
                open_lines, items, snapshot, head["LastModified"].timestamp(), settings.max_invalid_percent,
                max_line=settings.max_line_bytes,
            )  # fmt: skip
            items.seek(0)
            if not result.refused:
                self.store.upload(items, work_key(run, "items.json"))
        if not result.refused:  # every id, held ones too: orphans are told apart by them, not by batches
            self.store.put_ids(run, ids.sorted(digest(entity) for entity in result.held))
        ordered = [{"line": n, "category": c.model_dump(exclude_none=True)} for n, c in categories]
        self.store.put_json(work_key(run, "categories.json"), ordered)
        validation = {**result.summary(), "seconds": round(time.monotonic() - started, 3)}
        self.store.put_json(work_key(run, "validation.json"), validation)
        return {
            **answer,
            "refused": result.refused,
            "scope": result.scope,
            "takenAt": datetime.fromtimestamp(result.taken_at, UTC).isoformat(),
            "lines": result.lines,
            "items": result.items,
            "categories": result.categories,
            "invalid": result.invalid,
            "itemsKey": work_key(run, "items.json"),
        }

    def _head(self, key: str) -> tuple[Any, str]:
        """The object and its key: S3 event notifications URL-encode keys ("a b" arrives as "a+b")."""
        from botocore.exceptions import ClientError

        s3, bucket = self.store.s3, self.settings.bucket
        try:
            return s3.head_object(Bucket=bucket, Key=key), key
        except ClientError as exc:
            decoded = unquote_plus(key)
            if decoded == key or exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
                raise
        return s3.head_object(Bucket=bucket, Key=decoded), decoded

    # -- 2. apply -------------------------------------------------------------------------------------

    def categories(self, step: CategoriesInput) -> BatchOutput:
        """Parents first, one at a time (a child needs its parent's Tweakwise id)."""
        ordered = self.store.get_json(work_key(step["run"], "categories.json"))
        return self.applier.categories([line["category"] for line in ordered], step)

    def plan(self, step: PlanInput) -> PlanOutput:
        """The item lines whose fields differ from the ledger's (`snapshot_plan`): only they go to the
        Distributed Map; the others are counted unchanged here, once."""
        from .snapshot_plan import LedgerIndex, item_lines, plan

        run = step["run"]
        self.applier.seed_categories(run)
        index = LedgerIndex(self.ledger.scan())

        def body_of_line(line: dict[str, Any]) -> tuple[EntityKey, dict[str, Any] | None]:
            change = self.sync.prepare(item_event(line, step))
            return change.entity, change.body

        key = work_key(run, "changed.json")
        with tempfile.TemporaryFile() as changed_out:
            lines = item_lines(self.store.lines(work_key(run, "items.json")))
            changed, unchanged = plan(lines, index, body_of_line, changed_out)
            changed_out.seek(0)
            self.store.upload(changed_out, key)
        self.store.leave_plan_marker(run, unchanged)
        logger.info("Snapshot plan: %d of %d items changed or new", changed, changed + unchanged)
        return {"changed": changed, "unchanged": unchanged, "changedKey": key}

    # -- 3. orphans -----------------------------------------------------------------------------------

    def orphans(self, step: OrphansInput) -> OrphansOutput:
        """The ledger's entities this snapshot lacks (written before it was cut), behind the guard.

        - Incomplete: the items applied are counted from the done-markers, one per batch however often it
          ran; fewer than the snapshot holds, and nothing is deleted (the execution fails).
        - An entity whose id is in the snapshot (a valid line, or an invalid one it could be read from) is
          never an orphan, whichever batches ran.
        - The shrink guard (`snapshot_guard`): per kind, the orphans' share of what existed before this
          execution started (not of what it created), and MinProductCount."""
        from .snapshot_guard import GuardInput, shrink_guard
        from .snapshot_ids import contains

        run, cut = step["run"], datetime.fromisoformat(step["takenAt"]).timestamp()
        began = datetime.fromisoformat(step["started"]).timestamp()
        validation = self.store.get_json(work_key(run, "validation.json"))
        present = self.store.ids(run)
        dry = step.get("dryRun") is True
        applied = step["items"] if dry else sum(count for count, _key in self.store.markers(run, "items"))
        before: Counter[Kind] = Counter()
        orphans: dict[Kind, list[str]] = {kind: [] for kind in KINDS}
        total = 0
        for entry in (
            self.ledger.scan() if validation.get("scope") != "patch" else ()
        ):  # a patch deletes nothing
            total += 1
            before[entry.entity.kind] += entry.created_at < began
            # The snapshot may delete what it is not older than (the staleness rule) and does not hold.
            if not is_stale(entry.occurred_at, cut) and not contains(present, str(entry.entity)):
                orphans[entry.entity.kind].append(str(entry.entity))
        guard = shrink_guard(
            GuardInput(
                items=step["items"], applied=applied, keeps=validation.get("keeps_orphans", ""),
                orphans={kind: len(found) for kind, found in orphans.items()}, before=before,
                allow_mass_delete=step["allowMassDelete"], min_product_count=self.settings.min_product_count,
                max_delete_percent=self.settings.max_delete_percent,
            )
        )  # fmt: skip
        planned = [{"entity": entity} for kind in KINDS for entity in sorted(orphans[kind])]  # items first
        key = work_key(run, "orphans.json")
        self.store.put_json(key, planned if guard is None or dry else [])  # a dry run deletes nothing
        return {
            "ledger": total,
            "orphans": len(planned),
            "guard": guard or "",
            "incomplete": applied < step["items"],  # failed batches: the execution fails, whatever the guard
            "orphansKey": key,
        }

    # -- 4. finish ------------------------------------------------------------------------------------

    def finish(self, step: FinishInput) -> StepResult:
        """Report, mark the instance changed (publish after sync), release the lock, count."""
        execution, outcome = step["execution"], step["outcome"]
        counted = {OUTCOME_METRICS.get(outcome, "SnapshotsFailed"): 1}
        if outcome == "planned":  # a dry run: its plan is the report, and nothing was written
            from .snapshot_dry_run import plan_report

            return StepResult(plan_report(self.store, self.ledger, step), counted)
        if "run" not in step:  # validation itself failed: reported under the snapshot's name, if any
            self.state.unlock_snapshot(execution)
            logger.error("Snapshot failed before validation: %s", step["reason"])
            self._report_unvalidated(step)
            answer: FinishOutput = {"outcome": outcome, "reason": step["reason"]}
            return StepResult(answer, counted)
        report = self.report(step["snapshot"], step["run"], step)
        written = sum(report["items"][n] + report["categories"][n] for n in ("created", "updated"))
        if written + report["deleted"]:
            self.state.mark_changed()
        if not step.get("busy"):
            self.state.unlock_snapshot(execution)
        for name, metric in ITEM_METRICS.items():
            counted[metric] = report["items"][name]
        counted["SnapshotItemsDeleted"] = report["deleted"]
        counted["SnapshotInvalidLines"] = report["invalid"]
        logger.info("Snapshot %s %s", report["snapshot"], outcome, extra={"reason": report["reason"]})
        return StepResult(_summary(report), counted)

    def report(self, snapshot: str, run: str, step: FinishInput) -> Report:
        validation = self.store.get_json(work_key(run, "validation.json"), default={})
        done = self.store.done(run)
        counts = done.counts
        started = datetime.fromisoformat(step["started"])
        report: Report = {
            "snapshot": snapshot,
            "execution": step["execution"],
            "outcome": step["outcome"],
            "reason": step["reason"],
            "takenAt": _iso(validation.get("taken_at")),
            "takenAtGiven": _iso(validation.get("taken_at_given")),
            "lines": validation.get("lines", 0),
            "invalid": validation.get("invalid", 0),
            "items": {name: counts["items"][LineOutcome(name)] for name in COUNTED},
            "categories": {name: counts["categories"][LineOutcome(name)] for name in COUNTED},
            "deleted": counts["deletes"][LineOutcome.DELETED],
            "deletesRejected": counts["deletes"][LineOutcome.REJECTED],
            "deletesStale": counts["deletes"][LineOutcome.STALE],
            "deletedItems": _deleted(done.deleted, "item"),
            "deletedCategories": _deleted(done.deleted, "category"),
            "durations": {
                "validateSeconds": validation.get("seconds", 0),
                "totalSeconds": round((datetime.now(UTC) - started).total_seconds(), 3),
            },
            "invalidLines": validation.get("invalid_lines", []),
            "rejected": done.rejected,
            "reportKey": report_key(run),
        }
        self.store.put_json(report["reportKey"], report)
        return report

    def _report_unvalidated(self, step: FinishInput) -> Report | None:
        """The report of an execution whose validation itself failed (the function timed out, S3 failed):
        under the snapshot's name when its input names one, else None (nothing to file it under)."""
        try:
            key = object_key(step.get("input"), self.settings.bucket)
        except SnapshotInputError:
            return None
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head, key = self._head(key)
            etag = head["ETag"]
        except (BotoCoreError, ClientError):
            etag = ""  # the object is gone or unreadable: its name alone
        snapshot = snapshot_id(key, etag)
        return self.report(snapshot, run_id(snapshot, step["execution"]), step)


def _summary(report: Report) -> FinishOutput:
    return {key: value for key, value in report.items() if key not in ("invalidLines", "rejected")}  # type: ignore[return-value]


def _iso(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat() if timestamp else None


def _deleted(entities: list[str], kind: str) -> dict[str, Any]:
    """The shop's ids of the deleted entities of a kind (the first MAX_DELETED_REPORTED), and their count:
    what a user needs to restore them."""
    keys = sorted(key for key in map(EntityKey.parse, entities) if key.kind == kind)
    return {"count": len(keys), "ids": [key.shop_id for key in keys[:MAX_DELETED_REPORTED]]}
