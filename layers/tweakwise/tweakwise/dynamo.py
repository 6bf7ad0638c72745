"""DynamoDB conditional writes, the one mechanism the sync state relies on."""

from __future__ import annotations

from typing import Any


def conditional_update(dynamodb: Any, **request: Any) -> bool:
    """UpdateItem with a ConditionExpression: True when written, False when the condition did not hold."""
    try:
        dynamodb.update_item(**request)
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False
    return True
