"""Whole-catalog snapshots end to end: the template's snapshot state machine run by moto's Step Functions
(Distributed Map item reader over moto S3), the snapshot function in process, the Tweakwise sandbox over
real sockets, the ledger and the sync state in moto DynamoDB."""

from __future__ import annotations

import gzip
import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import boto3
import pytest

from conftest import ACCESS_TOKEN, INSTANCE_KEY, REGION
from tweakwise.snapshot_contract import execution_input as s3_event
from tweakwise.snapshot_store import read_report
from tweakwise.state import SyncState
from tweakwise_local.functions import LocalFunction
from tweakwise_local.invocations import emf_metrics, queue_messages, sqs_event
from tweakwise_local.provision import provision
from tweakwise_local.snapshots import SNAPSHOT_MACHINE
from tweakwise_local.states import StateMachines
from tweakwise_local.template import Resolver, load_template, variable_target

TEMPLATE = load_template()
FUNCTIONS = [k for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::Function"]


class Stack:
    """The template's resources in moto, its snapshot and worker functions in process."""

    def __init__(self, sandbox, overrides: dict[str, str], retries: int = 0):
        self.sandbox = sandbox
        self.resolver = Resolver(TEMPLATE, overrides)
        for logical in FUNCTIONS:
            arn = f"arn:aws:lambda:{REGION}:123456789012:function:{logical}"
            self.resolver.resources[logical] = {"Ref": logical, "Arn": arn}
        secret = variable_target(TEMPLATE, "TWEAKWISE_SECRET_ID", self.resolver)
        credentials = {"instance_key": INSTANCE_KEY, "access_token": ACCESS_TOKEN}
        provision(TEMPLATE, self.resolver, {secret: credentials})
        extra = {
            "TWEAKWISE_API_URL": sandbox.url,
            "TWEAKWISE_MAX_RETRIES": str(retries),
            "POWERTOOLS_METRICS_NAMESPACE": "TweakwiseTest",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        self.functions = {name: LocalFunction(TEMPLATE, name, self.resolver, extra) for name in FUNCTIONS}
        self.printed: list[str] = []  # what the functions printed: their EMF metrics
        self.machines = StateMachines(TEMPLATE, self.resolver, self._invoke)
        self.machines.create()
        self.bucket = self.resolver.resources["SnapshotBucket"]["Ref"]
        self.s3 = boto3.client("s3", region_name=REGION)
        self.topic = self.resolver.resources["AlarmTopic"]["Ref"]

    def _invoke(self, name: str, payload: dict):
        result, printed = self.functions[name].invoke(payload, True)
        self.printed.append(printed)
        return result

    def metrics(self) -> dict[str, float]:
        return emf_metrics("".join(self.printed))

    def upload(
        self, lines: list, name: str = "catalog.jsonl", gz: bool = False, prefix: str = "snapshots/"
    ) -> str:
        """Lines as JSON, or as the bytes given (a line no JSON encoder would write)."""
        body = b"".join(
            (line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines
        )
        key = f"{prefix}{name}"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=gzip.compress(body) if gz else body)
        return key

    def run(
        self, key: str, allow_mass_delete: bool = False, event_key: str | None = None, dry_run: bool = False
    ):
        event = s3_event(self.bucket, event_key or key, allow_mass_delete, dry_run)
        execution = self.machines.execute(SNAPSHOT_MACHINE, event)
        return execution, read_report(self.s3, self.bucket, key, execution.arn)

    def apply(self, lines: list[dict], **kwargs):
        return self.run(self.upload(lines, **kwargs))

    def ledger(self) -> dict[str, dict]:
        table = self.resolver.resources["LedgerTable"]["Ref"]
        items = boto3.client("dynamodb", region_name=REGION).scan(TableName=table)["Items"]
        return {item["entity"]["S"]: item for item in items}


@pytest.fixture
def stack(aws, sandbox):
    return Stack(sandbox, {})


def item(ref: str, price: float = 10, **fields) -> dict:
    return {"type": "item", "item": {"id": ref, "name": f"Item {ref}", "price": price, "stock": 1, **fields}}


def category(ref: str, parents: list | None = None) -> dict:
    body: dict = {"id": ref, "name": f"Category {ref}"}
    if parents is not None:
        body["parents"] = parents
    return {"type": "category", "category": body}


def catalog(count: int, price: float = 10) -> list[dict]:
    return [category("shoes"), category("trail", ["shoes"])] + [
        item(f"SKU-{n}", price, categories=["trail"]) for n in range(count)
    ]


def test_first_load_creates_categories_parents_first_then_items(stack):
    lines = [item("SKU-1", categories=["trail"]), category("trail", ["shoes"]), category("shoes")]
    execution, report = stack.apply(lines, name="first.jsonl.gz", gz=True)
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert execution.states[:4] == ["Validate", "Accepted?", "DryRun?", "Categories"]
    assert "Items" in execution.states and execution.states[-1] == "Done"
    assert report["outcome"] == "applied"
    assert report["items"]["created"] == 1 and report["categories"]["created"] == 2
    assert report["lines"] == 3 and report["invalid"] == 0
    keys = {c["Key"]: c for c in stack.sandbox.categories.values()}
    assert keys["trail"]["Parents"] == [keys["shoes"]["CategoryId"]]  # the parent existed first
    assert stack.sandbox.items["SKU-1"]["Categories"] == [keys["trail"]["CategoryId"]]
    assert set(stack.ledger()) == {"item#SKU-1", "category#key:shoes", "category#key:trail"}
    metrics = stack.metrics()
    assert metrics["SnapshotsApplied"] == 1 and metrics["SnapshotItemsCreated"] == 1
    assert metrics["SnapshotInvalidLines"] == 0
    # the writes are published by publish after sync, as webhook changes are
    table = stack.resolver.resources["SyncStateTable"]["Ref"]
    marks = SyncState(boto3.client("dynamodb", region_name=REGION), table).publish_marks()
    assert marks.changed_at > 0


def test_the_same_snapshot_again_sends_tweakwise_nothing(stack):
    key = stack.upload(catalog(5))
    first, _ = stack.run(key)
    writes = stack.sandbox.writes()
    assert first.status == "SUCCEEDED" and writes == 2 + 5  # a new item: one POST
    again, report = stack.run(key)
    assert again.status == "SUCCEEDED"
    assert stack.sandbox.writes() == writes  # zero writes
    assert report["items"] == {
        "created": 0,
        "updated": 0,
        "unchanged": 5,
        "rejected": 0,
        "stale": 0,
        "missing": 0,
    }
    assert report["categories"]["unchanged"] == 2 and report["deleted"] == 0


def _dynamodb_calls(monkeypatch) -> Counter:
    """(table, operation) of every DynamoDB call of the clients made from now on."""
    calls: Counter = Counter()
    make = boto3.client

    def client(*args, **kwargs):
        made = make(*args, **kwargs)
        if made.meta.service_model.service_name == "dynamodb":

            def count(model, params, **_kwargs):
                calls[(params.get("TableName") or ",".join(params.get("RequestItems", {})), model.name)] += 1

            made.meta.events.register("before-call.dynamodb.*", count)
        return made

    monkeypatch.setattr(boto3, "client", client)
    return calls


def test_an_unchanged_snapshot_starts_no_batch_writes_no_entity_and_looks_each_key_up_once(
    aws, sandbox, monkeypatch
):
    calls = _dynamodb_calls(monkeypatch)
    stack = Stack(sandbox, {"SnapshotBatchSize": "4"})  # 30 items: 8 batches
    key = stack.upload(catalog(30))
    assert stack.run(key)[0].status == "SUCCEEDED"
    calls.clear()
    before = len(stack.sandbox.requests)
    again, report = stack.run(key)
    assert again.status == "SUCCEEDED" and report["items"]["unchanged"] == 30
    assert "Plan" in again.states and "Items" not in again.states  # no Map batch: nothing changed
    sent = stack.sandbox.requests[before:]
    assert [m for m, _p, _b in sent if m != "GET"] == []
    # At most one listing of the categories per run (none here: the container knows them from the first)
    assert [p for _m, p, _b in sent] in ([], ["/category"])
    ledger = stack.resolver.resources["LedgerTable"]["Ref"]
    writes = {
        k: n for k, n in calls.items() if k[1] in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
    }
    assert not [k for k in writes if k[0] == ledger]  # no write per entity
    assert sum(writes.values()) <= 2  # the run's lock, taken and released


def test_changed_and_removed_items_are_exactly_what_is_sent(stack):
    stack.apply(catalog(40))
    lines = catalog(40)
    lines[5] = item("SKU-3", price=99, categories=["trail"])  # line 5 holds SKU-3
    del lines[10]  # SKU-8 is gone from the shop
    before = len(stack.sandbox.requests)
    execution, report = stack.apply(lines)
    assert execution.status == "SUCCEEDED"
    sent = [(method, path) for method, path, _ in stack.sandbox.requests[before:] if method != "GET"]
    assert sorted(sent) == [("DELETE", "/item/SKU-8"), ("PATCH", "/item/SKU-3")]
    assert report["items"]["updated"] == 1 and report["items"]["unchanged"] == 38 and report["deleted"] == 1
    assert report["deletedItems"] == {"count": 1, "ids": ["SKU-8"]}  # what a user would restore
    assert report["deletedCategories"] == {"count": 0, "ids": []}
    assert stack.sandbox.items["SKU-3"]["Price"] == 99 and "SKU-8" not in stack.sandbox.items
    assert "item#SKU-8" not in stack.ledger()
    from tweakwise.snapshot_store import run_id, work_key

    changed = work_key(run_id(report["snapshot"], report["execution"]), "changed.json")
    body = stack.s3.get_object(Bucket=stack.bucket, Key=changed)["Body"].read()
    assert [line["item"]["id"] for line in json.loads(body)] == ["SKU-3"]  # the Map's only item


def test_the_shrink_guard_deletes_nothing_until_allow_mass_delete(stack):
    stack.apply(catalog(10))
    stack.sandbox.items["FEED-1"] = {"ArticleNumber": "FEED-1", "Name": "From a feed import"}
    key = stack.upload(catalog(5), name="shrunk.jsonl")
    execution, report = stack.run(key)
    assert execution.status == "FAILED" and execution.error == "SnapshotShrinkGuard"
    assert report["outcome"] == "guarded"
    assert report["reason"].startswith("5 of the 10 items that existed before this snapshot would be deleted")
    assert report["deleted"] == 0 and len(stack.sandbox.items) == 11
    [(resource, published)] = execution.service_calls()
    assert resource.endswith("sns:publish") and "guarded" in published["Message"]
    assert "SnapshotMaxDeletePercent" in published["Message"]

    guarded_report = report["reportKey"]
    execution, report = stack.run(key, allow_mass_delete=True)
    assert execution.status == "SUCCEEDED" and report["deleted"] == 5
    assert report["reportKey"] != guarded_report  # each execution its own report: the guarded one stays
    snapshot_reports = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"reports/{report['snapshot']}/")
    assert sorted(o["Key"] for o in snapshot_reports["Contents"]) == sorted(
        [guarded_report, report["reportKey"]]
    )
    assert report["deletedItems"] == {"count": 5, "ids": [f"SKU-{n}" for n in range(5, 10)]}
    # what this stack never wrote (a feed import, the Tweakwise app) is never deleted by it
    assert sorted(stack.sandbox.items) == ["FEED-1"] + [f"SKU-{n}" for n in range(5)]


def test_invalid_lines_refuse_the_snapshot_whole(stack):
    lines = [*catalog(3), item("SKU-X", price=-1), {"type": "item"}, "not an object"]
    execution, report = stack.apply(lines)
    assert execution.status == "FAILED" and execution.error == "SnapshotRefused"
    assert stack.sandbox.writes() == 0
    assert report["outcome"] == "refused" and report["invalid"] == 3
    assert "3 of 8 lines are invalid" in report["reason"] and "SnapshotMaxInvalidPercent" in report["reason"]
    assert report["invalidLines"][0] == {
        "line": 6,
        "errors": [{"path": "item.price", "error": "Value error, must be between 0 and 1000000000000"}],
    }
    assert report["invalidLines"][1]["errors"] == [{"path": "item", "error": "Field required"}]


def test_an_id_twice_refuses_the_snapshot(stack):
    execution, report = stack.apply([*catalog(3), item("SKU-1", price=5)])
    assert execution.error == "SnapshotRefused" and stack.sandbox.writes() == 0
    assert "item SKU-1 on lines 4, 6" in report["reason"]


def test_a_category_cycle_or_unknown_parent_is_an_invalid_line(aws, sandbox):
    stack = Stack(sandbox, {"SnapshotMaxInvalidPercent": "50"})
    lines = [category("a", ["b"]), category("b", ["a"]), category("c", ["nowhere"]), *catalog(2)]
    execution, report = stack.apply(lines)
    assert execution.status == "SUCCEEDED"
    assert {entry["line"]: entry["errors"][0]["error"] for entry in report["invalidLines"]} == {
        1: "its parents form a cycle, or a parent is invalid",
        2: "its parents form a cycle, or a parent is invalid",
        3: "parent 'nowhere' is not a category of this snapshot",
    }
    assert sorted(c["Key"] for c in sandbox.categories.values()) == ["shoes", "trail"]


def test_an_invalid_line_never_deletes_its_item(aws, sandbox):
    stack = Stack(sandbox, {"SnapshotMaxInvalidPercent": "50"})
    stack.apply(catalog(3))
    lines = catalog(3)
    lines[3] = item("SKU-1", price=-5, categories=["trail"])
    execution, report = stack.apply(lines)
    assert execution.status == "SUCCEEDED" and report["invalid"] == 1
    assert report["deleted"] == 0 and "SKU-1" in sandbox.items


def test_a_webhook_change_newer_than_the_snapshot_survives_it(stack):
    taken = datetime.now(UTC) - timedelta(minutes=10)
    header = {"type": "snapshot", "takenAt": taken.isoformat()}
    stack.apply([header, *catalog(2)])
    newer = {
        "id": "evt-1",
        "type": "item.upsert",
        "occurredAt": (taken + timedelta(minutes=5)).isoformat(),
        "item": {"id": "SKU-0", "name": "From the webhook", "price": 42, "stock": 3},
    }
    worker = stack.functions["CatalogWorkerFunction"]
    assert worker.invoke(sqs_event(queue_messages([newer])))[0] == {"batchItemFailures": []}
    older = [
        {"type": "snapshot", "takenAt": (taken + timedelta(minutes=1)).isoformat()},
        *catalog(2, price=7),
    ]
    execution, report = stack.apply(older, name="older.jsonl")
    assert execution.status == "SUCCEEDED"
    # SKU-0: the webhook set its name, price and stock later; its categories are the snapshot's to set,
    # and equal to what Tweakwise has: nothing is sent.
    assert report["items"]["unchanged"] == 1 and report["items"]["updated"] == 1
    assert stack.sandbox.items["SKU-0"]["Name"] == "From the webhook"
    assert stack.sandbox.items["SKU-1"]["Price"] == 7


def test_a_tweakwise_400_is_rejected_with_its_reason_and_the_rest_applies(stack, monkeypatch):
    answer = stack.sandbox._answer

    def refuse(method, path, headers, body):
        if path.endswith("/item/SKU-1") or (body or {}).get("ArticleNumber") == "SKU-1":
            return 400, {"Message": "The request is invalid.", "Errors": [{"Error": "Name is too long"}]}
        return answer(method, path, headers, body)

    monkeypatch.setattr(stack.sandbox, "_answer", refuse)
    execution, report = stack.apply(catalog(3))
    assert execution.status == "SUCCEEDED"
    assert report["items"]["created"] == 2 and report["items"]["rejected"] == 1
    [rejected] = report["rejected"]
    assert rejected["entity"] == "item#SKU-1" and "Name is too long" in rejected["reason"]


def test_a_second_snapshot_while_one_runs_is_refused(stack):
    from tweakwise.state import SyncState

    table = stack.resolver.resources["SyncStateTable"]["Ref"]
    state = SyncState(boto3.client("dynamodb", region_name=REGION), table)
    assert state.lock_snapshot("arn:execution:other", 3600) == ""
    execution, report = stack.apply(catalog(2))
    assert execution.error == "SnapshotRefused"
    assert "another snapshot is running (execution arn:execution:other)" in report["reason"]
    assert stack.sandbox.writes() == 0
    assert state.lock_snapshot("arn:execution:other", 3600) == ""  # still its lock
    assert state.unlock_snapshot("arn:execution:other")
    execution, _ = stack.apply(catalog(2))
    assert execution.status == "SUCCEEDED"


def test_a_plain_and_a_gzip_snapshot_of_the_same_catalog_agree(stack):
    plain, _ = stack.apply(catalog(3), name="plain.jsonl")
    zipped, report = stack.apply(catalog(3), name="zipped.jsonl.gz", gz=True)
    assert plain.status == zipped.status == "SUCCEEDED"
    assert report["items"]["unchanged"] == 3


def test_a_failing_batch_is_raised_for_the_map_to_retry_and_the_retry_sends_the_rest(stack):
    from tweakwise_local.sandbox import Faults

    snapshot = stack.functions["CatalogSnapshotFunction"]
    batch = {
        "Items": [item(f"SKU-{n}") for n in range(6)],
        "BatchInput": {
            "action": "apply",
            "snapshot": "s",
            "run": "s/r",
            "takenAt": "2026-11-28T03:00:00+00:00",
        },
    }
    stack.sandbox.faults = Faults.parse("5xx=0.5,seed=4")
    with pytest.raises(Exception, match=r"of 6 items failed, first: item#SKU-\d: ServerError") as failed:
        snapshot.invoke(batch)
    assert type(failed.value).__name__ == "SnapshotBatchError"
    applied = set(stack.sandbox.items)
    assert 0 < len(applied) < 6  # some went through before the batch was reported failed
    stack.sandbox.faults = Faults()
    before = len(stack.sandbox.requests)
    counts, _ = snapshot.invoke(batch)
    assert counts["unchanged"] == len(applied)  # the ledger knows what the failed try applied
    assert counts["created"] == 6 - len(applied) and sum(counts.values()) == 6
    sent = [(path, body or {}) for _m, path, body in stack.sandbox.requests[before:] if "/item" in path]
    resent = {body.get("ArticleNumber") or path.rsplit("/", 1)[1] for path, body in sent}
    assert resent == {f"SKU-{n}" for n in range(6)} - applied


def test_a_batch_of_an_execution_started_before_the_deploy_still_applies(stack):
    # Its state machine (the old definition) hands the Map the items alone, not the snapshot's lines.
    counts, _ = stack.functions["CatalogSnapshotFunction"].invoke(
        {
            "Items": [item("OLD-1")["item"], item("OLD-2")],
            "BatchInput": {
                "action": "apply",
                "snapshot": "s",
                "run": "s/r",
                "takenAt": "2026-11-28T03:00:00+00:00",
            },
        }
    )
    assert counts == {"created": 2} and {"OLD-1", "OLD-2"} <= set(stack.sandbox.items)


def test_a_url_encoded_key_in_the_event_finds_its_object(stack):
    key = stack.upload(catalog(1), name="shop export 2026.jsonl")
    assert key == "snapshots/shop export 2026.jsonl"
    execution, _ = stack.run(key, event_key="snapshots/shop+export+2026.jsonl")  # as S3 events encode it
    assert execution.status == "SUCCEEDED" and "SKU-0" in stack.sandbox.items


def test_fewer_items_than_min_product_count_delete_nothing(aws, sandbox):
    stack = Stack(sandbox, {"MinProductCount": "5", "SnapshotMaxDeletePercent": "100"})
    stack.apply(catalog(6))
    execution, report = stack.apply(catalog(4))
    assert execution.error == "SnapshotShrinkGuard" and report["deleted"] == 0
    assert (
        report["reason"] == "the snapshot holds 4 items, fewer than MinProductCount (5): nothing was deleted"
    )
    assert len(sandbox.items) == 6
    execution, report = stack.apply(catalog(5))  # enough items: the orphan goes
    assert execution.status == "SUCCEEDED" and report["deleted"] == 1 and len(sandbox.items) == 5


def test_a_delete_tweakwise_refuses_is_reported_and_tried_again_next_time(stack, monkeypatch):
    stack.apply(catalog(20))
    answer = stack.sandbox._answer

    def refuse(method, path, headers, body):
        if method == "DELETE" and path.endswith("/item/SKU-19"):
            return 400, {"Message": "The item is locked.", "Errors": []}
        return answer(method, path, headers, body)

    monkeypatch.setattr(stack.sandbox, "_answer", refuse)
    execution, report = stack.apply(catalog(19), name="smaller.jsonl")
    assert execution.status == "SUCCEEDED" and report["deleted"] == 0 and report["deletesRejected"] == 1
    [rejected] = report["rejected"]
    assert rejected["entity"] == "item#SKU-19" and "The item is locked." in rejected["reason"]
    assert "item#SKU-19" in stack.ledger()  # still believed in Tweakwise: the next snapshot tries again
    monkeypatch.setattr(stack.sandbox, "_answer", answer)
    execution, report = stack.apply(catalog(19), name="smaller-again.jsonl")
    assert report["deleted"] == 1 and "SKU-19" not in stack.sandbox.items


S3_NOTIFICATION = {  # an S3 event notification, as AWS documents it (shortened)
    "Records": [
        {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "eu-west-1",
            "eventName": "ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "bucket": {"name": "shop-snapshots", "arn": "arn:aws:s3:::shop-snapshots"},
                "object": {"key": "snapshots/catalog.jsonl.gz", "size": 1024, "eTag": "0123456789abcdef"},
            },
        }
    ]
}


