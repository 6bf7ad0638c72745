"""A snapshot object read as a stream of lines, gzip or plain, in bounded memory whatever it holds."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from typing import Any

from .errors import SnapshotReadError
from .settings import SnapshotSettings

MAX_LINE_BYTES: int = SnapshotSettings.default("max_line_bytes")
CHUNK = 1 << 20


def read_lines(raw: Any, max_line: int = MAX_LINE_BYTES) -> Iterator[bytes]:
    """The lines of a stream, gzip or plain (told by its first bytes), read in 1 MiB chunks. A line over
    `max_line` bytes comes as its first `max_line + 1` bytes (so its length tells it apart), the rest
    of it read past. SnapshotReadError: a gzip stream cut short or corrupt."""
    head = raw.read(2)
    stream: Any = _Prefixed(head, raw)
    if head == b"\x1f\x8b":
        stream = gzip.GzipFile(fileobj=stream)
    pending = bytearray()
    over = False  # inside a line already yielded as too long
    while chunk := _read(stream):
        parts = chunk.split(b"\n")
        last = len(parts) - 1
        for index, part in enumerate(parts):
            if 0 < index < last and len(part) <= max_line:  # a whole line inside the chunk: as it is
                yield part
                continue
            if not over:
                pending += part[: max_line + 1 - len(pending)]
                if len(pending) > max_line:
                    yield bytes(pending)
                    over = True
            if index < last:  # a newline ends the line
                if not over:
                    yield bytes(pending)
                pending.clear()
                over = False
    if pending and not over:
        yield bytes(pending)


def _read(stream: Any) -> bytes:
    try:
        return stream.read(CHUNK)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        reason = "ends before its end" if isinstance(exc, EOFError) else f"is corrupt ({exc})"
        raise SnapshotReadError(f"the gzip stream {reason}") from None


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were read already (to tell gzip from plain text)."""

    def __init__(self, head: bytes, raw: Any):  # a file or a botocore StreamingBody
        self.head, self.raw = head, raw

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.head:
            head, self.head = self.head, b""
            return head + (self.raw.read(size - len(head)) if size > len(head) else b"")
        return self.raw.read(size) if size >= 0 else self.raw.read()

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
