"""A DynamoDB stand-in in memory, with a latency: what the sync state and the ledger call, for the
benchmarks and the Lambda-like driver (scripts/lambda_driver.py imports it from this folder).
`serve` shares one stand-in with other processes (the snapshot benchmark's Map slots, each a Lambda
container of its own); `RemoteDynamoDB` is what such a process calls."""

from __future__ import annotations

import functools
import re
import secrets
import threading
import time
from collections import Counter
from multiprocessing.connection import Client, Connection, Listener
from typing import Any


class ConditionFailed(Exception):
    def __init__(self, item: dict | None = None):
        super().__init__("The conditional request failed")
        self.response = {"Error": {"Code": "ConditionalCheckFailedException"}}
        if item is not None:  # ReturnValuesOnConditionCheckFailure=ALL_OLD
            self.response["Item"] = item


@functools.lru_cache(maxsize=256)
def _condition(condition: str, names: tuple[tuple[str, str], ...]) -> Any:
    """A ConditionExpression compiled once into Python over `item` and `values` (the calls repeat a few
    expressions millions of times: parsing each call was most of the stand-in's CPU)."""
    for alias, name in names:
        condition = condition.replace(alias, name)

    def exists(match: re.Match) -> str:
        return f"({match[2]!r} {'in' if match[1] == 'attribute_exists' else 'not in'} item)"

    def compare(match: re.Match) -> str:
        operator = "==" if match[2] == "=" else match[2]
        return f"({match[1]!r} in item and V(item[{match[1]!r}]) {operator} V(values[{match[3]!r}]))"

    text = re.sub(r"(attribute_exists|attribute_not_exists)\((\w+)\)", exists, condition)
    text = re.sub(r"(\w+) (<=|>=|<|>|=) (:\w+)", compare, text)
    return compile(text.replace(" AND ", " and ").replace(" OR ", " or "), "<condition>", "eval")


@functools.lru_cache(maxsize=256)
def _update(expression: str, names: tuple[tuple[str, str], ...]) -> list[tuple[str, str, str, str]]:
    """An UpdateExpression as (verb, attribute, value placeholder, if_not_exists attribute) clauses."""
    aliases, clauses = dict(names), []
    parts = re.split(r"\b(SET|ADD|REMOVE)\b", expression)[1:]
    for verb, body in zip(parts[::2], parts[1::2], strict=True):
        for clause in (c.strip() for c in re.split(r",(?![^(]*\))", body) if c.strip()):
            if verb == "SET":
                name, value = (p.strip() for p in clause.split("=", 1))
                kept = re.fullmatch(r"if_not_exists\((\w+), (:\w+)\)", value)
                clauses.append(
                    ("SET", aliases.get(name, name), kept[2] if kept else value, kept[1] if kept else "")
                )
            elif verb == "ADD":
                name, value = clause.split()
                clauses.append(("ADD", aliases.get(name, name), value, ""))
            else:
                clauses.append(("REMOVE", aliases.get(clause, clause), "", ""))
    return clauses


class DynamoDBStandIn:
    """The calls the sync state and the ledger make, answered from memory after `latency` with DynamoDB's
    semantics for the expressions they use (conditions, SET, ADD, REMOVE)."""

    class exceptions:
        ConditionalCheckFailedException = ConditionFailed

    def __init__(self, latency: float):
        self.latency = latency
        self.tables: dict[str, dict[str, dict]] = {}
        self.lock = threading.Lock()
        self.calls = 0
        self.ops: Counter[str] = Counter()  # calls by operation: what the benchmarks count per entity

    def _table(self, name: str) -> dict[str, dict]:
        return self.tables.setdefault(name, {})

    @staticmethod
    def _value(typed: dict) -> Any:
        [(kind, value)] = typed.items()
        return float(value) if kind == "N" else value

    def _holds(self, item: dict, condition: str | None, names: dict, values: dict) -> bool:
        if not condition:
            return True
        check = _condition(condition, tuple(sorted(names.items())))
        return bool(eval(check, {"V": self._value}, {"item": item, "values": values}))  # noqa: S307

    def update_item(self, TableName, Key, UpdateExpression, **kw):
        time.sleep(self.latency)
        names, values = kw.get("ExpressionAttributeNames", {}), kw.get("ExpressionAttributeValues", {})
        with self.lock:
            self.calls += 1
            self.ops["UpdateItem"] += 1
            table = self._table(TableName)
            entity = Key["entity"]["S"]
            item = dict(table.get(entity, {}))
            if not self._holds(item, kw.get("ConditionExpression"), names, values):
                old = item if kw.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" else None
                raise ConditionFailed(old)
            for verb, name, value, kept in _update(UpdateExpression, tuple(sorted(names.items()))):
                if verb == "SET":
                    item[name] = item.get(kept, values[value]) if kept else values[value]
                elif verb == "ADD":
                    total = float(item.get(name, {"N": "0"})["N"]) + float(values[value]["N"])
                    item[name] = {"N": str(int(total))}
                else:
                    item.pop(name, None)
            item["entity"] = {"S": entity}
            table[entity] = item
        return {}

    def delete_item(self, TableName, Key, **kw):
        time.sleep(self.latency)
        with self.lock:
            self.calls += 1
            self.ops["DeleteItem"] += 1
            table = self._table(TableName)
            item = table.get(Key["entity"]["S"], {})
            if not self._holds(
                item, kw.get("ConditionExpression"), {}, kw.get("ExpressionAttributeValues", {})
            ):
                raise ConditionFailed()
            table.pop(Key["entity"]["S"], None)
        return {}

    def get_item(self, TableName, Key, **_kw):
        time.sleep(self.latency)
        with self.lock:
            self.calls += 1
            self.ops["GetItem"] += 1
            item = self._table(TableName).get(Key["entity"]["S"])
        return {"Item": dict(item)} if item else {}

    def batch_get_item(self, RequestItems):
        time.sleep(self.latency)
        [(name, request)] = RequestItems.items()
        with self.lock:
            self.calls += 1
            self.ops["BatchGetItem"] += 1
            table = self._table(name)
            found = [dict(table[k["entity"]["S"]]) for k in request["Keys"] if k["entity"]["S"] in table]
        return {"Responses": {name: found}}

    def get_paginator(self, _operation: str):
        stand_in = self

        class Pages:
            def paginate(self, TableName, **_kw):
                with stand_in.lock:
                    items = [dict(i) for i in stand_in._table(TableName).values()]
                for start in range(0, len(items), 1000):  # ~1 MB pages
                    time.sleep(stand_in.latency)
                    stand_in.ops["Scan"] += 1
                    yield {"Items": items[start : start + 1000]}

        return Pages()


