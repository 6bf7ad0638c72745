"""A snapshot's ids: 64-bit digests of entity keys (millions in a few MiB), and the ids a line that is not
valid may still name, read by a tolerant JSON scan so that an invalid line never lets its entity be
deleted."""

from __future__ import annotations

import hashlib
import json
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .entity import EntityKey


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
        value = int.from_bytes(hashlib.blake2b(entity.encode(), digest_size=8).digest())  # digest(), inlined
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
    """One open JSON object or array of a line, while its ids are scanned."""

    is_object: bool
    path: tuple[str, ...]  # the keys down to it, at most 3 (deeper than a body's fields)
    state: int
    key: str = ""


def _scalars(text: str) -> Iterator[tuple[tuple[str, ...], str, str]]:
    """(path, kind, piece) of each scalar of a JSON object at depth 1 or 2, read as far as the text is
    JSON: a line cut short, or broken anywhere, still gives what comes before. Iterative: no nesting
    depth can exhaust the stack."""
    stack: list[_Frame] = []
    position = 0
    while found := _TOKEN.match(text, position):
        position = found.end()
        kind = found.lastgroup or ""
        piece = found.group(kind)
        if kind == "punct":
            if not _punctuation(stack, piece):
                return
            continue
        top = stack[-1] if stack else None
        if top is not None and top.is_object and top.state == _KEY:
            if kind != "string":
                return
            top.key, top.state = _text(piece) or "", _COLON
        elif top is not None and top.state == _VALUE:
            path = (*top.path, top.key if top.is_object else "[]")
            if len(path) <= 2:
                yield path, kind, piece
            top.state = _NEXT
        else:
            return


def _punctuation(stack: list[_Frame], piece: str) -> bool:  # noqa: PLR0911 - one return per way a line stops being JSON
    """Apply one of `{[]}:,` to the open frames; False when the text stops being JSON there, or the line's
    object is complete."""
    top = stack[-1] if stack else None
    if piece in "{[":
        if top is None and piece != "{":
            return False  # a line is one object
        if top is not None and top.state != _VALUE:
            return False
        path: tuple[str, ...] = ()
        if top is not None:
            path = (*top.path, top.key if top.is_object else "[]")[:3]  # deeper is all one
            top.state = _NEXT
        stack.append(_Frame(piece == "{", path, _KEY if piece == "{" else _VALUE))
        return True
    if top is None:
        return False
    if piece in "}]":
        if top.is_object != (piece == "}") or (top.is_object and top.state in (_COLON, _VALUE)):
            return False
        stack.pop()
        return bool(stack)  # empty: the object is complete
    if piece == ":":
        if not top.is_object or top.state != _COLON:
            return False
        top.state = _VALUE
        return True
    if top.state != _NEXT:  # ","
        return False
    top.state = _KEY if top.is_object else _VALUE
    return True


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


def category_key(ref: int | str) -> str:
    return str(EntityKey.category(ref))
