"""The template's EventBridge rules, locally: `POST /_local/events` takes a PutEvents body and delivers each
entry to every rule whose event pattern matches it, as EventBridge does.

Matching is moto's own EventBridge: every bus and rule of the template is created in moto, each rule
targeting a delivery queue of its own; PutEvents goes to moto, and what lands in a rule's queue is handed
to that rule's real target: a function, invoked as Lambda invokes it asynchronously (retried, then sent to
its dead-letter queue), or a state machine, started. One line is printed per delivery.

An entry without `EventBusName` is put on every bus a rule listens on other than the default one (the
native sources' partner buses), as if it came on that source's bus.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

from tweakwise_local.functions import LocalFunction
from tweakwise_local.template import Resolver, function_setting

DEFAULT_BUS = "default"
PUT_EVENTS_LIMIT = 10  # entries per PutEvents call, as in EventBridge
LAMBDA_ASYNC_RETRIES = 2  # Lambda's default for asynchronous invocations, without an EventInvokeConfig


@dataclass(frozen=True)
class Rule:
    logical_id: str
    bus: str
    pattern: dict[str, Any]
    target: str  # the logical id of the function or state machine the rule targets
    queue_url: str = ""  # where moto delivers what the rule matches, locally


def _target(arn: Any) -> str:
    """The logical id behind a target's `!GetAtt X.Arn` or `!Ref X`."""
    if isinstance(arn, dict) and "Fn::GetAtt" in arn:
        return arn["Fn::GetAtt"][0]
    if isinstance(arn, dict) and "Ref" in arn:
        return arn["Ref"]
    raise ValueError(f"a rule target this runner cannot follow: {arn!r}")


def rules(resolver: Resolver) -> list[Rule]:
    """Every active AWS::Events::Rule of the template with an event pattern, and its first target."""
    found = []
    for logical, resource in resolver.template["Resources"].items():
        if resource["Type"] != "AWS::Events::Rule" or "EventPattern" not in resource["Properties"]:
            continue
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        props = resource["Properties"]
        bus = str(resolver.resolve(props.get("EventBusName", DEFAULT_BUS)))
        pattern = resolver.resolve(props["EventPattern"])
        found.append(Rule(logical, bus, pattern, _target(props["Targets"][0]["Arn"])))
    return found


def moto_bus(bus: str) -> str:
    """The bus's name in moto, which keeps only the last part of a name with "/" (a partner bus's)."""
    return bus.replace("/", "_")


def create(found: list[Rule], stack: str) -> list[Rule]:
    """The buses, rules and delivery queues in moto; returns the rules with their queues."""
    import boto3

    events, sqs = boto3.client("events"), boto3.client("sqs")
    for bus in sorted({rule.bus for rule in found} - {DEFAULT_BUS}):
        events.create_event_bus(Name=moto_bus(bus))
    made = []
    for rule in found:
        url = sqs.create_queue(QueueName=f"{stack}-{rule.logical_id}-deliveries")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        name = f"{stack}-{rule.logical_id}"
        events.put_rule(Name=name, EventBusName=moto_bus(rule.bus), EventPattern=json.dumps(rule.pattern))
        events.put_targets(Rule=name, EventBusName=moto_bus(rule.bus), Targets=[{"Id": "local", "Arn": arn}])
        made.append(Rule(rule.logical_id, rule.bus, rule.pattern, rule.target, url))
    return made


class EntryError(ValueError):
    """A PutEvents body this emulation refuses, as EventBridge would (HTTP 400)."""


def _entries(body: Any) -> list[dict[str, Any]]:
    entries = body.get("Entries") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise EntryError('the body is a PutEvents request: {"Entries": [{"Source", "DetailType", "Detail"}]}')
    if len(entries) > PUT_EVENTS_LIMIT:
        raise EntryError(f"{len(entries)} entries: PutEvents takes at most {PUT_EVENTS_LIMIT} per call")
    return entries


