"""Nothing lost under faults: N items through the real webhook -> SQS FIFO (moto, with the template's
redrive policy) -> real worker -> Tweakwise sandbox answering 429 and 503 at random (seeded). The queue is
drained as the event source mapping would: failed records become visible again and are redelivered, and
SQS moves a record received more than MaxReceiveCount times to the dead-letter queue.

`make faults` runs 1,000 items under "429=0.3,5xx=0.1"; tests/integration/test_faults.py runs a smaller batch.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

MAX_RECEIVE_COUNT = 5  # template.yaml: CatalogQueue's RedrivePolicy
WEBHOOK_BATCH = 100
WORKER_BATCH = 10


def _item(i: int) -> dict[str, Any]:
    return {"id": f"SKU-{i}", "name": f"Item {i}", "price": i + 0.5, "stock": i % 7, "brand": "B"}


def _empty(sqs: Any, queue: str) -> bool:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=names)["Attributes"]
    return all(attributes[name] == "0" for name in names)


def run(
    items: int = 1000, faults: str = "429=0.3,5xx=0.1,retry-after=0", seed: int = 1, containers: int = 8
) -> dict[str, Any]:
    """Send `items` upserts and drain the queue; the counts of what happened."""
    saved = dict(os.environ)
    try:
        return _run(items, faults, seed, containers)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _run(items: int, faults: str, seed: int, containers: int) -> dict[str, Any]:  # noqa: PLR0915 - one story
    import boto3
    from moto import mock_aws

    from tweakwise_local.invocations import LambdaContext, api_event, load_handler, signed_headers, sqs_event
    from tweakwise_local.provision import create_table
    from tweakwise_local.sandbox import Faults, Sandbox

    os.environ.update(
        {
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "faults",
            "AWS_SECRET_ACCESS_KEY": "faults",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            "POWERTOOLS_SERVICE_NAME": "faults",
            "POWERTOOLS_METRICS_NAMESPACE": "faults",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    box = Sandbox(faults=Faults.parse(f"{faults},seed={seed}"))
    url = box.start()
    started = time.monotonic()
    with mock_aws():
        sm, sqs = boto3.client("secretsmanager"), boto3.client("sqs")
        sm.create_secret(Name="faults/tweakwise", SecretString=json.dumps(box.secret()))
        sm.create_secret(Name="faults/webhook", SecretString=json.dumps({"signing_secret": "f" * 32}))
        create_table(boto3.client("dynamodb"), "faults-sync-state", "SYNC_STATE_TABLE")
        create_table(boto3.client("dynamodb"), "faults-ledger", "LEDGER_TABLE")
        fifo = {"FifoQueue": "true"}
        dlq = sqs.create_queue(QueueName="faults-dlq.fifo", Attributes=fifo)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)})
        queue = sqs.create_queue(
            QueueName="faults.fifo", Attributes={**fifo, "RedrivePolicy": redrive, "VisibilityTimeout": "60"}
        )["QueueUrl"]
        os.environ.update(
            {
                "TWEAKWISE_SECRET_ID": "faults/tweakwise",
                "TWEAKWISE_API_URL": url,
                "WEBHOOK_SECRET_ID": "faults/webhook",
                "CATALOG_QUEUE_URL": queue,
                "SYNC_STATE_TABLE": "faults-sync-state",
                "LEDGER_TABLE": "faults-ledger",
                "DEAD_LETTER_QUEUE_URL": dlq,
            }
        )
        webhook = load_handler("catalog_webhook")
        answers: dict[int, int] = {}
        for start in range(0, items, WEBHOOK_BATCH):
            events = [
                {"id": f"e-{i}", "type": "item.upsert", "item": _item(i)}
                for i in range(start, min(items, start + WEBHOOK_BATCH))
            ]
            raw = json.dumps({"events": events}).encode()
            status = webhook.lambda_handler(api_event(raw, signed_headers(raw, "f" * 32)), LambdaContext())
            answers[status["statusCode"]] = answers.get(status["statusCode"], 0) + 1
        counts = {"invocations": 0, "retried": 0}
        lock = threading.Lock()

        def container() -> None:
            # One worker container: its own module (client, caches), one invocation at a time.
            worker = load_handler("catalog_worker")
            while True:
                messages = sqs.receive_message(
                    QueueUrl=queue,
                    MaxNumberOfMessages=WORKER_BATCH,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
                if not messages:
                    if _empty(sqs, queue):
                        return
                    time.sleep(0.05)
                    continue
                answer = worker.lambda_handler(sqs_event(messages), LambdaContext(timeout=60))
                failures = answer["batchItemFailures"]
                failed = {f["itemIdentifier"] for f in failures}
                with lock:
                    counts["invocations"] += 1
                    counts["retried"] += len(failed)
                for message in messages:
                    if message["MessageId"] in failed:  # visible again at once, as after a short timeout
                        sqs.change_message_visibility(
                            QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                        )
                    else:
                        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])

        threads = [threading.Thread(target=container) for _ in range(containers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        dead = int(
            sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
        )
    box.stop()
    wrong = [
        i
        for i in range(items)
        if (box.items.get(f"SKU-{i}") or {}).get("Name") != f"Item {i}"
        or box.items[f"SKU-{i}"].get("Price") != i + 0.5
    ]
    return {
        "items": items,
        "faults": faults,
        "seed": seed,
        "webhookAnswers": answers,
        "workerContainers": containers,
        "workerInvocations": counts["invocations"],
        "recordsRetriedBySqs": counts["retried"],
        "deadLettered": dead,
        "itemsInTweakwise": len(box.items),
        "itemsWrong": len(wrong),
        "tweakwiseAnswers": dict(sorted(box.answered.items())),
        "seconds": round(time.monotonic() - started, 1),
    }


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print(json.dumps(run(count), indent=2))