@pytest.mark.parametrize("kind", ["S3 notification", "EventBridge Object Created"])
def test_an_s3_event_sent_to_the_function_says_it_is_a_step_and_how_to_start_one(stack, kind):
    event = S3_NOTIFICATION if kind == "S3 notification" else s3_event(stack.bucket, "snapshots/c.jsonl")
    with pytest.raises(Exception, match="runs the steps of the snapshot state machine") as refused:
        stack.functions["CatalogSnapshotFunction"].invoke(event)
    message = str(refused.value)
    assert type(refused.value).__name__ == "SnapshotInputError"
    assert "got an S3 event" in message and f"upload it under s3://{stack.bucket}/snapshots/" in message
    assert "aws stepfunctions start-execution --state-machine-arn <SnapshotStateMachineArn output>" in message
    with pytest.raises(Exception, match=r"Unknown snapshot step 'apply-all' \(one of validate, "):
        stack.functions["CatalogSnapshotFunction"].invoke({"action": "apply-all"})


# -- an invalid line never deletes what it describes -------------------------------------------------------

GOOD = {"type": "item", "item": {"id": "SKU-1", "name": "Trail runner", "price": 10, "stock": 1}}
GOOD_LINE = json.dumps(GOOD).encode()
BROKEN = {
    # kind: (the item's id in the earlier snapshot, the line that replaces it now)
    "a Latin-1 byte in the name": ("SKU-1", GOOD_LINE.replace(b"Trail", b"Tr\xe9il")),
    "a line cut short": ("SKU-1", GOOD_LINE[:60]),
    "a NUL": ("SKU-1", GOOD_LINE.replace(b"Trail", b"Tr\x00il")),
    "an integer of 4,301 digits": ("SKU-1", GOOD_LINE.replace(b'"price": 10', b'"price": ' + b"9" * 4301)),
    'type "Item"': ("SKU-1", GOOD_LINE.replace(b'"type": "item"', b'"type": "Item"')),
    "a numeric id": ("5", GOOD_LINE.replace(b'"SKU-1"', b"5")),
}


