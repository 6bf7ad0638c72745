"""The source map table (DynamoDB): what the native sources must remember between events, because a
later event does not say it. The one module that knows it.

- A relation (`ct#product#<id>`, `ct#inventory#<entry>`, `shopify#product#<id>`,
  `shopify#inventory#<item>`): its attributes as JSON in `value`, replaced whole by the newest payload
  that states it (a product's variants, the SKU of an inventory entry).
- Levels (`shopify#levels#<inventory item>`): one attribute per location, `loc:<id>` = {available, at};
  a level older than the one kept is refused by a condition, so out-of-order deliveries cannot undo a
  newer quantity, and two locations' updates never overwrite each other.
No expiry: a relation is small and lives as long as its product.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .ddb import batch_get, batch_put
from .sources import Level

if TYPE_CHECKING:  # boto3-stubs, a dev dependency: the layer ships no stubs
    from mypy_boto3_dynamodb import DynamoDBClient

LOCATION_PREFIX = "loc:"


class SourceMap:
    def __init__(self, dynamodb: DynamoDBClient, table: str):
        self.dynamodb, self.table = dynamodb, table

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The relations of `keys` that are kept (strongly consistent)."""
        wanted = [{"key": {"S": key}} for key in dict.fromkeys(keys)]
        return {
            item["key"]["S"]: json.loads(item["value"]["S"])
            for item in batch_get(self.dynamodb, self.table, wanted)
            if "value" in item
        }

    def remember(self, relations: dict[str, dict[str, Any]]) -> None:
        items = [
            {"key": {"S": key}, "value": {"S": json.dumps(value, sort_keys=True)}}
            for key, value in relations.items()
        ]
        batch_put(self.dynamodb, self.table, items)

    def keep_level(self, level: Level) -> bool:
        """Keep one location's quantity unless a newer one is kept; False when it was older."""
        at = datetime.fromisoformat(level.at).timestamp()
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"key": {"S": level.key}},
                UpdateExpression="SET #loc = :level",
                ConditionExpression="attribute_not_exists(#loc) OR #loc.#at <= :at",
                ExpressionAttributeNames={"#loc": LOCATION_PREFIX + level.location, "#at": "at"},
                ExpressionAttributeValues={
                    ":level": {"M": {"available": {"N": str(level.available)}, "at": {"N": repr(at)}}},
                    ":at": {"N": repr(at)},
                },
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def total(self, level_keys: list[str]) -> int:
        """The available quantity summed over every location of every inventory item in `level_keys`."""
        wanted = [{"key": {"S": key}} for key in dict.fromkeys(level_keys)]
        return sum(
            int(value["M"]["available"]["N"])
            for item in batch_get(self.dynamodb, self.table, wanted)
            for name, value in item.items()
            if name.startswith(LOCATION_PREFIX)
        )
