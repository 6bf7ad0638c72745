"""tweakwise-ops over moto and the Tweakwise sandbox: trace an item that was applied, dead-lettered, or
changed in Tweakwise behind this stack's back; redrive exactly the dead letters chosen; find a deployed
stack's resources through its CloudFormation outputs."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from conftest import REGION, SECRET_ID, LambdaContext, drain, load_handler, queue_messages, sqs_event
from tweakwise.state import SyncState
from tweakwise_ops import cli, redrive, status, trace
from tweakwise_ops.stack import Stack

NOW = "2026-12-04T10:00:00Z"


@pytest.fixture
def stack(catalog_aws, sandbox, monkeypatch):
    for name, value in {
        "TWEAKWISE_SECRET_ID": SECRET_ID, "TWEAKWISE_API_URL": sandbox.url, "TWEAKWISE_MAX_RETRIES": "0",
        "SYNC_STATE_TABLE": catalog_aws["table"], "LEDGER_TABLE": catalog_aws["ledger"],
        "DEAD_LETTER_QUEUE_URL": catalog_aws["dlq"],
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket="snapshots", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    outputs = {
        "SnapshotBucketName": "snapshots",
        "MetricsNamespace": "TweakwiseTest",
        "InstanceName": "nl",
        "TweakwiseSecretId": SECRET_ID,
        "CatalogQueueUrl": catalog_aws["queue"],
        "CatalogDeadLetterQueueUrl": catalog_aws["dlq"],
        "SyncStateTableName": catalog_aws["table"],
        "LedgerTableName": catalog_aws["ledger"],
    }
    return Stack("test", outputs, REGION, tweakwise_url=sandbox.url)


def _upsert(event_id, item_id, **item):
    body = {"id": item_id, "name": f"Shoe {item_id}", "price": 10.0, "stock": 0, **item}
    return {"id": event_id, "type": "item.upsert", "occurredAt": NOW, "item": body}


def _apply(*events):
    worker = load_handler("catalog_worker")
    return worker.lambda_handler(sqs_event(queue_messages(list(events))), LambdaContext())


def _send(catalog_aws, queue: str, event: dict) -> None:
    """The event on a catalog queue, with the group and deduplication ids the webhook gives it."""
    [message] = queue_messages([event])
    catalog_aws["sqs"].send_message(
        QueueUrl=catalog_aws[queue], MessageBody=message["Body"],
        MessageGroupId=message["Attributes"]["MessageGroupId"],
        MessageDeduplicationId=message["Attributes"]["MessageDeduplicationId"],
    )  # fmt: skip


def _dead_letter_by_sqs(catalog_aws, event, reason=None):
    """What SQS does after the last delivery: the message, as queued, moved bare to the dead-letter queue;
    the worker recorded why its attempts failed."""
    _send(catalog_aws, "dlq", event)
    if reason:
        SyncState(boto3.client("dynamodb", region_name=REGION), catalog_aws["table"]).record_failure(
            event["id"], reason
        )


def test_trace_of_an_applied_item_shows_what_was_sent_and_no_difference(stack, sandbox):
    _apply(_upsert("e1", "A", stock=4))
    found = trace.trace(stack, "A")
    assert set(found) >= {"id", "ledger", "tweakwise", "differences", "pending", "deadLetters"}
    assert {"Name", "Price", "Stock"} <= set(found["ledger"]["fields"])
    assert found["ledger"]["clocks"]["Stock"] == "2026-12-04T10:00:00+00:00"
    assert found["tweakwise"]["found"] is True and found["differences"] == []
    assert found["deadLetters"] == [] and found["pending"]["beingApplied"] is None
    assert "tweakwise   holds it" in trace.show(found)


def test_trace_shows_what_tweakwise_changed_behind_the_stacks_back(stack, sandbox):
    _apply(_upsert("e1", "A"))
    sandbox.items["A"]["Name"] = "Renamed in the Tweakwise app"
    [difference] = trace.trace(stack, "A")["differences"]
    assert difference == {
        "field": "Name",
        "why": "changed in Tweakwise",
        "tweakwise": "Renamed in the Tweakwise app",
    }
    del sandbox.items["A"]
    assert (
        trace.trace(stack, "A")["differences"][0]["why"] == "this stack wrote it; Tweakwise does not have it"
    )


def test_trace_of_a_dead_lettered_item_shows_each_reason_and_leaves_the_queue_as_it_was(stack, catalog_aws):
    _dead_letter_by_sqs(catalog_aws, _upsert("e9", "B"), "ServerError: Tweakwise PATCH /item/B answered 503")
    _dead_letter_by_sqs(catalog_aws, _upsert("e5", "C"))
    found = trace.trace(stack, "B")
    assert found["ledger"] is None and found["tweakwise"] == {"found": False}
    [letter] = found["deadLetters"]
    assert (letter["eventId"], letter["type"], letter["failedAttempts"]) == ("e9", "item.upsert", 1)
    assert letter["reason"] == "ServerError: Tweakwise PATCH /item/B answered 503"
    assert "after 1 deliveries: ServerError" in trace.show(found)
    assert len(drain(catalog_aws["sqs"], catalog_aws["dlq"])) == 2  # read, then released: nothing lost


def test_a_letter_the_worker_parked_itself_carries_its_reason(stack, catalog_aws, tweakwise, monkeypatch):
    monkeypatch.setenv("TWEAKWISE_API_URL", tweakwise.url_for("/"))
    for path, method in (("/item/A", "PATCH"), ("/item", "POST")):  # a 400 on PATCH may mean "not there"
        tweakwise.expect_request(path, method=method).respond_with_json({"message": "Price: bad"}, status=400)
    _apply(_upsert("e1", "A"))
    [letter] = trace.trace(stack, "A")["deadLetters"]
    assert "400" in letter["reason"] and letter["failedAttempts"] == 0


def test_redrive_by_id_moves_exactly_the_matching_letters_with_a_new_deduplication_id(stack, catalog_aws):
    for event in (_upsert("a1", "A"), _upsert("b1", "B"), _upsert("cat", "C")):
        _dead_letter_by_sqs(catalog_aws, event, "ServerError: answered 503")
    original = {m["Body"]: m for m in _peek(catalog_aws)}
    dry = redrive.redrive(stack, redrive.Match(ids=["A", "C"]), dry_run=True)
    assert (dry["matched"], dry["moved"], dry["stayed"]) == (2, 0, 3)
    assert drain(catalog_aws["sqs"], catalog_aws["queue"]) == []
    done = redrive.redrive(stack, redrive.Match(ids=["A", "C"]))
    assert (done["matched"], done["moved"], done["stayed"]) == (2, 2, 1)
    moved = drain(catalog_aws["sqs"], catalog_aws["queue"])
    assert sorted(json.loads(m["Body"])["id"] for m in moved) == ["a1", "cat"]
    for message in moved:
        before = original[message["Body"]]["Attributes"]
        assert message["Attributes"]["MessageGroupId"] == before["MessageGroupId"]
        assert message["Attributes"]["MessageDeduplicationId"] != before["MessageDeduplicationId"]
    assert [json.loads(m["Body"])["id"] for m in drain(catalog_aws["sqs"], catalog_aws["dlq"])] == ["b1"]


def test_redrive_by_type_and_reason(stack, catalog_aws):
    _dead_letter_by_sqs(catalog_aws, _upsert("a1", "A"), "UnknownCategoryError: no category with key shoes")
    _dead_letter_by_sqs(catalog_aws, _upsert("b1", "B"), "ServerError: answered 503")
    delete = {"id": "d1", "type": "item.delete", "occurredAt": NOW, "itemId": "D"}
    _dead_letter_by_sqs(catalog_aws, delete, "ServerError: answered 503")
    assert redrive.redrive(stack, redrive.Match(reason="CATEGORY WITH KEY"))["moved"] == 1
    assert redrive.redrive(stack, redrive.Match(event_type="item.delete"))["moved"] == 1
    assert [json.loads(m["Body"])["id"] for m in drain(catalog_aws["sqs"], catalog_aws["queue"])] == [
        "a1",
        "d1",
    ]


def test_letters_of_one_entity_come_into_sight_as_the_earlier_ones_move(stack, catalog_aws):
    for event in (_upsert("a1", "A"), _upsert("a2", "A", stock=1), _upsert("a3", "A", stock=2)):
        _dead_letter_by_sqs(catalog_aws, event)
    assert redrive.redrive(stack, redrive.Match(ids=["A"]))["moved"] == 3
    assert [json.loads(m["Body"])["id"] for m in drain(catalog_aws["sqs"], catalog_aws["queue"])] == [
        "a1", "a2", "a3"
    ]  # fmt: skip


def _peek(catalog_aws):
    messages = catalog_aws["sqs"].receive_message(
        QueueUrl=catalog_aws["dlq"], MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=0
    )["Messages"]
    return messages


def test_the_cli_finds_a_deployed_stack_through_its_cloudformation_outputs(stack, catalog_aws, capsys):
    outputs = {key: {"Value": value} for key, value in stack.outputs.items()}
    template = {"Resources": {"Marker": {"Type": "AWS::SQS::Queue"}}, "Outputs": outputs}
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="tweakwise-nl", TemplateBody=json.dumps(template)
    )
    _dead_letter_by_sqs(catalog_aws, _upsert("e9", "B"), "ServerError: answered 503")
    assert cli.main(["--stack", "tweakwise-nl", "--region", REGION, "--json", "redrive", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["matched"] == 1
    assert cli.main(["--stack", "no-such-stack", "--region", REGION, "trace", "B"]) == 2
    assert "cannot read stack no-such-stack" in capsys.readouterr().err


class _CloudWatch:
    """CloudWatch's answer for the last hour (moto computes no percentiles)."""

    def __init__(self):
        self.asked = []

    def get_metric_statistics(self, **request):
        self.asked.append(request)
        if request["MetricName"] == "SyncLagSeconds":
            return {"Datapoints": [{"Timestamp": 1, "ExtendedStatistics": {"p50": 2.5, "p99": 41.0}}]}
        return {"Datapoints": [{"Timestamp": 1, "Maximum": 30.0}]}


