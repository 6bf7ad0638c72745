"""Tweakwise's answers read: a stats count (its shape is undocumented), and every answer that is not a 2xx
as the typed error (`errors.py`) it stands for, a 400's details scrubbed of secret values and cut."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import requests

from . import secrecy
from .errors import (
    ApiError,
    AuthenticationError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    ServerError,
    UnexpectedResponseError,
)

# The credentials were refused: the token may have been rotated.
REFUSED = frozenset({HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN})
# What is kept of a Tweakwise 400 answer: each text at most this long, at most this many errors.
MAX_DETAIL = 300
MAX_ERRORS = 20


def parse_count(payload: Any) -> int:
    """Read a count from a stats answer, whose shape is undocumented: a bare number, a numeric string,
    or an object with one numeric field (any name)."""
    if isinstance(payload, bool):
        raise ValueError("a boolean is not a count")
    if isinstance(payload, int):
        return payload
    if isinstance(payload, float) and payload.is_integer():
        return int(payload)
    if isinstance(payload, str) and payload.strip().isdigit():
        return int(payload.strip())
    if isinstance(payload, dict):
        numbers = [parse_count(v) for v in payload.values() if _is_count(v)]
        if len(numbers) == 1:
            return numbers[0]
    raise ValueError(f"no count in {type(payload).__name__} answer")


def _is_count(value: Any) -> bool:
    try:
        parse_count(value)
    except ValueError:
        return False
    return not isinstance(value, dict)


def error_of(method: str, shown: str, response: requests.Response) -> ApiError:
    """The typed error of a Tweakwise answer that is not a 2xx."""
    status = response.status_code
    if status in REFUSED:
        return AuthenticationError(method, shown, status)
    if status == HTTPStatus.NOT_FOUND:
        return NotFoundError(method, shown, status)
    if status == HTTPStatus.BAD_REQUEST:
        message, errors = _validation_details(response)
        return RejectedError(method, shown, status, message, errors)
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        retry_after = response.headers.get("Retry-After", "")
        return RateLimitedError(method, shown, status, float(retry_after) if retry_after.isdigit() else None)
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return ServerError(method, shown, status)
    return UnexpectedResponseError(method, shown, status)


def _validation_details(response: requests.Response) -> tuple[str, list[str]]:
    """Tweakwise's 400 body: {"Message": str, "Errors": [{"Error": str}]} (keys in any case), each text
    scrubbed of secret values and then cut (`secrecy.clip`), at most MAX_ERRORS of them."""
    try:
        payload = response.json()
    except ValueError:
        return (secrecy.clip(response.text.strip(), MAX_DETAIL), [])
    if not isinstance(payload, dict):
        return ("", [])
    lowered = {str(k).lower(): v for k, v in payload.items()}
    message = lowered.get("message") or ""
    errors: list[str] = []
    entries = lowered.get("errors")
    for entry in entries[:MAX_ERRORS] if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            text = next((v for k, v in entry.items() if str(k).lower() == "error"), None)
            if text:
                errors.append(secrecy.clip(str(text), MAX_DETAIL))
        elif isinstance(entry, str):
            errors.append(secrecy.clip(entry, MAX_DETAIL))
    return (secrecy.clip(str(message), MAX_DETAIL), errors)
