"""`tweakwise-ops trace ID`: one item (or `category:KEY`) across the four places an answer hides: the
ledger (what this stack last sent, each field's clock), Tweakwise (GET, now), the catalog queue and its
dead-letter queue (with each dead letter's reason)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tweakwise.entity import EntityKey
from tweakwise.ledger import Ledger, body_digest
from tweakwise.state import SyncState
from tweakwise_ops import letters
from tweakwise_ops.stack import Stack, iso_time

CATEGORY = "category:"


def entity_of(text: str) -> EntityKey:
    """An item id, or `category:KEY`: the ids `trace` and `redrive --id` take."""
    if text.startswith(CATEGORY):
        return EntityKey.category(text[len(CATEGORY) :])
    return EntityKey.item(text)


def tweakwise_client(stack: Stack) -> Any:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from tweakwise.client import TweakwiseClient
    from tweakwise.credentials import SecretCredentials

    provider = SecretsProvider(boto3_client=stack.client("secretsmanager"))
    credentials = SecretCredentials(stack.output("TweakwiseSecretId"), provider=provider)
    return TweakwiseClient(credentials, stack.tweakwise_url, max_retries=1)


def _tweakwise(stack: Stack, entity: EntityKey) -> dict[str, Any]:
    from tweakwise.errors import NotFoundError, TweakwiseError

    client = tweakwise_client(stack)
    try:
        if entity.kind == "item":
            found = client.get_item(entity.ref)
        else:
            found = client.get_category_by_key(str(entity.shop_id))
    except NotFoundError:
        return {"found": False}
    except TweakwiseError as exc:  # says what failed; never a secret
        return {"found": None, "error": str(exc)}
    return {"found": True, "fields": found}


def differences(ledger: dict[str, Any] | None, tweakwise: dict[str, Any]) -> list[dict[str, Any]]:
    """Where Tweakwise no longer holds what this stack sent: each field whose value there hashes to
    another digest than the one the ledger kept (the ledger keeps digests, not values)."""
    if ledger is None:
        return [] if not tweakwise.get("found") else [{"field": "*", "why": "not written by this stack"}]
    if tweakwise.get("found") is False:
        return [{"field": "*", "why": "this stack wrote it; Tweakwise does not have it"}]
    if not tweakwise.get("found"):
        return []
    held = tweakwise["fields"]
    found = []
    for name, digest in sorted(ledger["fields"].items()):
        if name not in held:
            found.append({"field": name, "why": "missing in Tweakwise"})
        elif body_digest({name: held[name]}) != digest:
            found.append({"field": name, "why": "changed in Tweakwise", "tweakwise": held[name]})
    return found


def _waiting(sqs: Any, queue: str, entity: EntityKey, state: SyncState) -> list[dict[str, Any]]:
    """This entity's changes in the catalog queue: read held a moment, then released. Each read counts
    as a delivery of what it sees (SQS has no peek), so only on request (`--peek`)."""
    held = [letters.letter(m) for m in letters.read(sqs, queue, hold=10)]
    letters.release(sqs, queue, held)
    return [
        {k: v for k, v in found.summary().items() if k not in ("reason", "failedAttempts")}
        for found in held
        if found.entity == str(entity)
    ]


def trace(stack: Stack, text: str, peek: bool = False) -> dict[str, Any]:
    entity = entity_of(text)
    dynamodb = stack.client("dynamodb")
    state = SyncState(dynamodb, stack.output("SyncStateTableName"))
    entry = Ledger(dynamodb, stack.output("LedgerTableName")).get(entity)
    clocks, holder, until = state.inspect(entity)
    ledger = None
    if entry is not None:
        ledger = {
            "fields": entry.fields,
            "occurredAt": iso_time(entry.occurred_at),
            "createdAt": iso_time(entry.created_at),
            "lastSnapshot": entry.snapshot or None,
            "clocks": {name: iso_time(at) for name, at in sorted(clocks.fields.items())},
        }
    tweakwise = _tweakwise(stack, entity)
    sqs = stack.client("sqs")
    depth = sqs.get_queue_attributes(
        QueueUrl=stack.output("CatalogQueueUrl"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    now = datetime.now(UTC).timestamp()
    dead_letter_queue = stack.output("CatalogDeadLetterQueueUrl")
    held = letters.read_letters(sqs, dead_letter_queue, state)
    letters.release(sqs, dead_letter_queue, held)
    return {
        "id": text,
        "entity": str(entity),
        "ledger": ledger,
        "tweakwise": tweakwise,
        "differences": differences(ledger, tweakwise),
        "pending": {
            "beingApplied": {"eventId": holder, "until": iso_time(until)} if until > now else None,
            "queue": {k: int(v) for k, v in depth.items()},
            "waiting": _waiting(sqs, stack.output("CatalogQueueUrl"), entity, state) if peek else None,
        },
        "deadLetters": [held_letter.summary() for held_letter in held if held_letter.entity == str(entity)],
    }


def show(found: dict[str, Any]) -> str:
    lines = [f"{found['id']} ({found['entity']})"]
    ledger = found["ledger"]
    if ledger is None:
        lines.append("  ledger      this stack never wrote it")
    else:
        lines.append(
            f"  ledger      last sent {ledger['occurredAt']}, fields {', '.join(sorted(ledger['fields']))}"
            + (f"; last snapshot {ledger['lastSnapshot']}" if ledger["lastSnapshot"] else "")
        )
        by_time: dict[str, list[str]] = {}
        for name, at in ledger["clocks"].items():
            by_time.setdefault(at, []).append(name)
        for at, names in sorted(by_time.items()):
            lines.append(f"  clock       {', '.join(names)}: set by the change of {at}")
    tweakwise = found["tweakwise"]
    state = {
        True: "holds it",
        False: "does not have it",
        None: f"could not be read: {tweakwise.get('error')}",
    }
    lines.append(f"  tweakwise   {state[tweakwise['found']]}")
    for difference in found["differences"]:
        value = f" (now {difference['tweakwise']!r})" if "tweakwise" in difference else ""
        lines.append(f"  differs     {difference['field']}: {difference['why']}{value}")
    pending = found["pending"]
    queue = pending["queue"]
    lines.append(
        f"  queue       {queue.get('ApproximateNumberOfMessages', 0)} waiting, "
        f"{queue.get('ApproximateNumberOfMessagesNotVisible', 0)} being applied"
        + (
            f"; event {pending['beingApplied']['eventId']} is being applied now"
            if pending["beingApplied"]
            else ""
        )
    )
    if pending["waiting"] is None:
        lines.append("              (--peek reads the queue for its changes; each read counts as a delivery)")
    for waiting in pending["waiting"] or []:
        lines.append(
            f"  waiting     {waiting['type']} {waiting['eventId']} ({waiting['deliveries']} deliveries)"
        )
    for letter in found["deadLetters"]:
        lines.append(
            f"  dead letter {letter['type']} {letter['eventId']} after {letter['deliveries']} deliveries: "
            f"{letter['reason'] or 'no reason recorded'}"
        )
    if not found["deadLetters"]:
        lines.append("  dead letter none")
    return "\n".join(lines)
