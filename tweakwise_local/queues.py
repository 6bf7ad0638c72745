"""The template's SQS event sources, locally: each queue polled and its batches fed to its function, with
partial failures made visible again after a short delay (Lambda's event source mapping, in small).

What moto does not do, this does: FIFO deduplication lasts 5 minutes from the first send in SQS, but moto
forgets a deduplication id once its message is deleted, so a duplicate sent after that is delivered. The
poller drops such a duplicate when it arrives (SQS would have refused it at send; the effect is the same:
one delivery). Each retry and each move to the dead-letter queue is reported in one line, with its reason.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tweakwise_local.functions import LocalFunction
from tweakwise_local.invocations import sqs_event
from tweakwise_local.template import Resolver

RETRY_VISIBILITY = 2  # seconds before a failed record comes back, locally (the template says 360)
DEDUPLICATION_SECONDS = 300  # SQS FIFO's deduplication interval


@dataclass
class EventSource:
    function: LocalFunction
    queue_url: str
    queue_arn: str
    batch_size: int
    max_receive_count: int = 0  # deliveries before SQS moves a message to the dead-letter queue (0: none)
    dead_letter_queue: str = ""
    by_group: bool = False  # DeduplicationScope: messageGroup
    seen: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)  # dedup key -> (id, until)


def event_sources(functions: dict[str, LocalFunction], resolver: Resolver) -> list[EventSource]:
    by_arn = {attrs["Arn"]: attrs for attrs in resolver.resources.values() if "Arn" in attrs}
    queues = {
        resolver.resolve({"Fn::GetAtt": [logical, "Arn"]}): resource.get("Properties", {})
        for logical, resource in resolver.template["Resources"].items()
        if resource["Type"] == "AWS::SQS::Queue"
    }
    found = []
    for function in functions.values():
        for event in function.events.values():
            if event["Type"] == "SQS":
                props = event.get("Properties", {})
                arn = resolver.resolve(props["Queue"])
                queue = queues.get(arn, {})
                redrive = resolver.resolve(queue.get("RedrivePolicy", {}))
                found.append(
                    EventSource(
                        function,
                        by_arn[arn]["Ref"],
                        arn,
                        int(props.get("BatchSize", 10)),
                        int(redrive.get("maxReceiveCount", 0)),
                        str(redrive.get("deadLetterTargetArn", "")).rsplit(":", 1)[-1],
                        queue.get("DeduplicationScope") == "messageGroup",
                    )
                )
    return found


def describe(message: Mapping[str, Any]) -> str:
    """The catalog event a message carries (its id and type), else the message id."""
    try:
        body = json.loads(message["Body"])
        return f"{body['type']} {body['id']}"
    except (ValueError, KeyError, TypeError):
        return f"message {message['MessageId']}"


def _duplicate(source: EventSource, message: Mapping[str, Any]) -> bool:
    """A message SQS would have refused: its deduplication id was sent under another message id less
    than 5 minutes before. Records the first one of each id."""
    attributes = message.get("Attributes", {})
    dedup = attributes.get("MessageDeduplicationId")
    if not dedup:
        return False
    key = (attributes.get("MessageGroupId", "") if source.by_group else "", dedup)
    now = time.time()
    first = source.seen.get(key)
    if first and first[0] != message["MessageId"] and first[1] > now:
        return True
    if not first or first[1] <= now:
        sent = int(attributes.get("SentTimestamp", now * 1000)) / 1000
        source.seen[key] = (message["MessageId"], sent + DEDUPLICATION_SECONDS)
    return False


def poll(
    source: EventSource,
    run: Callable[[LocalFunction, dict, str], tuple[Any, dict[str, dict]]],
    stopping: threading.Event,
    say: Callable[[str, str], None],
    summary: Callable[[], str] = lambda: "",
) -> None:
    """Until `stopping`: receive a batch, run the function, delete what succeeded, retry what failed."""
    import boto3

    sqs = boto3.client("sqs")
    while not stopping.is_set():
        try:
            received = sqs.receive_message(
                QueueUrl=source.queue_url,
                MaxNumberOfMessages=source.batch_size,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        except Exception as exc:  # the moto server stopping under us, or a moto error: try again
            if stopping.is_set():
                return
            say("worker", f"receive failed, trying again: {exc}")
            stopping.wait(1)
            continue
        messages = []
        for message in received:
            if _duplicate(source, message):
                sqs.delete_message(QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"])
                say("queue", f"{describe(message)} dropped: a duplicate within SQS's 5-minute deduplication")
            else:
                messages.append(message)
        if not messages:
            continue
        result, logged = run(source.function, sqs_event(messages, source.queue_arn), "worker")
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        if result is None:  # the whole invocation failed: every record comes back
            failed = {m["MessageId"] for m in messages}
        parked = 0
        for message in messages:
            mid = message["MessageId"]
            parked += _settle(sqs, source, message, failed=mid in failed, logged=logged.get(mid), say=say)
        line = f"{source.function.logical_id}: {len(messages) - len(failed)} of {len(messages)} records done"
        if len(failed) > parked:
            line += f", {len(failed) - parked} to retry in {RETRY_VISIBILITY} s"
        if parked:
            line += f", {parked} to the dead-letter queue"
        say("worker", line + summary())


def _settle(
    sqs: Any,
    source: EventSource,
    message: Mapping[str, Any],
    *,
    failed: bool,
    logged: dict | None,
    say: Callable[[str, str], None],
) -> bool:
    """Delete a done message or make a failed one visible again; report a retry or a dead letter. True
    when a failed message has had its last delivery (SQS moves it to the dead-letter queue)."""
    deliveries = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
    reason = (logged or {}).get("reason") or "an earlier message of its group failed; it waits for it"
    after = f"after {deliveries} {'delivery' if deliveries == 1 else 'deliveries'}"
    if not failed:
        sqs.delete_message(QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"])
        if logged and logged.get("dead_letter"):  # the worker parked it itself (Tweakwise refused it)
            say("dead-letter", f"{describe(message)} moved to {source.dead_letter_queue} {after}: {reason}")
        return False
    sqs.change_message_visibility(
        QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=RETRY_VISIBILITY
    )
    if source.max_receive_count and deliveries >= source.max_receive_count:
        say("dead-letter", f"{describe(message)} moves to {source.dead_letter_queue} {after}: {reason}")
        return True
    say(
        "retry",
        f"{describe(message)} failed (delivery {deliveries}), again in {RETRY_VISIBILITY} s: {reason}",
    )
    return False
