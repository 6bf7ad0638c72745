"""The snapshot format: JSON Lines (plain or gzip) read as a stream, every line checked with the
webhook's models, ids checked for repeats, categories put parents first. Pure functions: no AWS.

Bounded whatever the input: a line longer than `max_line` bytes is read past, only its first bytes kept
(to read its id); at most MAX_CATEGORIES categories, MAX_HELD held ids and a few lines per repeated id are
kept; reading is linear in the input. An invalid line never lets its item be deleted: every id that can be
read from it is held, and a line that names no readable id keeps the snapshot from deleting anything.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import pydantic

from .entity import EntityKey
from .errors import SnapshotReadError
from .events import (
    Category,
    SnapshotCategory,
    SnapshotHeader,
    SnapshotItem,
    error_list,
)

MAX_REPORTED = 100  # invalid lines shown in a report
# Ids of invalid lines held back from orphan deletes. More invalid lines refuse any snapshot under 100M
# lines at the default SnapshotMaxInvalidPercent; past the cap, the snapshot deletes nothing at all.
MAX_HELD = 100_000
# Categories kept in memory to put parents first (each at most a line long). More refuse the snapshot.
MAX_CATEGORIES = 100_000
MAX_LINE_BYTES = 262_144  # SnapshotMaxLineBytes' default: a Step Functions item's own limit (256 KiB)
MAX_UNIDENTIFIED_REPORTED = 10
REPEATS_NAMED, REPEAT_LINES_NAMED = 10, 5
CHUNK = 1 << 20
LINE_MODELS: dict[str, type[pydantic.BaseModel]] = {
    "snapshot": SnapshotHeader,
    "category": SnapshotCategory,
    "item": SnapshotItem,
}


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
        for index, part in enumerate(parts):
            if not over:
                pending += part[: max_line + 1 - len(pending)]
                if len(pending) > max_line:
                    yield bytes(pending)
                    over = True
            if index < len(parts) - 1:  # a newline ends the line
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


def digest(entity: str) -> int:
    """An entity key as 64 bits: sets of millions of ids in 8 bytes each."""
    return int.from_bytes(hashlib.blake2b(entity.encode(), digest_size=8).digest())


class IdSet:
    """Which ids appear twice among millions, in 8 bytes per id (a set of strings takes ~10x that): 64-bit
    digests in 256 arrays, checked one array at a time at the end."""

    digest = staticmethod(digest)

    def __init__(self) -> None:
        self.buckets = [array("Q") for _ in range(256)]

    def add(self, entity: str) -> None:
        value = digest(entity)
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

    def sorted(self, extra: Iterable[int] = ()) -> array[int]:
        """Every digest, and `extra`'s, sorted: what `contains` searches."""
        values = array("Q", extra)
        for bucket in self.buckets:
            values.extend(bucket)
        return array("Q", sorted(values))


def contains(ids: array[int], entity: str) -> bool:
    """Whether `entity` is in a sorted digest array (a 64-bit collision keeps an entity: the safe side)."""
    value = digest(entity)
    at = bisect_left(ids, value)
    return at < len(ids) and ids[at] == value


# -- the ids of a line that is not valid ------------------------------------------------------------------

# One JSON token, strings with any character (a raw control character makes a line invalid, not its id
# unreadable). Possessive quantifiers: an unterminated string is given up in linear time.
_TOKEN = re.compile(
    r'[ \t\r\n]*+(?:(?P<string>"[^"\\]*+(?:\\.[^"\\]*+)*+")|(?P<number>-?\d++(?:\.\d++)?(?:[eE][+-]?\d++)?)'
    r"|(?P<literal>true|false|null)|(?P<punct>[{}\[\]:,]))",
    re.DOTALL,
)
_KEY, _COLON, _VALUE, _NEXT = range(4)


@dataclass
class _Frame:
    is_object: bool
    path: tuple[str, ...]  # the keys down to it, at most 3 (deeper than a body's fields)
    state: int
    key: str = ""


