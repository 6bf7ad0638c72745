"""DynamoDB calls every table module makes the same way."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # boto3-stubs, a dev dependency: the layer ships no stubs
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_GET_LIMIT = 100  # keys per BatchGetItem (DynamoDB's limit)
BATCH_WRITE_LIMIT = 25  # requests per BatchWriteItem


def batch_get(dynamodb: DynamoDBClient, table: str, keys: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The items of `keys` that exist, strongly consistent, in calls of at most BATCH_GET_LIMIT keys."""
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        wanted: list[Any] = keys[start : start + BATCH_GET_LIMIT]
        pause = 0.05
        while wanted:
            answer = dynamodb.batch_get_item(RequestItems={table: {"Keys": wanted, "ConsistentRead": True}})
            yield from answer.get("Responses", {}).get(table, [])
            unprocessed: Any = answer.get("UnprocessedKeys", {}).get(table, {})
            wanted = list(unprocessed.get("Keys", []))
            if wanted:  # throttled: DynamoDB asks to back off before asking again
                time.sleep(pause)
                pause = min(pause * 2, 2.0)


def batch_put(dynamodb: DynamoDBClient, table: str, items: list[dict[str, Any]]) -> None:
    """Put every item, in calls of at most BATCH_WRITE_LIMIT, until DynamoDB has processed them all."""
    for start in range(0, len(items), BATCH_WRITE_LIMIT):
        chunk = items[start : start + BATCH_WRITE_LIMIT]
        requests: list[Any] = [{"PutRequest": {"Item": item}} for item in chunk]
        pause = 0.05
        while requests:
            answer = dynamodb.batch_write_item(RequestItems={table: requests})
            requests = list(answer.get("UnprocessedItems", {}).get(table, []))
            if requests:
                time.sleep(pause)
                pause = min(pause * 2, 2.0)
