"""The snapshot format: JSON Lines (plain or gzip) read as a stream, every line checked with the
webhook's models, ids checked for repeats, categories put parents first. Pure functions: no AWS.

Bounded whatever the input: a line longer than `max_line` bytes is read past, only its first bytes kept
(to read its id); at most MAX_CATEGORIES categories, MAX_HELD held ids and a few lines per repeated id are
kept; reading is linear in the input. An invalid line never lets its item be deleted: every id that can be
read from it is held, and a line that names no readable id keeps the snapshot from deleting anything.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

import pydantic

from .catalog import Category, error_list
from .entity import EntityKey
from .errors import SnapshotReadError
from .snapshot_ids import IdSet, category_key, digest, line_entities
from .snapshot_models import (
    SNAPSHOT_LINE_ADAPTER,
    SnapshotCategory,
    SnapshotHeader,
    SnapshotItem,
    SnapshotItemPatch,
)
from .snapshot_stream import MAX_LINE_BYTES

MAX_REPORTED = 100  # invalid lines shown in a report
# Ids of invalid lines held back from orphan deletes. More invalid lines refuse any snapshot under 100M
# lines at the default SnapshotMaxInvalidPercent; past the cap, the snapshot deletes nothing at all.
MAX_HELD = 100_000
# Categories kept in memory to put parents first (each at most a line long). More refuse the snapshot.
MAX_CATEGORIES = 100_000
MAX_UNIDENTIFIED_REPORTED = 10
REPEATS_NAMED, REPEAT_LINES_NAMED = 10, 5
_SCOPE_ERRORS = {
    "full": 'an item.patch line belongs to a patch snapshot: one whose first line is {"type": "snapshot", '
    '"takenAt": ..., "scope": "patch"}',
    "patch": "a patch snapshot holds item.patch lines only",
}
LINE_MODELS: dict[str, type[pydantic.BaseModel]] = {
    "snapshot": SnapshotHeader,
    "category": SnapshotCategory,
    "item": SnapshotItem,
    "item.patch": SnapshotItemPatch,
}


# -- validation ------------------------------------------------------------------------------------------


@dataclass
class Validation:
    """A snapshot's validation as it goes: its header, counts, ids and errors."""

    snapshot: str
    taken_at: float  # seconds since the epoch: the header's takenAt, never later than the upload
    scope: str = "full"  # the header's: "patch" holds item.patch lines only and deletes nothing
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
            "scope": self.scope,
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
    items_out.write(b"[\n")
    gc.freeze()  # the objects alive now (modules, schemas) are left out of the collections a line causes
    try:
        for number, raw in enumerate(open_lines(), start=1):
            run.check(number, raw)
    except SnapshotReadError as exc:
        result.refused = f"{exc} after line {number}; nothing was applied"
        result.add_invalid(number + 1, [{"path": "(file)", "error": str(exc)}], [])
    finally:
        gc.unfreeze()
    items_out.write(b"\n]")
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
    validate_json: Callable[[bytes], Any] = SNAPSHOT_LINE_ADAPTER.validator.validate_json

    def invalid(self, number: int, path: str, error: str, raw: bytes) -> None:
        self.result.add_invalid(number, [{"path": path, "error": error}], line_entities(raw))

    def check(self, number: int, raw: bytes) -> None:
        result = self.result
        if not raw or raw.isspace():
            return
        result.lines += 1
        if len(raw) > self.max_line:
            error = f"the line is over {self.max_line} bytes (SnapshotMaxLineBytes); it was read past"
            self.invalid(number, "(line)", error, raw)
            return
        try:  # parsed and checked in one pass, by the adapter's own validator: nearly every line
            line = self.validate_json(raw)
        except (pydantic.ValidationError, ValueError, RecursionError):
            # The line-by-line path, for its errors (and for the encodings json.loads also reads).
            line = self.check_parsed(number, raw)
            if line is None:
                return
            raw = json.dumps(line.model_dump(mode="json", exclude_unset=True)).encode()
        kind = type(line)
        if kind is SnapshotItem or kind is SnapshotItemPatch:
            if (kind is SnapshotItemPatch) != (result.scope == "patch"):
                self.invalid(number, "type", _SCOPE_ERRORS[result.scope], raw)
                return
            self.ids.add(EntityKey.item_text(line.item.id))
            # The line as it came (one JSON document): the Distributed Map's item, read again by `apply`.
            self.items_out.write(b",\n" + raw if result.items else raw)  # a line each: the plan streams it
            result.items += 1
        elif kind is SnapshotCategory:
            if result.scope == "patch":
                self.invalid(number, "type", _SCOPE_ERRORS["patch"], raw)
                return
            self.ids.add(category_key(line.category.id))
            if len(self.categories) < MAX_CATEGORIES:
                self.categories.append((number, line.category))
        else:
            self.header(number, line)

    def check_parsed(self, number: int, raw: bytes) -> pydantic.BaseModel | None:
        """json.loads, then the model its type names: the line, or None when it is invalid (recorded)."""
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
            self.invalid(number, "(line)", f"not valid JSON: {reason}", raw)
            return None
        kind = document.get("type") if isinstance(document, dict) else None
        model = LINE_MODELS.get(kind) if isinstance(kind, str) else None
        if model is None:
            self.invalid(number, "type", "must be one of " + ", ".join(f"'{n}'" for n in LINE_MODELS), raw)
            return None
        try:
            return model.model_validate(document)
        except pydantic.ValidationError as exc:
            self.result.add_invalid(number, error_list(exc), line_entities(raw))
        except RecursionError:
            self.invalid(number, "(line)", "nested too deeply", raw)
        return None

    def header(self, number: int, line: SnapshotHeader) -> None:
        if self.result.lines != 1:
            self.result.add_invalid(
                number, [{"path": "type", "error": "a snapshot line may only be the first line"}], []
            )
            return
        self.result.scope = line.scope
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