@pytest.mark.parametrize("kind", BROKEN)
def test_an_invalid_line_never_deletes_the_item_it_names(aws, sandbox, kind):
    ref, broken = BROKEN[kind]
    stack = Stack(sandbox, {"SnapshotMaxInvalidPercent": "50"})
    stack.apply([item(ref), item("SKU-2"), item("SKU-3")])
    execution, report = stack.apply([broken, item("SKU-2"), item("SKU-3")], name="broken.jsonl")
    assert execution.status == "SUCCEEDED", (execution.error, report)
    assert report["invalid"] == 1 and report["deleted"] == 0
    assert ref in sandbox.items and f"item#{ref}" in stack.ledger()


def test_a_line_that_names_no_readable_id_deletes_nothing_and_says_so(aws, sandbox):
    stack = Stack(sandbox, {"SnapshotMaxInvalidPercent": "50"})
    stack.apply([item("SKU-1"), item("SKU-2"), item("SKU-3"), item("GONE")])
    cut = GOOD_LINE.replace(b'"id": "SKU-1", ', b"")[:40]  # cut before any id
    execution, report = stack.apply([cut, item("SKU-2"), item("SKU-3")], name="cut.jsonl")
    assert execution.error == "SnapshotShrinkGuard" and report["outcome"] == "guarded"
    assert report["reason"] == (
        "1 invalid lines name no id that can be read (line 1), so the snapshot cannot tell what it lacks: "
        "nothing was deleted"
    )
    assert report["deleted"] == 0 and {"SKU-1", "GONE"} <= set(sandbox.items)


