"""Publish verification over moto and the Tweakwise sandbox: the worker samples what it applied, the next
publish carries the sample, and once it has ended the publisher looks each item up on the shopper-facing
API (the sandbox serves what its last publish copied), notifies mismatches, and puts the completion event
on the default bus."""

from __future__ import annotations

import json

import boto3
import pytest

from conftest import (
    REGION,
    SECRET_ID,
    LambdaContext,
    drain,
    emf_blobs,
    load_handler,
    queue_messages,
    sqs_event,
)
from tweakwise.state import SyncState

NOW = "2026-12-04T10:00:00Z"


@pytest.fixture
def bundle(catalog_aws, tasks_secret, sandbox, monkeypatch):
    sqs, sns, events = (boto3.client(name, region_name=REGION) for name in ("sqs", "sns", "events"))
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    notices = sqs.create_queue(QueueName="notices")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=notices, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    completed = sqs.create_queue(QueueName="completed")["QueueUrl"]
    completed_arn = sqs.get_queue_attributes(QueueUrl=completed, AttributeNames=["QueueArn"])["Attributes"]
    pattern = {"source": ["tweakwise.serverless"], "detail-type": ["tweakwise.publish.completed"]}
    events.put_rule(Name="flush-caches", EventPattern=json.dumps(pattern))  # a shop's rule on the default bus
    events.put_targets(Rule="flush-caches", Targets=[{"Id": "q", "Arn": completed_arn["QueueArn"]}])
    for name, value in {
        "TWEAKWISE_SECRET_ID": SECRET_ID, "TWEAKWISE_API_URL": sandbox.url,
        "TWEAKWISE_FRONTEND_URL": sandbox.url, "TWEAKWISE_MAX_RETRIES": "0",
        "SYNC_STATE_TABLE": catalog_aws["table"], "LEDGER_TABLE": catalog_aws["ledger"],
        "DEAD_LETTER_QUEUE_URL": catalog_aws["dlq"], "ALARM_TOPIC_ARN": topic, "PUBLISH_VERIFY_SAMPLE": "20",
    }.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    sandbox.running_polls = 0  # a publish is over at its first status look
    worker, publisher = load_handler("catalog_worker"), load_handler("publisher")

    class Bundle:
        @staticmethod
        def apply(*events):
            assert worker.lambda_handler(sqs_event(queue_messages(list(events))), LambdaContext()) == {
                "batchItemFailures": []
            }

        @staticmethod
        def publish():
            return publisher.lambda_handler({}, LambdaContext())

        notified = staticmethod(lambda: [m["Body"] for m in drain(sqs, notices)])
        completions = staticmethod(lambda: [json.loads(m["Body"]) for m in drain(sqs, completed)])

    return Bundle


def _upsert(event_id, item_id, **item):
    body = {"id": item_id, "name": f"Shoe {item_id}", "price": 10.0, "stock": 1, **item}
    return {"id": event_id, "type": "item.upsert", "occurredAt": NOW, "item": body}


def test_a_publish_shoppers_see_as_sent_is_verified_and_announced(bundle, sandbox, capsys):
    bundle.apply(_upsert("a1", "A"), _upsert("b1", "B", price=129))
    assert bundle.publish()["published"] is True  # carries the sample: A and B
    assert set(sandbox.published) == {"A", "B"}
    capsys.readouterr()
    outcome = bundle.publish()  # it has ended: A and B looked up on the shopper-facing API
    assert outcome["lastPublish"] == "finished"
    assert outcome["verification"] == {"checked": 2, "mismatches": []}
    metrics = emf_blobs(capsys.readouterr().out)[-1]
    assert metrics["PublishVerified"] == [2.0] and metrics["PublishMismatches"] == [0.0]
    [event] = bundle.completions()
    assert (event["source"], event["detail-type"]) == ("tweakwise.serverless", "tweakwise.publish.completed")
    assert event["detail"]["verified"] == 2 and event["detail"]["mismatches"] == []
    assert bundle.notified() == []
    lookups = [path for method, path, _body in sandbox.requests if path.startswith("/products/")]
    assert sorted(lookups) == [f"/products/{sandbox.instance_key}/A", f"/products/{sandbox.instance_key}/B"]


def test_a_mismatch_the_frontend_shows_is_notified_with_its_ids(bundle, sandbox, catalog_aws):
    bundle.apply(_upsert("a1", "A"), _upsert("b1", "B"))
    bundle.publish()
    sandbox.published["A"]["Price"] = 12.5  # shoppers see another price than the one sent
    del sandbox.published["B"]  # and B not at all
    outcome = bundle.publish()
    assert {(m["id"], m["field"]) for m in outcome["verification"]["mismatches"]} == {
        ("A", "Price"),
        ("B", "*"),
    }
    [notice] = bundle.notified()
    assert "A Price: another price is shown" in notice and "B *: sent, not shown" in notice
    marks = SyncState(boto3.client("dynamodb", region_name=REGION), catalog_aws["table"]).publish_marks()
    assert (marks.verified, marks.mismatched, marks.verify) == (0, 2, ())  # kept for status; the sample used
    [event] = bundle.completions()
    assert event["detail"]["verified"] == 0 and len(event["detail"]["mismatches"]) == 2


def test_an_item_deleted_before_the_publish_must_be_gone_for_shoppers(bundle, sandbox):
    bundle.apply(_upsert("a1", "A"))
    bundle.publish()
    bundle.publish()  # verified, over
    bundle.apply({"id": "d1", "type": "item.delete", "occurredAt": "2026-12-04T11:00:00Z", "itemId": "A"})
    assert bundle.publish()["published"] is True
    sandbox.published["A"] = {"Name": "Shoe A"}  # the publish did not take the delete
    outcome = bundle.publish()
    assert outcome["verification"]["mismatches"] == [{"id": "A", "field": "*", "why": "deleted, still shown"}]


def test_the_sample_holds_at_most_publish_verify_sample_items(bundle, sandbox, monkeypatch):
    monkeypatch.setenv("PUBLISH_VERIFY_SAMPLE", "2")
    worker = load_handler("catalog_worker")
    for batch in range(3):  # three batches of three items
        events = [_upsert(f"e{batch}{n}", f"I{batch}{n}") for n in range(3)]
        worker.lambda_handler(sqs_event(queue_messages(events)), LambdaContext())
    bundle.publish()
    outcome = bundle.publish()
    assert outcome["verification"]["checked"] == 2  # the first batch's first two: then no room


def test_a_shopper_facing_api_out_of_reach_leaves_the_publish_over_and_announced(
    bundle, sandbox, monkeypatch, tweakwise_log
):
    bundle.apply(_upsert("a1", "A"))
    bundle.publish()
    monkeypatch.setenv("TWEAKWISE_FRONTEND_URL", "http://127.0.0.1:9")  # nothing listens there
    publisher = load_handler("publisher")
    outcome = publisher.lambda_handler({}, LambdaContext())
    assert outcome["lastPublish"] == "finished" and "verification" not in outcome
    [warning] = [m for m in tweakwise_log if m.startswith("Could not check the publish")]
    assert "GET /products/{instancekey}/{itemId}" in warning and sandbox.instance_key not in warning
    [event] = bundle.completions()
    assert event["detail"]["checked"] == 0
