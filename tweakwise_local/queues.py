"""The template's SQS event sources, locally: each queue polled and its batches fed to its function, with
partial failures made visible again after a short delay (Lambda's event source mapping, in small)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tweakwise_local.events import sqs_event
from tweakwise_local.functions import LocalFunction
from tweakwise_local.template import Resolver

RETRY_VISIBILITY = 2  # seconds before a failed record comes back, locally (the template says 360)


@dataclass(frozen=True)
class EventSource:
    function: LocalFunction
    queue_url: str
    queue_arn: str
    batch_size: int


def event_sources(functions: dict[str, LocalFunction], resolver: Resolver) -> list[EventSource]:
    by_arn = {attrs["Arn"]: attrs for attrs in resolver.resources.values() if "Arn" in attrs}
    found = []
    for function in functions.values():
        for event in function.events.values():
            if event["Type"] == "SQS":
                props = event.get("Properties", {})
                arn = resolver.resolve(props["Queue"])
                found.append(EventSource(function, by_arn[arn]["Ref"], arn, int(props.get("BatchSize", 10))))
    return found


def poll(
    source: EventSource,
    run: Callable[[LocalFunction, dict, str], Any],
    stopping: threading.Event,
    say: Callable[[str, str], None],
    describe: Callable[[], str] = lambda: "",
) -> None:
    """Until `stopping`: receive a batch, run the function, delete what succeeded, retry what failed."""
    import boto3

    sqs = boto3.client("sqs")
    while not stopping.is_set():
        try:
            messages = sqs.receive_message(
                QueueUrl=source.queue_url,
                MaxNumberOfMessages=source.batch_size,
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        except Exception as exc:  # the moto server stopping under us
            if not stopping.is_set():
                say("worker", f"receive failed: {exc}")
            return
        if not messages:
            continue
        result = run(source.function, sqs_event(messages, source.queue_arn), "worker") or {}
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        if result == {}:  # the whole invocation failed: every record comes back
            failed = {m["MessageId"] for m in messages}
        for message in messages:
            if message["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=source.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=RETRY_VISIBILITY,
                )
            else:
                sqs.delete_message(QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"])
        summary = (
            f"{source.function.logical_id}: {len(messages) - len(failed)} of {len(messages)} records done"
        )
        if failed:
            summary += f", {len(failed)} to retry in {RETRY_VISIBILITY} s"
        say("worker", summary + describe())
