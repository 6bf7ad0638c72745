"""The snapshot state machine's contract with the snapshot function: one typed input and output per step.

statemachines/snapshot.asl.yaml builds each step's `Payload` and reads its answer with a `ResultSelector`;
the names on both sides are these types' keys (tests/unit/test_snapshot_contract.py checks every one).
JSON's own types: a step answers "" for "no reason" (the state machine's Choice rules compare strings).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

from .errors import SnapshotInputError

SNAPSHOTS_PREFIX = "snapshots/"
DRY_RUNS_PREFIX = "dry-runs/"  # a snapshot to plan, never to apply: no rule starts an execution for it


class Action(StrEnum):
    VALIDATE = "validate"
    CATEGORIES = "categories"
    PLAN = "plan"  # the items whose fields differ from the ledger's: the Distributed Map's input
    APPLY = "apply"  # a Distributed Map batch of items
    DELETE = "delete"  # a Distributed Map batch of orphans
    ORPHANS = "orphans"
    FINISH = "finish"


class LineOutcome(StrEnum):
    """What became of one snapshot line (or orphan): the report's and the metrics' counts."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"  # its body equals the ledger's: nothing sent
    REJECTED = "rejected"  # Tweakwise refused it (400): counted with the reason, never retried
    STALE = "stale"  # a newer change of the entity was applied already: kept
    DELETED = "deleted"  # an orphan, deleted
    MISSING = "missing"  # an item patch for an item Tweakwise does not have: it cannot create it


class RunStep(TypedDict):
    """Every step after validation names its snapshot, its run and when the snapshot was cut."""

    snapshot: str
    run: str
    takenAt: str


class ValidateInput(TypedDict):
    action: str
    input: dict[str, Any]  # the execution's input: the S3 event (and allowMassDelete)
    execution: str


class ValidateOutput(RunStep):
    key: str
    scope: str  # "full", or "patch": item.patch lines only, nothing deleted
    refused: str  # why nothing is applied ("" when it is)
    busy: bool  # another execution holds the lock: this one must not release it
    lines: int
    items: int
    categories: int
    invalid: int
    itemsKey: str
    allowMassDelete: bool
    dryRun: bool  # plan only: what would be created, updated and deleted; Tweakwise gets no write
    mapConcurrency: int
    batchSize: int
    toleratedFailurePercent: float


class CategoriesInput(RunStep):
    action: str


class PlanInput(RunStep):
    action: str
    scope: str  # "patch": the items are item.patch lines


class PlanOutput(TypedDict):
    changed: int  # items for the Distributed Map: new, or some field differs from the ledger's
    unchanged: int  # items whose every field the ledger holds already: counted, never sent
    changedKey: str  # the changed item lines, a JSON array (the Map's item reader)


class BatchInput(RunStep):
    """The Distributed Map's BatchInput, for `apply` (items) and `delete` (orphans)."""

    action: str
    scope: NotRequired[str]  # apply: "patch" when the items are item.patch lines


class Batch(TypedDict):
    Items: list[Any]  # apply: item lines as the snapshot holds them; delete: {"entity": key}
    BatchInput: BatchInput


class OrphansInput(RunStep):
    action: str
    started: str  # the execution's start: the shrink guard counts what existed before it
    items: int
    allowMassDelete: bool
    dryRun: NotRequired[bool]  # no batch ran: the guard counts every item applied


class OrphansOutput(TypedDict):
    ledger: int
    orphans: int
    guard: str  # why nothing may be deleted ("" when the orphans may go)
    incomplete: bool  # batches failed: the execution fails, whatever the guard
    orphansKey: str


class FinishInput(TypedDict):
    action: str
    execution: str
    started: str
    outcome: str
    reason: str
    snapshot: NotRequired[str]  # absent when validation itself failed
    run: NotRequired[str]
    takenAt: NotRequired[str]
    busy: NotRequired[bool]
    input: NotRequired[Any]  # the execution's input, when validation itself failed


class Unreported(TypedDict):
    """What `finish` answers when validation failed before the snapshot could be named."""

    outcome: str  # applied, refused, guarded or failed
    reason: str


