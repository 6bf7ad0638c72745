"""The snapshot's plan never skips a line the batch would send: its rule is `Change.unchanged`'s, over the
ledger as one scan read it."""

from __future__ import annotations

import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tweakwise.entity import EntityKey
from tweakwise.ledger import Entry, field_digests
from tweakwise.snapshot_plan import ITEM_FIELDS, LedgerIndex, item_lines, plan
from tweakwise.sync import Change


def _entry(ref: str, body: dict, kind: str = "item") -> Entry:
    entity = EntityKey.item(ref) if kind == "item" else EntityKey.category(ref)
    return Entry(entity, field_digests(body), occurred_at=1.0)


BODY = {"Name": "Shoe", "Price": 10, "Stock": 3, "Brand": "B", "Categories": [1], "Attributes": []}


def test_a_line_is_unchanged_only_when_the_ledger_holds_each_of_its_fields_alike():
    index = LedgerIndex([_entry("A", BODY), _entry("shoes", {"Name": "Shoes"}, "category")])
    a = EntityKey.item("A")
    assert len(index) == 1  # categories are not planned: the categories step applies them
    assert index.unchanged(a, BODY)
    assert index.unchanged(a, {"Stock": 3})  # a patch of one field, the same value
    assert not index.unchanged(a, {"Stock": 4})
    assert not index.unchanged(a, {**BODY, "Url": "https://x"})  # a field the ledger never had
    assert not index.unchanged(a, {**BODY, "Name": "Shoe "})
    assert not index.unchanged(EntityKey.item("B"), BODY)  # new to this stack
    assert not index.unchanged(a, {"Unknown": 1})


VALUES = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.lists(st.integers(0, 3), max_size=2))
BODIES = st.dictionaries(st.sampled_from(ITEM_FIELDS), VALUES, max_size=len(ITEM_FIELDS))


@settings(max_examples=300, deadline=None)
@given(ledger=st.one_of(st.none(), BODIES), body=BODIES)
def test_the_plan_agrees_with_the_batchs_own_rule(ledger, body):
    entity = EntityKey.item("A")
    entry = _entry("A", ledger) if ledger is not None else None
    index = LedgerIndex([entry] if entry else [])
    change = Change(event=None, entity=entity, body=body)
    assert index.unchanged(entity, body) == change.unchanged(entry)


def test_the_plan_writes_the_changed_lines_as_a_json_array_and_counts_the_rest():
    index = LedgerIndex([_entry("A", BODY)])
    lines = [{"item": {"id": ref}} for ref in ("A", "B", "C")]
    raw = b"[\n" + b",\n".join(json.dumps(line).encode() for line in lines) + b"\n]"
    out = io.BytesIO()

    def body_of_line(line):
        return EntityKey.item(line["item"]["id"]), BODY

    assert plan(item_lines(raw.splitlines()), index, body_of_line, out) == (2, 1)
    assert json.loads(out.getvalue()) == lines[1:]
    out = io.BytesIO()
    assert plan(item_lines([b"[", b"]"]), index, body_of_line, out) == (0, 0)
    assert json.loads(out.getvalue()) == []
