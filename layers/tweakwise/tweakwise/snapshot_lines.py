"""The snapshot format: JSON Lines (plain or gzip) read as a stream, every line checked with the
webhook's models, ids checked for repeats, categories put parents first. Pure functions: no AWS."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import pydantic

from .events import (
    Category,
    SnapshotCategory,
    SnapshotHeader,
    SnapshotItem,
    category_entity,
    error_list,
)

MAX_REPORTED = 100  # invalid lines shown in a report
# Entities of invalid lines kept from orphan deletes. More invalid lines refuse any snapshot under 100M
# lines at the default SnapshotMaxInvalidPercent, so the cap only bounds the memory of a refused one.
MAX_HELD = 100_000
CHUNK = 1 << 20
LINE_MODELS: dict[str, type[pydantic.BaseModel]] = {
    "snapshot": SnapshotHeader,
    "category": SnapshotCategory,
    "item": SnapshotItem,
}


def read_lines(raw: Any) -> Iterator[bytes]:
    """The lines of a stream, gzip or plain (told by its first bytes), read in 1 MiB chunks."""
    head = raw.read(2)
    if head == b"\x1f\x8b":
        stream: Any = gzip.GzipFile(fileobj=_Prefixed(head, raw))
    else:
        stream = _Prefixed(head, raw)
    rest = b""
    while chunk := stream.read(CHUNK):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


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


class IdSet:
    """Which ids appear twice among millions, in 8 bytes per id (a set of strings takes ~10x that): 64-bit
    digests in 256 arrays, checked one array at a time at the end."""

    def __init__(self) -> None:
        self.buckets = [array("Q") for _ in range(256)]

    @staticmethod
    def digest(entity: str) -> int:
        return int.from_bytes(hashlib.blake2b(entity.encode(), digest_size=8).digest())

    def add(self, entity: str) -> None:
        value = self.digest(entity)
        self.buckets[value & 0xFF].append(value)

    def repeated(self) -> set[int]:
        found: set[int] = set()
        for bucket in self.buckets:
            seen: set[int] = set()
            for value in bucket:
                if value in seen:
                    found.add(value)
                seen.add(value)
        return found


# -- validation ------------------------------------------------------------------------------------------


@dataclass
class Validation:
    snapshot: str
    taken_at: float  # seconds since the epoch
    lines: int = 0
    items: int = 0
    categories: int = 0
    invalid: int = 0
    invalid_lines: list[dict[str, Any]] = field(default_factory=list)  # the first MAX_REPORTED
    # Entities of invalid lines: not applied, and not orphans either (an invalid line deletes nothing).
    held: list[str] = field(default_factory=list)
    refused: str = ""  # why the whole snapshot is refused ("" when it is not)

    def add_invalid(self, line: int, errors: list[dict[str, str]], entity: str = "") -> None:
        self.invalid += 1
        if len(self.invalid_lines) < MAX_REPORTED:
            self.invalid_lines.append({"line": line, "errors": errors})
        if entity and len(self.held) < MAX_HELD:
            self.held.append(entity)


def _entity_of(document: Any) -> str:
    """The entity key of a line, read loosely (for an invalid line: so it is held, not orphaned)."""
    if not isinstance(document, dict):
        return ""
    kind = document.get("type")
    body = document.get(kind) if kind in ("item", "category") else None
    ref = body.get("id") if isinstance(body, dict) else None
    if kind == "item" and isinstance(ref, str):
        return f"item#{ref}"
    if kind == "category" and isinstance(ref, int | str) and not isinstance(ref, bool):
        return category_key(ref)
    return ""


def check_lines(
    open_lines: Callable[[], Iterable[bytes]],
    items_out: IO[bytes],
    snapshot: str,
    taken_at: float,
    max_invalid_percent: float,
) -> tuple[Validation, list[tuple[int, Category]]]:
    """Check every line; write valid items to `items_out` as one JSON array; return the counts and the
    valid categories, parents first. `open_lines` is called again only to name repeated ids."""
    result = Validation(snapshot, taken_at)
    ids = IdSet()
    categories: list[tuple[int, Category]] = []
    items_out.write(b"[")
    for number, raw in enumerate(open_lines(), start=1):
        if not raw.strip():
            continue
        result.lines += 1
        try:
            document = json.loads(raw)
        except ValueError as exc:
            result.add_invalid(number, [{"path": "(line)", "error": f"not valid JSON: {exc}"}])
            continue
        kind = document.get("type") if isinstance(document, dict) else None
        model = LINE_MODELS.get(kind) if isinstance(kind, str) else None
        if model is None:
            error = "must be one of " + ", ".join(f"'{name}'" for name in LINE_MODELS)
            result.add_invalid(number, [{"path": "type", "error": error}], _entity_of(document))
            continue
        try:
            line = model.model_validate(document)
        except pydantic.ValidationError as exc:
            result.add_invalid(number, error_list(exc), _entity_of(document))
            continue
        if isinstance(line, SnapshotHeader):
            if result.lines != 1:
                error = "a snapshot line may only be the first line"
                result.add_invalid(number, [{"path": "type", "error": error}])
            else:
                result.taken_at = line.takenAt.timestamp()
            continue
        entity = _entity_of(document)
        ids.add(entity)
        if isinstance(line, SnapshotItem):
            items_out.write(b"," if result.items else b"")
            items_out.write(json.dumps(document["item"], separators=(",", ":")).encode())
            result.items += 1
        elif isinstance(line, SnapshotCategory):
            categories.append((number, line.category))
    items_out.write(b"]")
    ordered = order_categories(categories, result)
    result.categories = len(ordered)
    repeated = ids.repeated()
    if repeated:
        result.refused = _name_repeats(open_lines, repeated)
    elif result.lines and result.invalid * 100 > max_invalid_percent * result.lines:
        share = result.invalid * 100 / result.lines
        result.refused = (
            f"{result.invalid} of {result.lines} lines are invalid ({share:.3g} %), "
            f"above SnapshotMaxInvalidPercent ({max_invalid_percent:g} %); nothing was applied"
        )
    elif not result.items and not result.categories:
        result.refused = "the snapshot holds no valid item or category; nothing was applied"
    return result, ordered


def _name_repeats(open_lines: Callable[[], Iterable[bytes]], repeated: set[int]) -> str:
    """Second pass, only when a digest repeats: which ids, on which lines."""
    where: dict[str, list[int]] = {}
    for number, raw in enumerate(open_lines(), start=1):
        try:
            entity = _entity_of(json.loads(raw)) if raw.strip() else ""
        except ValueError:
            continue
        if entity and IdSet.digest(entity) in repeated:
            where.setdefault(entity, []).append(number)
    shown = [
        f"{entity.replace('#', ' ', 1)} on lines {', '.join(map(str, lines[:5]))}"
        for entity, lines in where.items()
        if len(lines) > 1
    ]
    return f"ids appear more than once ({'; '.join(shown[:10])}); nothing was applied"


def order_categories(
    categories: list[tuple[int, Category]], result: Validation
) -> list[tuple[int, Category]]:
    """Parents before children. A category whose key parent is not in the snapshot, or whose parents form
    a cycle, is an invalid line (and so are its children). Numeric parents are Tweakwise ids: trusted."""
    by_entity = {category_key(c.id): (n, c) for n, c in categories}
    children: dict[str, list[str]] = {}
    waiting: dict[str, int] = {}
    unknown: list[tuple[str, str]] = []
    for entity, (_n, category) in by_entity.items():
        inside = []
        for parent in category.parents or []:
            key = category_key(parent)
            if key in by_entity:
                inside.append(key)
            elif isinstance(parent, str):
                unknown.append((entity, f"parent {parent!r} is not a category of this snapshot"))
        waiting[entity] = len(inside)
        for key in inside:
            children.setdefault(key, []).append(entity)
    dropped = {entity for entity, _ in unknown}
    ordered: list[tuple[int, Category]] = []
    ready = [entity for entity, count in waiting.items() if count == 0 and entity not in dropped]
    while ready:
        entity = ready.pop()
        ordered.append(by_entity[entity])
        for child in children.get(entity, []):
            waiting[child] -= 1
            if waiting[child] == 0 and child not in dropped:
                ready.append(child)
    done = {category_key(c.id) for _n, c in ordered}
    reasons = dict(unknown)
    for entity, (number, _category) in sorted(by_entity.items(), key=lambda pair: pair[1][0]):
        if entity not in done:
            reason = reasons.get(entity, "its parents form a cycle, or a parent is invalid")
            result.add_invalid(number, [{"path": "category.parents", "error": reason}], entity)
    return ordered


def category_key(ref: int | str) -> str:
    return "category#" + category_entity(ref)[1]