class ReportSummary(Unreported):
    """What `finish` answers: the report, less its lists of invalid lines and rejections."""

    snapshot: str
    execution: str
    takenAt: str | None
    takenAtGiven: str | None  # a header later than the upload, taken as the upload
    lines: int
    invalid: int
    items: dict[str, int]  # by LineOutcome
    categories: dict[str, int]
    deleted: int
    deletesRejected: int
    deletesStale: int
    deletedItems: dict[str, Any]  # {"count": n, "ids": [the first MAX_DELETED_REPORTED]}
    deletedCategories: dict[str, Any]
    durations: dict[str, float]
    reportKey: str


class Report(ReportSummary):
    """`reports/<snapshot>/<execution name>.json`."""

    invalidLines: list[dict[str, Any]]
    rejected: list[dict[str, str]]


FinishOutput = ReportSummary | Unreported
BatchOutput = dict[str, int]  # a batch's counts by LineOutcome (the Map writes them to results/)

INPUTS: dict[Action, type] = {
    Action.VALIDATE: ValidateInput,
    Action.CATEGORIES: CategoriesInput,
    Action.PLAN: PlanInput,
    Action.APPLY: BatchInput,
    Action.DELETE: BatchInput,
    Action.ORPHANS: OrphansInput,
    Action.FINISH: FinishInput,
}
OUTPUTS: dict[Action, tuple[type, ...]] = {  # an answer is one of these
    Action.VALIDATE: (ValidateOutput,),
    Action.PLAN: (PlanOutput,),
    Action.ORPHANS: (OrphansOutput,),
    Action.FINISH: (ReportSummary, Unreported),
}


def action_of(event: Any, bucket: str) -> Action:
    """The step an event asks for (a Map batch carries it in its BatchInput); SnapshotInputError when the
    event is no step of the state machine."""
    step = event.get("BatchInput", event) if isinstance(event, dict) else None
    action = step.get("action") if isinstance(step, dict) else None
    try:
        return Action(action if isinstance(action, str) else "")
    except ValueError:
        raise not_a_step(event, bucket) from None


def execution_input(bucket: str, key: str, allow_mass_delete: bool = False, dry_run: bool = False) -> dict:
    """An execution's input: the "Object Created" event EventBridge passes on (as the rule does), or the
    same started by hand; a dry run (its object under dry-runs/, which no rule watches) with `dryRun`."""
    event: dict[str, Any] = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": bucket}, "object": {"key": key}},
    }
    if allow_mass_delete:
        event["allowMassDelete"] = True
    if dry_run:
        event["dryRun"] = True
    return event


def object_key(execution_input: Any, bucket: str) -> str:
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
    dry_run = execution_input.get("dryRun") is True  # a dict: its detail was read
    prefixes = (SNAPSHOTS_PREFIX, DRY_RUNS_PREFIX) if dry_run else (SNAPSHOTS_PREFIX,)
    if found_bucket != bucket or not isinstance(key, str) or not key.startswith(prefixes):
        raise SnapshotInputError(
            f"s3://{found_bucket}/{key} is not a snapshot: upload to s3://{bucket}/{SNAPSHOTS_PREFIX}"
        )
    return key


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
        f"Unknown snapshot step {action!r} (one of {', '.join(Action)}): this function runs the steps of "
        f"the snapshot state machine (SnapshotStateMachine); {how}"
    )


COUNTED = ("created", "updated", "unchanged", "rejected", "stale", "missing")  # a report's counts per kind
ITEM_METRICS = {  # each count's metric, named whole: the dashboard's test finds every name in the code
    "created": "SnapshotItemsCreated",
    "updated": "SnapshotItemsUpdated",
    "unchanged": "SnapshotItemsUnchanged",
    "rejected": "SnapshotItemsRejected",
    "stale": "SnapshotItemsStale",
    "missing": "SnapshotItemsMissing",
}
OUTCOME_METRICS = {  # a run's outcome (the state machine's names) and its metric
    "applied": "SnapshotsApplied",
    "planned": "SnapshotsPlanned",
    "guarded": "SnapshotsGuarded",
    "refused": "SnapshotsRefused",
    "failed": "SnapshotsFailed",
}