# -- completeness is a set, not a sum ----------------------------------------------------------------------


class Steps:
    """The snapshot function driven step by step, as the state machine drives it (for what moto's Map
    cannot do: tolerate a failed batch, or run one twice)."""

    EXECUTION: ClassVar[str] = "arn:aws:states:eu-west-1:123456789012:execution:SnapshotStateMachine:by-hand"

    def __init__(self, stack: Stack, key: str):
        self.stack, self.function = stack, stack.functions["CatalogSnapshotFunction"]
        self.started = datetime.now(UTC).isoformat()
        found = self.call(
            {"action": "validate", "input": s3_event(stack.bucket, key), "execution": self.EXECUTION}
        )
        self.found = found
        self.step = {name: found[name] for name in ("snapshot", "run", "takenAt")}
        body = stack.s3.get_object(Bucket=stack.bucket, Key=found["itemsKey"])["Body"].read()
        self.items = json.loads(body)

    def call(self, payload: dict):
        return self.function.invoke(payload)[0]

    def batch(self, items: list[dict], action: str = "apply"):
        return self.call({"Items": items, "BatchInput": {"action": action, **self.step}})

    def orphans(self, allow_mass_delete: bool = False):
        payload = {"action": "orphans", **self.step, "started": self.started}
        return self.call({**payload, "items": self.found["items"], "allowMassDelete": allow_mass_delete})

    def finish(self, outcome: str, reason: str):
        payload = {"action": "finish", **self.step, "busy": False, "execution": self.EXECUTION}
        return self.call({**payload, "started": self.started, "outcome": outcome, "reason": reason})