def _scalars(text: str) -> Iterator[tuple[tuple[str, ...], str, str]]:  # noqa: PLR0911 - one return per way a line stops being JSON
    """(path, kind, piece) of each scalar of a JSON object at depth 1 or 2, read as far as the text is
    JSON: a line cut short, or broken anywhere, still gives what comes before. Iterative: no nesting
    depth can exhaust the stack."""
    stack: list[_Frame] = []
    position = 0
    while True:
        found = _TOKEN.match(text, position)
        if found is None:
            return
        position = found.end()
        kind = found.lastgroup or ""
        piece = found.group(kind)
        top = stack[-1] if stack else None
        if kind == "punct" and piece in "{[":
            if top is None:
                if piece != "{":
                    return  # a line is one object
                path: tuple[str, ...] = ()
            elif top.state != _VALUE:
                return
            else:
                path = (*top.path, top.key if top.is_object else "[]")[:3]  # deeper is all one
                top.state = _NEXT
            stack.append(_Frame(piece == "{", path, _KEY if piece == "{" else _VALUE))
        elif kind == "punct" and piece in "}]":
            if (
                top is None
                or top.is_object != (piece == "}")
                or (top.is_object and top.state in (_COLON, _VALUE))
            ):
                return
            stack.pop()
            if not stack:
                return  # the object is complete
        elif kind == "punct" and piece == ":":
            if top is None or not top.is_object or top.state != _COLON:
                return
            top.state = _VALUE
        elif kind == "punct":  # ","
            if top is None or top.state != _NEXT:
                return
            top.state = _KEY if top.is_object else _VALUE
        elif top is not None and top.is_object and top.state == _KEY:
            if kind != "string":
                return
            top.key = _text(piece) or ""
            top.state = _COLON
        elif top is not None and top.state == _VALUE:
            path = (*top.path, top.key if top.is_object else "[]")
            if len(path) <= 2:
                yield path, kind, piece
            top.state = _NEXT
        else:
            return


def _text(piece: str) -> str | None:
    """A string piece's text; None when it is not readable text (bad escapes, lone surrogates, bytes
    that were not UTF-8)."""
    try:
        value = json.loads(piece, strict=False)
        value.encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return None
    return value


def _refs(kinds: set[str], kind: str, piece: str) -> list[str] | None:
    """The entity keys an id value may stand for; None when it is no readable id."""
    if kind == "string":
        value = _text(piece)
        if value is None:
            return None
        found = [str(EntityKey.item(value))] if "item" in kinds else []
        return found + ([category_key(value)] if "category" in kinds else [])
    if kind != "number":
        return None
    texts = {piece}
    try:
        number = float(piece)
    except (ValueError, OverflowError):
        number = float("nan")
    if number.is_integer() and ("." in piece or "e" in piece.lower()):
        texts.add(str(int(number)))
    found = [str(EntityKey.item(text)) for text in sorted(texts)] if "item" in kinds else []
    if "category" in kinds:
        found += [category_key(text) for text in sorted(texts)]
        found += [category_key(int(text)) for text in sorted(texts) if text.isdigit()]
    return found


def line_entities(raw: bytes) -> list[str] | None:
    """The entity keys a line that is not valid may describe, read as far as it is JSON: its body's id
    (`item`, `category` or any other object's `id`) and any `id`, `itemId` or `categoryId` of the line
    itself, taken as the kind its `type` names, or as both kinds when it names neither. [] for a header
    line; None when the line names no id that can be read (its entity cannot be known)."""
    text = raw.decode("utf-8", "surrogateescape")  # bytes that are not UTF-8 make their string unreadable
    fields: dict[str, tuple[str, str]] = {}
    bodies: list[tuple[str, str, str]] = []
    for path, kind, piece in _scalars(text):
        if len(path) == 1:
            fields.setdefault(path[0].lower(), (kind, piece))
        elif path[1].lower() == "id":
            bodies.append((path[0].lower(), kind, piece))
    kind, piece = fields.get("type", ("", ""))
    named = (_text(piece) or "").lower() if kind == "string" else ""
    typed = {k for k in ("item", "category") if named.startswith(k)}
    found: list[str] = []
    candidates = [
        (typed | ({key} & {"item", "category"}) or {"item", "category"}, k, t) for key, k, t in bodies
    ]
    for key, kinds in (
        ("id", typed or {"item", "category"}),
        ("itemid", {"item"}),
        ("categoryid", {"category"}),
    ):
        if key in fields:
            candidates.append((kinds, *fields[key]))
    for kinds, kind, piece in candidates:
        refs = _refs(kinds, kind, piece)
        if refs is None:
            return None  # an id is there but cannot be read: the line's entity is unknown
        found += refs
    if not found:
        return [] if named == "snapshot" else None
    return list(dict.fromkeys(found))


# -- validation ------------------------------------------------------------------------------------------