def test_status_says_what_waits_the_last_snapshot_and_publish_and_the_lag(stack, catalog_aws):
    from tweakwise.state import SyncState

    _dead_letter_by_sqs(catalog_aws, _upsert("e9", "B"), "ServerError: answered 503")
    s3 = boto3.client("s3", region_name=REGION)
    for name, outcome in (("old", "applied"), ("new", "guarded")):
        report = {"snapshot": name, "outcome": outcome, "reason": "", "items": {"created": 2}, "deleted": 0}
        s3.put_object(Bucket="snapshots", Key=f"reports/{name}/run.json", Body=json.dumps(report))
        time.sleep(1.1)  # S3 orders by LastModified, to the second
    state = SyncState(boto3.client("dynamodb", region_name=REGION), catalog_aws["table"])
    state.mark_changed(now=2000, first=1000)
    cloudwatch = _CloudWatch()
    stack._clients["cloudwatch"] = cloudwatch
    found = status.status(stack)
    assert found["deadLetters"]["waiting"] == 1 and found["queue"]["oldestAgeSeconds"] == 30.0
    assert found["lastSnapshot"]["snapshot"] == "new" and found["lastSnapshot"]["outcome"] == "guarded"
    assert found["lastPublish"] == {
        "startedAt": None, "running": False, "changedSince": True,
        "oldestUnpublishedChange": "1970-01-01T00:16:40+00:00", "verification": None,
    }  # fmt: skip
    assert found["syncLagSeconds"] == {"p50": 2.5, "p99": 41.0}
    [lag] = [r for r in cloudwatch.asked if r["MetricName"] == "SyncLagSeconds"]
    assert lag["Namespace"] == "TweakwiseTest" and {"Name": "Instance", "Value": "nl"} in lag["Dimensions"]
    shown = status.show(found)
    assert "dead letters   1  (tweakwise-ops redrive --dry-run)" in shown and "p99 41.0 s" in shown


def test_trace_peek_shows_the_changes_waiting_in_the_queue_and_leaves_them_there(stack, catalog_aws):
    for event in (_upsert("w1", "A"), _upsert("w2", "B")):
        _send(catalog_aws, "queue", event)
    assert trace.trace(stack, "A")["pending"]["waiting"] is None  # not read unless asked
    [waiting] = trace.trace(stack, "A", peek=True)["pending"]["waiting"]
    assert (waiting["eventId"], waiting["type"], waiting["entity"]) == ("w1", "item.upsert", "item#A")
    assert sorted(json.loads(m["Body"])["id"] for m in drain(catalog_aws["sqs"], catalog_aws["queue"])) == [
        "w1", "w2"
    ]  # fmt: skip