def test_a_batch_run_twice_does_not_hide_a_batch_that_failed(stack, monkeypatch):
    stack.apply(catalog(6))
    key = stack.upload(catalog(6, price=20), name="dearer.jsonl")  # every item changed: every batch sends
    answer = stack.sandbox._answer

    def refuse(method, path, headers, body):
        if path.endswith("/item/SKU-4"):
            return 503, {"Message": "Service unavailable"}
        return answer(method, path, headers, body)

    steps = Steps(stack, key)
    steps.call({"action": "categories", **steps.step})
    first, second = steps.items[:3], steps.items[3:]
    steps.batch(first)
    steps.batch(first)  # its answer was lost: the Map ran it again
    monkeypatch.setattr(stack.sandbox, "_answer", refuse)
    with pytest.raises(Exception, match="1 of 3 items failed"):
        steps.batch(second)  # kept failing; within SnapshotToleratedFailurePercent, the Map went on
    before = len(stack.sandbox.requests)
    plan = steps.orphans()
    assert plan["incomplete"] is True
    assert plan["guard"].startswith("3 of 6 items were not applied (failed batches)")  # its batch: 3
    report = steps.finish("failed", plan["guard"])
    assert report["outcome"] == "failed" and report["deleted"] == 0
    assert [m for m, _p, _b in stack.sandbox.requests[before:] if m == "DELETE"] == []
    assert sorted(stack.sandbox.items) == [f"SKU-{n}" for n in range(6)]
    assert report["items"]["updated"] == 3  # a batch counts once, however often it ran; a failed one not


