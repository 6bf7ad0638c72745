"""Runs every function, cold, as Lambda would (tracing on, root logger at DEBUG), against a hostile
Tweakwise given as argv[1]; prints everything a log, a metric or an error would show. Used by
test_secrecy.py in a fresh interpreter, so X-Ray and logging start from their shipped settings."""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback

import boto3
from moto import mock_aws

from conftest import (
    ACCESS_TOKEN,
    INSTANCE_KEY,
    REGION,
    SECRET_ID,
    SIGNING_SECRET,
    TASKS,
    WEBHOOK_SECRET_ID,
    LambdaContext,
    api_event,
    load_handler,
    signed_headers,
    sqs_event,
)
from tweakwise_local.provision import create_table

# What Lambda's runtime client (awslambdaric's _setup_logging) does with AWS_LAMBDA_LOG_FORMAT=JSON and
# AWS_LAMBDA_LOG_LEVEL=DEBUG: one handler on the root logger, and the root logger at DEBUG.
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
logging.getLogger().setLevel("DEBUG")


def invoke(module, event: dict) -> None:
    try:
        print("RESULT", json.dumps(module.lambda_handler(event, LambdaContext(timeout=20)), default=str))
    except Exception as exc:  # what the Lambda runtime logs for a failed invocation
        print("ERROR", "".join(traceback.format_exception(exc)), file=sys.stderr)


def main(api_url: str) -> None:
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name=REGION)
        secret = {"instance_key": INSTANCE_KEY, "access_token": ACCESS_TOKEN, "tasks": TASKS}
        sm.create_secret(Name=SECRET_ID, SecretString=json.dumps(secret))
        sm.create_secret(Name=WEBHOOK_SECRET_ID, SecretString=json.dumps({"signing_secret": SIGNING_SECRET}))
        sqs = boto3.client("sqs", region_name=REGION)
        fifo = {"FifoQueue": "true"}
        queue = sqs.create_queue(QueueName="catalog.fifo", Attributes=fifo)["QueueUrl"]
        dlq = sqs.create_queue(QueueName="catalog-dlq.fifo", Attributes=fifo)["QueueUrl"]
        create_table(boto3.client("dynamodb", region_name=REGION), "sync-state", "SYNC_STATE_TABLE")
        create_table(boto3.client("dynamodb", region_name=REGION), "ledger", "LEDGER_TABLE")
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="snapshots", CreateBucketConfiguration={"LocationConstraint": REGION})
        line = {"type": "item", "item": {"id": "A", "name": "A", "price": 1, "stock": 1}}
        s3.put_object(Bucket="snapshots", Key="snapshots/c.jsonl", Body=json.dumps(line).encode())
        env = {
            "TWEAKWISE_SECRET_ID": SECRET_ID,
            "TWEAKWISE_API_URL": api_url,
            "WEBHOOK_SECRET_ID": WEBHOOK_SECRET_ID,
            "CATALOG_QUEUE_URL": queue,
            "SYNC_STATE_TABLE": "sync-state",
            "LEDGER_TABLE": "ledger",
            "DEAD_LETTER_QUEUE_URL": dlq,
            "SNAPSHOT_BUCKET": "snapshots",
            "TRACE_CALLS": "true",  # the X-Ray SDK's documents are checked too
        }
        os.environ.update(env)

        runner = load_handler("task_runner")
        for name in ("import", "publish"):
            invoke(runner, {"task": name})
            invoke(runner, {"action": "status", "task": name, "startedAt": "2026-01-01T00:00:00Z"})
        invoke(load_handler("catalog_monitor"), {})

        publisher = load_handler("publisher")
        from tweakwise.state import SyncState

        SyncState(boto3.client("dynamodb", region_name=REGION), "sync-state").mark_changed()
        invoke(publisher, {})  # triggers the publish task
        invoke(publisher, {})  # reads its status

        webhook = load_handler("catalog_webhook")
        item = {"id": "A", "name": "A", "price": 1, "stock": 1}
        body = json.dumps({"events": [{"id": "e1", "type": "item.upsert", "item": item}]}).encode()
        invoke(webhook, api_event(body, signed_headers(body)))
        invoke(webhook, api_event(body, {"x-signature-timestamp": "1", "x-signature": "sha256=00"}))

        worker = load_handler("catalog_worker")
        messages = sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", [])
        invoke(worker, sqs_event(messages))
        for message in sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", []):
            print("DEAD-LETTER", json.dumps(message, default=str))

        snapshot = load_handler("catalog_snapshot")
        execution = "arn:aws:states:eu-west-1:123456789012:execution:snapshots:leak"
        upload = {"detail": {"bucket": {"name": "snapshots"}, "object": {"key": "snapshots/c.jsonl"}}}
        found = snapshot.lambda_handler(
            {"action": "validate", "input": upload, "execution": execution}, LambdaContext(timeout=20)
        )
        print("RESULT", json.dumps(found, default=str))
        step = {"snapshot": found["snapshot"], "run": found["run"], "takenAt": found["takenAt"]}
        invoke(snapshot, {"Items": [line], "BatchInput": {"action": "apply", **step}})
        invoke(
            snapshot,
            {
                "action": "finish",
                "execution": execution,
                "outcome": "failed",
                **step,
                "started": found["takenAt"],
                "reason": "leak test",
            },
        )


if __name__ == "__main__":
    main(sys.argv[1])