class Bus:
    """PutEvents on the local buses, and each matched event delivered to its rule's target."""

    def __init__(self, found: list[Rule], deliver: Callable[[Rule, dict], str]):
        self.rules = found
        self.deliver = deliver
        self.source_buses = sorted({r.bus for r in found} - {DEFAULT_BUS})
        self._lock = threading.Lock()  # one request's deliveries are its own

    @cached_property
    def _clients(self) -> tuple[Any, Any]:
        """EventBridge and SQS, made once (a client costs tens of milliseconds), on the first put."""
        import boto3

        return boto3.client("events"), boto3.client("sqs")

    def _buses(self, entry: dict[str, Any]) -> list[str]:
        given = entry.get("EventBusName")
        if not given:
            return self.source_buses
        name = str(given).rsplit("event-bus/", 1)[-1]  # a bus ARN or its name
        if name != DEFAULT_BUS and name not in self.source_buses:
            known = ", ".join([DEFAULT_BUS, *self.source_buses])
            raise EntryError(f"event bus {given!r} has no rule of template.yaml; the buses are: {known}")
        return [name]

    def put(self, body: Any) -> dict[str, Any]:
        """PutEvents' answer (FailedEntryCount, Entries), and `Deliveries`: one per matched rule."""
        entries = _entries(body)
        puts = [
            (index, {**entry, "EventBusName": moto_bus(bus)})
            for index, entry in enumerate(entries)
            for bus in self._buses(entry)
        ]
        with self._lock:
            events = self._clients[0]
            answered = []
            for start in range(0, len(puts), PUT_EVENTS_LIMIT):  # one entry on two buses is two entries
                chunk = [entry for _, entry in puts[start : start + PUT_EVENTS_LIMIT]]
                answered += events.put_events(Entries=cast(Any, chunk))["Entries"]
            deliveries = self._drain()
        delivered = {d["eventId"] for d in deliveries}
        results: list[dict[str, Any]] = [{} for _ in entries]
        for (index, _), answer in zip(puts, answered, strict=True):
            if "EventId" not in answer:
                results[index] = {k: answer[k] for k in ("ErrorCode", "ErrorMessage") if k in answer}
            elif not results[index].get("EventId") or answer["EventId"] in delivered:
                results[index] = {"EventId": answer["EventId"]}
        failed = sum(1 for result in results if "EventId" not in result)
        return {"FailedEntryCount": failed, "Entries": results, "Deliveries": deliveries}

    def _drain(self) -> list[dict[str, Any]]:
        sqs = self._clients[1]
        deliveries = []
        for rule in self.rules:
            while True:
                messages = sqs.receive_message(QueueUrl=rule.queue_url, MaxNumberOfMessages=10).get(
                    "Messages", []
                )
                if not messages:
                    break
                for message in messages:
                    event = json.loads(message["Body"])
                    event.pop("ingestion-time", None)  # moto's own field; EventBridge sends none
                    event.setdefault("account", rule.queue_url.split("/")[-2])  # which moto leaves out
                    result = self.deliver(rule, event)
                    deliveries.append(
                        {
                            "eventId": event["id"],
                            "rule": rule.logical_id,
                            "target": rule.target,
                            "result": result,
                        }
                    )
                sqs.delete_message_batch(
                    QueueUrl=rule.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                    ],
                )
        return deliveries


def invoke_async(
    function: LocalFunction, event: dict, run: Callable[[LocalFunction, dict, str], Any], resolver: Resolver
) -> str:
    """Lambda's asynchronous invocation: retried as the function's EventInvokeConfig says, then sent to
    its dead-letter queue. What the function returned, or where the event went."""
    import boto3

    config = function_setting(resolver.template, function.logical_id, "EventInvokeConfig", {}) or {}
    attempts = 1 + int(config.get("MaximumRetryAttempts", LAMBDA_ASYNC_RETRIES))
    for _ in range(attempts):
        result = run(function, event, "events")
        if result is not None:
            return json.dumps(result, default=str)
    dead_letter = function_setting(resolver.template, function.logical_id, "DeadLetterQueue", {}) or {}
    arn = resolver.resolve(dead_letter.get("TargetArn"))
    queue = next((r for r in resolver.resources.values() if arn and r.get("Arn") == arn), None)
    if queue is None:
        return f"failed {attempts} times; dropped (the function has no dead-letter queue)"
    boto3.client("sqs").send_message(QueueUrl=queue["Ref"], MessageBody=json.dumps(event))
    return f"failed {attempts} times; sent to its dead-letter queue {queue['Ref'].rsplit('/', 1)[-1]}"


def entry(event: dict[str, Any], bus: str | None = None) -> dict[str, Any]:
    """The PutEvents entry that makes `event` (an event as a rule's target receives it, e.g. a fixture of
    events/sources/) again."""
    made = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event["detail"]),
    }
    return {**made, "EventBusName": bus} if bus else made


# The banner's examples, one per source: each paste a new event id and the time of the paste.
COMPACT = (",", ":")
_NOW, _ID = "@NOW@", "@ID@"
_SHELL = {_NOW: "'\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"'", _ID: "'\"$(date +%s%N)\"'"}
EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "aws.partner/commercetools.com/": (
        "ProductPublished",
        {
            "id": f"msg-{_ID}",
            "type": "ProductPublished",
            "lastModifiedAt": _NOW,
            "resource": {"typeId": "product", "id": "ct-product-1"},
            "scope": "All",
            "productProjection": {
                "name": {"en": "Trail runner"},
                "slug": {"en": "trail-runner"},
                "masterVariant": {
                    "id": 1,
                    "sku": "CT-SKU-1",
                    "prices": [{"value": {"currencyCode": "EUR", "centAmount": 8995, "fractionDigits": 2}}],
                    "availability": {"availableQuantity": 12},
                },
            },
        },
    ),
    "aws.partner/shopify.com/": (
        "shopifyWebhook",
        {
            "metadata": {
                "X-Shopify-Topic": "products/update",
                "X-Shopify-Event-Id": _ID,
                "X-Shopify-Triggered-At": _NOW,
                "X-Shopify-Shop-Domain": "local-shop.myshopify.com",
            },
            "payload": {
                "id": 7001,
                "title": "Trail runner",
                "handle": "trail-runner",
                "status": "active",
                "product_type": "Shoes",
                "updated_at": _NOW,
                "variants": [
                    {"id": 8001, "price": "89.95", "inventory_quantity": 12, "inventory_item_id": 9001}
                ],
            },
        },
    ),
}


def example_command(api: str, bus: str) -> str | None:
    """A paste-ready curl putting one realistic event on `bus`, or None for a bus without an example."""
    for prefix, (detail_type, detail) in EXAMPLES.items():
        if bus.startswith(prefix):
            made = {
                "Source": bus,
                "DetailType": detail_type,
                "Detail": json.dumps(detail, separators=COMPACT),
            }
            body = json.dumps({"Entries": [made]}, separators=COMPACT)
            for placeholder, shell in _SHELL.items():
                body = body.replace(placeholder, shell)
            return f"curl -sS -X POST {api}/_local/events -d '{body}'"
    return None
