"""`tweakwise-ops redrive`: back to the catalog queue only the dead letters that match, each with its
message group and body but a new deduplication id (SQS FIFO drops a message whose deduplication id it saw
in the last 5 minutes: the original one could be silently lost), deleted from the dead-letter queue only
once it is sent. The ones that do not match stay, in sight again at once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from tweakwise.state import SyncState
from tweakwise_ops import letters
from tweakwise_ops.stack import Stack
from tweakwise_ops.trace import entity_of


@dataclass(frozen=True)
class Match:
    """Which dead letters to move: all of them when every filter is empty."""

    ids: list[str] = field(default_factory=list)  # item ids or category:KEY
    event_type: str = ""
    reason: str = ""  # a part of the reason, any case

    def __call__(self, letter: letters.Letter) -> bool:
        entities = {str(entity_of(i)) for i in self.ids}
        return (
            (not entities or letter.entity in entities)
            and (not self.event_type or letter.event_type == self.event_type)
            and (not self.reason or self.reason.lower() in letter.reason.lower())
        )


def redrive(stack: Stack, match: Match, dry_run: bool = False) -> dict[str, Any]:
    sqs = stack.client("sqs")
    queue, dead_letters = stack.output("CatalogQueueUrl"), stack.output("CatalogDeadLetterQueueUrl")
    state = SyncState(stack.client("dynamodb"), stack.output("SyncStateTableName"))
    attributes = sqs.get_queue_attributes(
        QueueUrl=dead_letters, AttributeNames=["ApproximateNumberOfMessages"]
    )
    before = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    seen: dict[str, letters.Letter] = {}
    moved: list[letters.Letter] = []
    while True:  # moving a letter brings the next one of its group into sight: read until none is new
        fresh = [
            held for held in letters.read_letters(sqs, dead_letters, state) if held.message_id not in seen
        ]
        if not fresh:
            break
        for held in fresh:
            seen[held.message_id] = held
            if match(held) and not dry_run:
                sqs.send_message(
                    QueueUrl=queue,
                    MessageBody=held.body,
                    MessageGroupId=held.group,
                    MessageDeduplicationId=f"redrive-{uuid.uuid4().hex}",
                )
                sqs.delete_message(QueueUrl=dead_letters, ReceiptHandle=held.receipt)  # only once sent
                moved.append(held)
        if dry_run:  # nothing moved, so nothing new comes into sight
            break
    kept = [held for held in seen.values() if held not in moved]
    letters.release(sqs, dead_letters, kept)
    matched = [held for held in seen.values() if match(held)]
    return {
        "matched": len(matched),
        "moved": len(moved),
        "stayed": len(kept),
        "notInSight": max(0, before - len(seen)),  # behind a letter of their group that stays
        "dryRun": dry_run,
        "letters": [held.summary() for held in matched],
    }


def show(result: dict[str, Any]) -> str:
    verb = "would move" if result["dryRun"] else "moved"
    lines = [
        f"{result['matched']} matched, {verb} {result['matched'] if result['dryRun'] else result['moved']}, "
        f"{result['stayed']} stayed in the dead-letter queue"
        + (
            f", {result['notInSight']} not in sight (behind a letter of their group that stays)"
            if result["notInSight"]
            else ""
        )
    ]
    for letter in result["letters"]:
        reason = letter["reason"] or "no reason recorded"
        lines.append(f"  {letter['type']} {letter['eventId']} ({letter['entity']}): {reason}")
    return "\n".join(lines)
