"""A value made on first use: for a boto3 client that most invocations never need.

Making a boto3 client costs 20-45 % of `import boto3` (docs/benchmarks.md, the floor rows), so a handler
makes at init only the clients every invocation uses and leaves the others to `Lazy`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class Lazy(Generic[T]):
    """`Lazy(value)` or `Lazy(make)`: `get()` returns the value, calling `make` once on the first `get`,
    whichever thread asks first (boto3's session is not safe to make clients from two threads at once)."""

    def __init__(self, value: T | Callable[[], T]):
        self._make: Callable[[], T] | None = value if callable(value) else None
        self._value: T | None = None if callable(value) else value
        self._lock = threading.Lock()

    def get(self) -> T:
        if self._make is not None:
            with self._lock:
                if self._make is not None:
                    self._value, self._make = self._make(), None
        return cast("T", self._value)
