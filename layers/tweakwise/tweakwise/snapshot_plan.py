"""The snapshot's plan: which item lines differ from what the ledger says Tweakwise holds. Only those go to
the Distributed Map, so a night whose catalog did not change starts no Map batch, writes nothing and
sends Tweakwise nothing; the Map's batches still check each line against the ledger before they send it.

The ledger is read once (one scan) into `LedgerIndex`: per item, 64 bits of its id's digest and 64 bits
of each field's digest, in sorted arrays (about 90 bytes an item: a million items in ~90 MB). A line is
unchanged when the ledger holds every field it sets with the same digest: `sync.Change.unchanged`'s
rule, so the plan never skips a line the batch would send. A 64-bit collision makes a line look changed
or new (the batch then decides, exactly): never the other way round but with odds of 2^-64.
"""

from __future__ import annotations

import json
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import IO, Any

from .entity import EntityKey
from .errors import UnknownCategoryError
from .ledger import Entry, field_digests
from .mapping import FIELDS
from .snapshot_ids import digest

# Every Tweakwise field an item body can set (mapping.to_item_fields): one column each.
ITEM_FIELDS = (*(target for _source, target in FIELDS), "Categories", "Attributes")
_COLUMN = {name: index for index, name in enumerate(ITEM_FIELDS)}


def _short(field_digest: str | None) -> int:
    """64 bits of a field's digest (0: the ledger has no such field)."""
    return int(field_digest[:16], 16) if field_digest else 0


class LedgerIndex:
    """The ledger's items, sorted by their id's digest, with 64 bits of each field's digest."""

    def __init__(self, entries: Iterable[Entry]):
        ids, columns = array("Q"), [array("Q") for _ in ITEM_FIELDS]
        for entry in entries:
            if entry.entity.kind != "item":
                continue
            ids.append(digest(str(entry.entity)))
            for name, column in zip(ITEM_FIELDS, columns, strict=True):
                column.append(_short(entry.fields.get(name)))
        order = sorted(range(len(ids)), key=ids.__getitem__)
        self.ids = array("Q", (ids[i] for i in order))
        self.columns = [array("Q", (column[i] for i in order)) for column in columns]

    def __len__(self) -> int:
        return len(self.ids)

    def holds(self, entity: EntityKey) -> bool:
        """Whether this stack wrote the item before."""
        key = digest(str(entity))
        at = bisect_left(self.ids, key)
        return at < len(self.ids) and self.ids[at] == key

    def unchanged(self, entity: EntityKey, body: dict[str, Any]) -> bool:
        """Whether the ledger holds every field of `body` with the same value already."""
        key = digest(str(entity))
        at = bisect_left(self.ids, key)
        if at == len(self.ids) or self.ids[at] != key:
            return False  # new to this stack
        for name, field_digest in field_digests(body).items():
            column = _COLUMN.get(name)
            if column is None or self.columns[column][at] != _short(field_digest):
                return False
        return True


def item_lines(raw_lines: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of items.json as validation writes it: "[", a line each (all but the last followed by a
    comma), "]"."""
    for raw in raw_lines:
        line = raw.strip().removesuffix(b",")
        if line not in (b"", b"[", b"]"):
            yield line


def plan(
    lines: Iterable[bytes], index: LedgerIndex, body_of_line: Any, changed_out: IO[bytes]
) -> tuple[int, int]:
    """Write the changed lines to `changed_out` as a JSON array; return (changed, unchanged).
    `body_of_line`: a line's entity and Tweakwise body, as the apply path maps it."""
    changed = unchanged = 0
    changed_out.write(b"[")
    for line in lines:
        try:
            entity, body = body_of_line(json.loads(line))
        except UnknownCategoryError:  # the batch reports it, with its reason
            entity, body = None, None
        if entity is not None and index.unchanged(entity, body):
            unchanged += 1
            continue
        changed_out.write(b",\n" + line if changed else b"\n" + line)
        changed += 1
    changed_out.write(b"\n]")
    return changed, unchanged