@dataclass
class Validation:
    snapshot: str
    taken_at: float  # seconds since the epoch: the header's takenAt, never later than the upload
    lines: int = 0
    items: int = 0
    categories: int = 0
    invalid: int = 0
    invalid_lines: list[dict[str, Any]] = field(default_factory=list)  # the first MAX_REPORTED
    # Entities of invalid lines: not applied, and not orphans either (an invalid line deletes nothing).
    held: list[str] = field(default_factory=list)
    held_overflow: bool = False  # more than MAX_HELD: too many to hold, so nothing may be deleted
    unidentified: int = 0  # invalid lines that name no readable id: nothing may be deleted
    unidentified_lines: list[int] = field(default_factory=list)  # the first MAX_UNIDENTIFIED_REPORTED
    taken_at_given: float | None = None  # the header's takenAt when it was later than the upload
    refused: str = ""  # why the whole snapshot is refused ("" when it is not)

    def add_invalid(self, line: int, errors: list[dict[str, str]], entities: list[str] | None) -> None:
        """An invalid line, and the entities it may describe (None: none can be read from it)."""
        self.invalid += 1
        if len(self.invalid_lines) < MAX_REPORTED:
            self.invalid_lines.append({"line": line, "errors": errors})
        if entities is None:
            self.unidentified += 1
            if len(self.unidentified_lines) < MAX_UNIDENTIFIED_REPORTED:
                self.unidentified_lines.append(line)
            return
        for entity in entities:
            if len(self.held) >= MAX_HELD:
                self.held_overflow = True
                return
            self.held.append(entity)

    def keeps_orphans(self) -> str:
        """Why this snapshot may delete nothing at all ("" when it may delete its orphans)."""
        if self.unidentified:
            lines = ", ".join(map(str, self.unidentified_lines))
            more = ", ..." if self.unidentified > len(self.unidentified_lines) else ""
            return (
                f"{self.unidentified} invalid lines name no id that can be read (line {lines}{more}), so "
                "the snapshot cannot tell what it lacks: nothing was deleted"
            )
        if self.held_overflow:
            return f"more than {MAX_HELD} ids of invalid lines to hold back: nothing was deleted"
        return ""

    def summary(self) -> dict[str, Any]:
        """What the state machine's later steps and the report read (not the held ids themselves)."""
        return {
            "snapshot": self.snapshot,
            "taken_at": self.taken_at,
            "taken_at_given": self.taken_at_given,
            "lines": self.lines,
            "items": self.items,
            "categories": self.categories,
            "invalid": self.invalid,
            "invalid_lines": self.invalid_lines,
            "held": len(self.held),
            "keeps_orphans": self.keeps_orphans(),
            "refused": self.refused,
        }


def check_lines(
    open_lines: Callable[[], Iterable[bytes]],
    items_out: IO[bytes],
    snapshot: str,
    uploaded_at: float,
    max_invalid_percent: float,
    *,
    max_line: int = MAX_LINE_BYTES,
) -> tuple[Validation, list[tuple[int, Category]], IdSet]:
    """Check every line; write valid items to `items_out` as one JSON array; return the counts, the valid
    categories, parents first, and the ids of the valid lines. `open_lines` (lines as `read_lines` gives
    them) is called again only to name repeated ids. A header's takenAt later than `uploaded_at` (the
    object's upload) is taken as the upload: a snapshot cannot be newer than itself."""
    run = _Checker(Validation(snapshot, uploaded_at), items_out, uploaded_at, max_line)
    result, number = run.result, 0
    items_out.write(b"[")
    try:
        for number, raw in enumerate(open_lines(), start=1):
            run.check(number, raw)
    except SnapshotReadError as exc:
        result.refused = f"{exc} after line {number}; nothing was applied"
        result.add_invalid(number + 1, [{"path": "(file)", "error": str(exc)}], [])
    items_out.write(b"]")
    ordered = order_categories(run.categories, result)
    result.categories = len(ordered)
    if result.refused:
        return result, ordered, run.ids
    repeated = run.ids.repeated()
    if repeated:
        result.refused = _name_repeats(open_lines, repeated)
    elif len(run.categories) >= MAX_CATEGORIES:
        result.refused = f"the snapshot holds more than {MAX_CATEGORIES} categories; nothing was applied"
    elif result.lines and result.invalid * 100 > max_invalid_percent * result.lines:
        share = result.invalid * 100 / result.lines
        result.refused = (
            f"{result.invalid} of {result.lines} lines are invalid ({share:.3g} %), "
            f"above SnapshotMaxInvalidPercent ({max_invalid_percent:g} %); nothing was applied"
        )
    elif not result.items and not result.categories:
        result.refused = "the snapshot holds no valid item or category; nothing was applied"
    return result, ordered, run.ids