def test_an_item_of_the_snapshot_is_never_an_orphan_whichever_batches_ran(stack):
    stack.apply(catalog(6))
    steps = Steps(stack, stack.upload(catalog(6), name="again.jsonl"))
    steps.call({"action": "categories", **steps.step})
    steps.batch(steps.items)
    plan = steps.orphans(allow_mass_delete=True)
    assert plan["orphans"] == 0 and plan["incomplete"] is False


# -- the shrink guard's base: per kind, what existed before ------------------------------------------------


def test_the_guard_counts_only_what_existed_before_the_snapshot(stack):
    stack.apply(catalog(4))  # 2 categories and 4 items exist
    execution, report = stack.apply([item(f"NEW-{n}") for n in range(120)], name="new.jsonl")
    assert execution.error == "SnapshotShrinkGuard" and report["deleted"] == 0
    assert report["reason"] == (
        "4 of the 4 items that existed before this snapshot would be deleted, above "
        "SnapshotMaxDeletePercent (5 %): nothing was deleted"
    )
    assert {f"SKU-{n}" for n in range(4)} <= set(stack.sandbox.items) and len(stack.sandbox.items) == 124


def test_the_guard_takes_items_and_categories_apart(stack):
    categories = [category(f"c{n}") for n in range(190)]
    stack.apply([*categories, *(item(f"SKU-{n}") for n in range(10))])
    execution, report = stack.apply([*categories, item("SKU-0")], name="one-item.jsonl")
    assert execution.error == "SnapshotShrinkGuard"
    assert report["reason"].startswith("9 of the 10 items that existed before this snapshot would be deleted")
    assert len(stack.sandbox.items) == 10


# -- a snapshot is never newer than its upload ------------------------------------------------------------


def test_a_header_later_than_the_upload_does_not_make_later_webhook_changes_stale(stack):
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=250)
    execution, report = stack.apply([{"type": "snapshot", "takenAt": ahead.isoformat()}, *catalog(2)])
    assert execution.status == "SUCCEEDED"
    assert report["takenAtGiven"] == ahead.isoformat()
    assert datetime.fromisoformat(report["takenAt"]) <= datetime.now(UTC)  # the upload's time
    later = {
        "id": "evt-after-the-upload",
        "type": "item.upsert",
        "occurredAt": (datetime.now(UTC) + timedelta(seconds=5)).isoformat(),
        "item": {"id": "SKU-0", "name": "From the webhook", "price": 42, "stock": 3},
    }
    worker = stack.functions["CatalogWorkerFunction"]
    assert worker.invoke(sqs_event(queue_messages([later])))[0] == {"batchItemFailures": []}
    assert stack.sandbox.items["SKU-0"]["Price"] == 42


# -- every refused snapshot has a report --------------------------------------------------------------------


def test_a_line_nested_100000_levels_is_refused_with_a_report_and_the_lock_released(stack):
    execution, report = stack.apply([*catalog(3), b"[" * 100_000])
    assert execution.error == "SnapshotRefused" and report["outcome"] == "refused"
    assert report["reason"].startswith("1 of 6 lines are invalid")
    assert report["invalidLines"] == [
        {"line": 6, "errors": [{"path": "(line)", "error": "not valid JSON: nested too deeply"}]}
    ]
    assert stack.apply(catalog(3), name="next.jsonl")[0].status == "SUCCEEDED"  # the lock was released