def _answer(stand_in: DynamoDBStandIn, connection: Connection) -> None:
    with connection:
        while True:
            try:
                method, request = connection.recv()
            except EOFError:
                return
            try:
                if method == "scan":
                    answer: Any = list(stand_in.get_paginator("scan").paginate(**request))
                else:
                    answer = getattr(stand_in, method)(**request)
                connection.send((True, answer))
            except ConditionFailed as exc:
                connection.send((False, exc.response.get("Item")))
            except Exception as exc:  # the caller raises it; this thread answers on
                connection.send((None, f"{type(exc).__name__}: {exc}"))


def serve(stand_in: DynamoDBStandIn) -> tuple[tuple[str, int], bytes]:
    """Answer other processes' calls to `stand_in` (a thread per connection, as many as they open, until
    this process ends): the address and key a `RemoteDynamoDB` needs."""
    key = secrets.token_bytes(16)
    listener = Listener(("127.0.0.1", 0), backlog=1024, authkey=key)  # the slots connect at once

    def accept() -> None:
        while True:
            connection = listener.accept()
            threading.Thread(target=_answer, args=(stand_in, connection), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener.address, key


class RemoteDynamoDB:
    """A served stand-in's calls from another process: one connection per thread, as boto3's pool has."""

    exceptions = DynamoDBStandIn.exceptions

    def __init__(self, address: tuple[str, int], key: bytes):
        self.address, self.key = address, key
        self.local = threading.local()

    def _call(self, method: str, request: dict) -> Any:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = self.local.connection = Client(self.address, authkey=self.key)
        connection.send((method, request))
        ok, answer = connection.recv()
        if ok is None:
            raise RuntimeError(f"the DynamoDB stand-in failed: {answer}")
        if not ok:
            raise ConditionFailed(answer)
        return answer

    def update_item(self, **request: Any) -> Any:
        return self._call("update_item", request)

    def delete_item(self, **request: Any) -> Any:
        return self._call("delete_item", request)

    def get_item(self, **request: Any) -> Any:
        return self._call("get_item", request)

    def batch_get_item(self, **request: Any) -> Any:
        return self._call("batch_get_item", request)

    def get_paginator(self, operation: str) -> Any:
        remote = self

        class Pages:
            def paginate(self, **request: Any) -> Any:
                return iter(remote._call(operation, request))

        return Pages()


class SQSStandIn:
    """SendMessageBatch answered after `latency`, as in-region SQS does, keeping what was sent in order as
    received messages (what the webhook's benchmarks hand on to the worker). moto's FIFO queue recomputes
    its attributes over every message it holds on each send: its cost grows with the queue, not with us."""

    def __init__(self, latency: float):
        self.latency = latency
        self.lock = threading.Lock()
        self.sent: list[dict] = []
        self.calls = 0

    def send_message_batch(self, QueueUrl, Entries):
        time.sleep(self.latency)
        successful = []
        with self.lock:
            self.calls += 1
            for entry in Entries:
                message_id = f"standin-{len(self.sent)}"
                self.sent.append(
                    {
                        "MessageId": message_id,
                        "Body": entry["MessageBody"],
                        "Attributes": {
                            "MessageGroupId": entry.get("MessageGroupId", ""),
                            "MessageDeduplicationId": entry.get("MessageDeduplicationId", ""),
                            "SentTimestamp": str(int(time.time() * 1000)),
                        },
                        "MessageAttributes": entry.get("MessageAttributes", {}),
                    }
                )
                successful.append({"Id": entry["Id"], "MessageId": message_id})
        return {"Successful": successful, "Failed": []}