@dataclass
class _Checker:
    """One validation's state, a line at a time."""

    result: Validation
    items_out: IO[bytes]
    uploaded_at: float
    max_line: int
    ids: IdSet = field(default_factory=IdSet)
    categories: list[tuple[int, Category]] = field(default_factory=list)

    def invalid(self, number: int, path: str, error: str, raw: bytes) -> None:
        self.result.add_invalid(number, [{"path": path, "error": error}], line_entities(raw))

    def check(self, number: int, raw: bytes) -> None:
        result = self.result
        if not raw.strip():
            return
        result.lines += 1
        if len(raw) > self.max_line:
            error = f"the line is over {self.max_line} bytes (SnapshotMaxLineBytes); it was read past"
            self.invalid(number, "(line)", error, raw)
            return
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
            self.invalid(number, "(line)", f"not valid JSON: {reason}", raw)
            return
        kind = document.get("type") if isinstance(document, dict) else None
        model = LINE_MODELS.get(kind) if isinstance(kind, str) else None
        if model is None:
            self.invalid(number, "type", "must be one of " + ", ".join(f"'{n}'" for n in LINE_MODELS), raw)
            return
        try:
            line = model.model_validate(document)
        except pydantic.ValidationError as exc:
            result.add_invalid(number, error_list(exc), line_entities(raw))
            return
        except RecursionError:
            self.invalid(number, "(line)", "nested too deeply", raw)
            return
        if isinstance(line, SnapshotHeader):
            self.header(number, line)
        elif isinstance(line, SnapshotItem):
            self.ids.add(str(EntityKey.item(line.item.id)))
            self.items_out.write(b"," if result.items else b"")
            self.items_out.write(json.dumps(document["item"], separators=(",", ":")).encode())
            result.items += 1
        elif isinstance(line, SnapshotCategory):
            self.ids.add(category_key(line.category.id))
            if len(self.categories) < MAX_CATEGORIES:
                self.categories.append((number, line.category))

    def header(self, number: int, line: SnapshotHeader) -> None:
        if self.result.lines != 1:
            self.result.add_invalid(
                number, [{"path": "type", "error": "a snapshot line may only be the first line"}], []
            )
            return
        given = line.takenAt.timestamp()
        if given > self.uploaded_at:
            self.result.taken_at_given = given
        self.result.taken_at = min(given, self.uploaded_at)


def _name_repeats(open_lines: Callable[[], Iterable[bytes]], repeated: set[int]) -> str:
    """Second pass, only when a digest repeats: which ids, on which lines (a few of each)."""
    where: dict[str, list[int]] = {}
    for number, raw in enumerate(open_lines(), start=1):
        try:
            document = json.loads(raw) if raw.strip() else None
        except (ValueError, RecursionError):
            continue
        entity = _valid_entity(document)
        if not entity or digest(entity) not in repeated:
            continue
        lines = where.get(entity)
        if lines is None:
            if len(where) >= REPEATS_NAMED * 100:  # bounded: only the first few are named anyway
                continue
            lines = where[entity] = []
        if len(lines) < REPEAT_LINES_NAMED:
            lines.append(number)
    shown = [
        f"{entity.replace('#', ' ', 1)} on lines {', '.join(map(str, lines))}"
        for entity, lines in where.items()
        if len(lines) > 1
    ]
    return f"ids appear more than once ({'; '.join(shown[:REPEATS_NAMED])}); nothing was applied"


def _valid_entity(document: Any) -> str:
    """The entity key of a line that passed validation (read again from its JSON)."""
    if not isinstance(document, dict):
        return ""
    kind = document.get("type")
    body = document.get(kind) if kind in ("item", "category") else None
    ref = body.get("id") if isinstance(body, dict) else None
    if kind == "item" and isinstance(ref, str):
        return str(EntityKey.item(ref))
    if kind == "category" and isinstance(ref, int | str) and not isinstance(ref, bool):
        return category_key(ref)
    return ""


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
            result.add_invalid(number, [{"path": "category.parents", "error": reason}], [entity])
    return ordered


def category_key(ref: int | str) -> str:
    return str(EntityKey.category(ref))