def test_a_gzip_cut_in_half_is_refused_with_a_report_and_the_lock_released(stack):
    body = gzip.compress(b"".join(json.dumps(line).encode() + b"\n" for line in catalog(3000)))
    key = "snapshots/cut.jsonl.gz"
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=body[: len(body) // 2])
    execution, report = stack.run(key)
    assert execution.error == "SnapshotRefused" and stack.sandbox.writes() == 0
    assert report["reason"].startswith("the gzip stream ends before its end after line ")
    assert report["invalidLines"][-1]["errors"] == [
        {"path": "(file)", "error": "the gzip stream ends before its end"}
    ]
    assert stack.apply(catalog(3), name="next.jsonl")[0].status == "SUCCEEDED"


def test_a_validation_that_fails_still_writes_a_report_and_releases_the_lock(stack):
    key = stack.upload(catalog(2), name="vanished.jsonl")
    stack.s3.delete_object(Bucket=stack.bucket, Key=key)  # gone before the execution reads it
    execution, report = stack.run(key)
    assert execution.error == "SnapshotFailed"
    assert report is not None and report["outcome"] == "failed" and "404" in report["reason"]
    assert report["reportKey"].startswith("reports/vanished-/")
    assert stack.apply(catalog(2), name="next.jsonl")[0].status == "SUCCEEDED"


# -- an older snapshot beside newer webhook changes, under 429s -------------------------------------------


def test_an_older_snapshot_beside_newer_webhook_changes_under_429s_leaves_the_newer_values(aws, sandbox):
    """The issue's own run: an older snapshot of 40 items applied while newer webhook upserts of the same
    items arrive, Tweakwise answering 40 % of requests 429 (Retry-After: 1) and the clients retrying. Each
    newer upsert is sent the moment the snapshot's request for its item is throttled, so it comes in
    while that request waits for its retry."""
    import queue

    from tweakwise.ledger import body_digest
    from tweakwise_local.sandbox import Faults

    stack = Stack(sandbox, {}, retries=3)
    count = 40
    first = datetime.now(UTC) - timedelta(seconds=120)
    stack.apply([{"type": "snapshot", "takenAt": first.isoformat()}, *catalog(count)])
    taken = datetime.now(UTC) - timedelta(seconds=60)
    key = stack.upload(
        [{"type": "snapshot", "takenAt": taken.isoformat()}, *catalog(count, price=7)], name="older.jsonl"
    )
    newer = {
        f"/item/SKU-{n}": {
            "id": f"evt-{n}",
            "type": "item.upsert",
            "occurredAt": datetime.now(UTC).isoformat(),
            "item": {
                "id": f"SKU-{n}",
                "name": f"Item SKU-{n}",
                "price": 42,
                "stock": 1,
                "categories": ["trail"],
            },
        }
        for n in range(count)
    }
    arriving: queue.Queue = queue.Queue()
    answer = sandbox.answer

    def throttled(method, path, headers, body):
        status, payload, extra = answer(method, path, headers, body)
        if status == 429 and method == "PATCH" and (body or {}).get("Price") == 7 and path in newer:
            arriving.put(newer.pop(path))  # the shop changes the item while the snapshot's PATCH waits
        return status, payload, extra

    worker = stack.functions["CatalogWorkerFunction"]

    def webhooks() -> None:
        while (event := arriving.get()) is not None:
            waiting = queue_messages([event], prefix=f"{event['id']}-")
            while waiting:  # what failed, SQS hands over again
                failures, _ = worker.invoke(sqs_event(waiting))
                failed = {f["itemIdentifier"] for f in failures["batchItemFailures"]}
                waiting = [m for m in waiting if m["MessageId"] in failed]

    thread = threading.Thread(target=webhooks)
    thread.start()
    sandbox.faults = Faults.parse("429=0.4,retry-after=1,seed=11")
    sandbox.answer = throttled
    try:
        execution, _ = stack.run(key)
    finally:
        arriving.put(None)
        thread.join(300)
        sandbox.faults, sandbox.answer = Faults(), answer
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    raced = count - len(newer)
    assert raced >= 5  # newer upserts came in while the snapshot's PATCH of their item waited
    changed = [n for n in range(count) if f"/item/SKU-{n}" not in newer]
    wrong = [n for n in changed if sandbox.items[f"SKU-{n}"]["Price"] != 42]
    assert wrong == [], f"{len(wrong)} of {raced} items hold the older snapshot's price"
    trail = next(c["CategoryId"] for c in sandbox.categories.values() if c.get("Key") == "trail")
    ledger = stack.ledger()
    for n in changed:
        body = {"Name": f"Item SKU-{n}", "Price": 42, "Stock": 1, "Categories": [trail]}
        for name, value in body.items():
            assert ledger[f"item#SKU-{n}"][f"field:{name}"]["S"] == body_digest({name: value}), (n, name)


# -- patch snapshots: item.patch lines, nothing deleted ------------------------------------------------


def patch_snapshot(stocks: dict[str, float], minutes_ago: int = 0) -> list[dict]:
    taken = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()
    header = {"type": "snapshot", "takenAt": taken, "scope": "patch"}
    return [header, *({"type": "item.patch", "item": {"id": ref, "stock": n}} for ref, n in stocks.items())]


def test_a_patch_snapshot_sets_its_fields_once_and_never_deletes(stack):
    stack.apply(catalog(4))
    writes = stack.sandbox.writes()
    # One item's stock, another's the same as it is; two items left out (never deleted).
    lines = patch_snapshot({"SKU-0": 9, "SKU-1": 1.0})
    execution, report = stack.apply(lines, name="stock.jsonl")
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert stack.sandbox.writes() - writes == 1  # SKU-0's stock: one PATCH
    assert report["items"] == {
        "created": 0, "updated": 1, "unchanged": 1, "rejected": 0, "stale": 0, "missing": 0,
    }  # fmt: skip
    assert report["deleted"] == 0 and sorted(stack.sandbox.items) == [f"SKU-{n}" for n in range(4)]
    assert stack.sandbox.items["SKU-0"]["Stock"] == 9 and stack.sandbox.items["SKU-0"]["Name"] == "Item SKU-0"
    writes = stack.sandbox.writes()
    execution, report = stack.apply(lines, name="stock-again.jsonl")
    assert execution.status == "SUCCEEDED" and stack.sandbox.writes() == writes  # re-applied: 0 writes
    assert report["items"]["unchanged"] == 2
    # An item Tweakwise lacks: its patch cannot create it; counted, not failed.
    execution, report = stack.apply(patch_snapshot({"SKU-404": 3}), name="missing.jsonl")
    assert execution.status == "SUCCEEDED" and report["items"]["missing"] == 1
    assert "SKU-404" not in stack.sandbox.items


def test_a_patch_snapshot_holds_item_patch_lines_only_and_a_full_one_none(stack):
    full_with_patch = [*catalog(1), {"type": "item.patch", "item": {"id": "SKU-0", "stock": 2}}]
    _execution, report = stack.apply(full_with_patch, name="mixed.jsonl")
    assert report["invalid"] == 1
    patch_with_item = [*patch_snapshot({"SKU-0": 2}), item("SKU-9")]
    _execution, report = stack.apply(patch_with_item, name="mixed-patch.jsonl")
    assert report["invalid"] == 1


# -- dry runs --------------------------------------------------------------------------------------------


def _writes(sandbox) -> list[tuple[str, str]]:
    return [(method, path) for method, path, _body in sandbox.requests if method != "GET"]


def test_a_dry_run_plans_creates_updates_and_deletes_and_sends_tweakwise_no_write(stack):
    stack.apply(catalog(4))
    before, items = _writes(stack.sandbox), dict(stack.sandbox.items)
    lines = [category("shoes"), category("trail", ["shoes"]), category("new-one")]
    lines += [item("SKU-0", categories=["trail"]), item("SKU-1", price=99, categories=["trail"])]
    lines += [item("SKU-NEW", categories=["new-one"])]  # SKU-2 and SKU-3 are gone from this one
    key = stack.upload(lines, name="plan.jsonl", prefix="dry-runs/")
    execution, report = stack.run(key, allow_mass_delete=True, dry_run=True)
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert "Categories" not in execution.states and "Items" not in execution.states
    assert "DeleteOrphans" not in execution.states and execution.states[-2:] == ["Outcome?", "Done"]
    assert _writes(stack.sandbox) == before and stack.sandbox.items == items  # 0 writes
    assert report["outcome"] == "planned" and report["dryRun"] is True and report["guard"] is None
    assert report["wouldCreate"] == {"count": 1, "ids": ["SKU-NEW"]}
    assert report["wouldUpdate"] == {"count": 1, "ids": ["SKU-1"]}
    assert report["unchanged"] == 1
    assert report["wouldDelete"] == {"count": 2, "ids": ["SKU-2", "SKU-3"]}
    assert stack.metrics()["SnapshotsPlanned"] == 1


def test_a_dry_run_says_the_shrink_guard_would_stop_the_deletes(stack):
    stack.apply(catalog(10))
    key = stack.upload(catalog(5), name="shrunk.jsonl", prefix="dry-runs/")
    before = _writes(stack.sandbox)
    execution, report = stack.run(key, dry_run=True)
    assert execution.status == "SUCCEEDED" and report["outcome"] == "planned"
    assert report["guard"].startswith("5 of the 10 items that existed before this snapshot would be deleted")
    assert report["wouldDelete"]["count"] == 5 and _writes(stack.sandbox) == before
    assert execution.service_calls() == []  # a plan notifies nobody


def test_a_dry_run_takes_no_lock_and_a_dry_runs_object_is_no_snapshot_to_apply(stack):
    key = stack.upload(catalog(2), name="plan.jsonl", prefix="dry-runs/")
    table = stack.resolver.resources["SyncStateTable"]["Ref"]
    SyncState(boto3.client("dynamodb", region_name=REGION), table).lock_snapshot("arn:other-run", 3600)
    execution, report = stack.run(key, dry_run=True)  # a real run holds the lock: a plan still runs
    assert execution.status == "SUCCEEDED" and report["wouldCreate"]["count"] == 2
    before = _writes(stack.sandbox)
    execution, _report = stack.run(key)  # without dryRun, dry-runs/ is not a snapshot
    assert execution.status == "FAILED" and execution.states[:2] == ["Validate", "ValidationFailed"]
    assert _writes(stack.sandbox) == before


def test_tweakwise_ops_plans_a_snapshot_on_a_deployed_stack(stack, tmp_path, monkeypatch):
    from tweakwise_ops import plan
    from tweakwise_ops.stack import Stack as Deployed

    stack.apply(catalog(3))
    before = _writes(stack.sandbox)
    path = tmp_path / "next.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in catalog(2, price=12)), encoding="utf-8")
    outputs = {
        "SnapshotBucketName": stack.bucket,
        "SnapshotStateMachineArn": stack.machines.arns[SNAPSHOT_MACHINE],
    }
    monkeypatch.setattr(plan, "POLL_SECONDS", 0.1)
    report = plan.plan(Deployed("tweakwise-nl", outputs, REGION), path, port=0)
    assert report["outcome"] == "planned" and report["wouldUpdate"]["ids"] == ["SKU-0", "SKU-1"]
    assert (
        report["wouldDelete"] == {"count": 1, "ids": ["SKU-2"]}
        and "SnapshotMaxDeletePercent" in report["guard"]
    )
    assert _writes(stack.sandbox) == before
    assert stack.s3.head_object(
        Bucket=stack.bucket, Key="dry-runs/next.jsonl"
    )  # beside snapshots/, never in it
    shown = plan.show(report)
    assert "would update 2: SKU-0, SKU-1" in shown and "shrink guard  would stop the deletes" in shown
