"""Snapshot rules without AWS: reading, line checks, category order, ids, the schema file."""

from __future__ import annotations

import functools
import gzip
import io
import json

import jsonschema
import pytest

from conftest import ROOT
from scripts import snapshot_schema
from tweakwise import snapshot_lines, snapshot_store, snapshot_stream
from tweakwise.catalog import Category
from tweakwise.errors import SnapshotInputError
from tweakwise.ledger import body_digest
from tweakwise.snapshot_contract import object_key
from tweakwise.snapshot_ids import IdSet, line_entities
from tweakwise.snapshot_lines import Validation, check_lines, order_categories
from tweakwise.snapshot_stream import read_lines

EXAMPLE = ROOT / "events" / "catalog_snapshot.jsonl"


UPLOADED = 4_000_000_000.0  # the object's upload time: far after any takenAt of these tests


def _check(lines: list, max_invalid_percent: float = 0.1, uploaded: float = UPLOADED):
    raw = [(line if isinstance(line, (str, bytes)) else json.dumps(line)) for line in lines]
    raw = [line.encode() if isinstance(line, str) else line for line in raw]
    out = io.BytesIO()
    result, categories, _ids = check_lines(lambda: iter(raw), out, "s", uploaded, max_invalid_percent)
    return result, categories, [line["item"] for line in json.loads(out.getvalue())]


def _item(ref: str, **fields) -> dict:
    return {"type": "item", "item": {"id": ref, "name": "N", "price": 1, "stock": 1, **fields}}


def test_the_schema_file_is_generated_from_the_models():
    assert (ROOT / "docs" / "snapshot-line.schema.json").read_text() == snapshot_schema.text()


def test_the_example_snapshot_is_valid_by_the_schema_and_the_models():
    schema = json.loads((ROOT / "docs" / "snapshot-line.schema.json").read_text())
    lines = EXAMPLE.read_text().splitlines()
    for line in lines:
        jsonschema.validate(json.loads(line), schema)
    result, categories, items = _check(lines)
    assert result.invalid == 0 and not result.refused
    ids = [c.id for _, c in categories]
    assert sorted(ids) == ["sale", "shoes", "trail-running"] and ids.index("shoes") < ids.index(
        "trail-running"
    )
    assert [i["id"] for i in items] == ["SKU-1", "SKU-2", "SKU-3"]
    assert result.taken_at == 1795834800.0  # 2026-11-28T03:00:00Z, from the first line


def test_the_schema_refuses_what_the_models_refuse():
    schema = json.loads((ROOT / "docs" / "snapshot-line.schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_item("A", colour="red"), schema)
    result, _, _ = _check([_item("A", colour="red")], 100)
    assert result.invalid_lines == [
        {"line": 1, "errors": [{"path": "item.colour", "error": "Extra inputs are not permitted"}]}
    ]


def _category(ref, **fields) -> dict:
    return {"type": "category", "category": {"id": ref, "name": "C", **fields}}


def _attributes(**values) -> dict:
    return _item("A", attributes=values)


SCHEMA_CASES = {
    # name: (line, valid by both the models and the schema)
    "item, fields given": (
        _item("A", brand="B", groupCode="G", image="", url="u", categories=[1, "k"]),
        True,
    ),
    "price 0": (_item("A", price=0), True),
    "price 10^12": (_item("A", price=10**12), True),
    "price 89.95": (_item("A", price=89.95), True),
    "price -5": (_item("A", price=-5), False),
    "price 1e15": (_item("A", price=1e15), False),
    "price a 400-digit integer": (_item("A", price=10**400), False),
    "price as text": (_item("A", price="5"), False),
    "price true": (_item("A", price=True), False),
    "stock 2^31": (_item("A", stock=2**31), False),
    "stock as text": (_item("A", stock="3"), False),
    "name empty": (_item("A", name=""), False),
    "name 500": (_item("A", name="n" * 500), True),
    "name 501": (_item("A", name="n" * 501), False),
    "name with BEL": (_item("A", name="a\u0007b"), False),
    "name with DEL": (_item("A", name="a\u007fb"), False),
    "item id '.'": (_item("."), False),
    "item id '..'": (_item(".."), False),
    "item id 'a/..'": (_item("a/.."), True),
    "item id with LF": (_item("a\nb"), False),
    "item id numeric": ({"type": "item", "item": {"id": 5, "name": "N", "price": 1, "stock": 1}}, False),
    "extra field": (_item("A", colour="red"), False),
    "no name": ({"type": "item", "item": {"id": "A", "price": 1, "stock": 1}}, False),
    "type Item": ({"type": "Item", "item": _item("A")["item"]}, False),
    "attribute list": (_attributes(size=["40", "41"]), True),
    "attribute value with tab and LF": (_attributes(care="a\tb\nc"), True),
    "attribute value with NUL": (_attributes(care="a\u0000b"), False),
    "attribute value with U+FFFE": (_attributes(care="a\ufffeb"), False),
    "attribute value 401": (_attributes(care="v" * 401), False),
    "attribute name with LF": (_attributes(**{"a\nb": "v"}), False),
    "category id 0": (_category(0), True),
    "category id -1": (_category(-1), False),
    "category id 2^31": (_category(2**31), False),
    "category key 50": (_category("k" * 50), True),
    "category key 51": (_category("k" * 51), False),
    "category parent '..'": (_category("k", parents=[".."]), False),
    "category rank as text": (_category("k", rank="1"), False),
    "header": ({"type": "snapshot", "takenAt": "2026-11-28T03:00:00Z"}, True),
    "header with offset": ({"type": "snapshot", "takenAt": "2026-11-28T03:00:00.5+01:00"}, True),
    "header without time zone": ({"type": "snapshot", "takenAt": "2026-11-28T03:00:00"}, False),
    "header not a date": ({"type": "snapshot", "takenAt": "yesterday"}, False),
    "header with extra field": ({"type": "snapshot", "takenAt": "2026-11-28T03:00:00Z", "x": 1}, False),
}


@functools.cache
def _line_validator() -> jsonschema.Draft202012Validator:
    """The schema file's validator, checked once: one per case would take most of this file's time."""
    schema = json.loads((ROOT / "docs" / "snapshot-line.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("case", SCHEMA_CASES)
def test_the_schema_and_the_models_agree_line_by_line(case):
    """Any standard JSON Schema validator gives a line the verdict the bundle gives it."""
    line, valid = SCHEMA_CASES[case]
    by_schema = _line_validator().is_valid(line)
    by_models = _check([line], 100)[0].invalid == 0
    assert (by_schema, by_models) == (valid, valid)


def test_the_schema_uses_only_standard_keywords():
    known = set(jsonschema.Draft202012Validator.VALIDATORS) | {
        "$schema",
        "$defs",
        "$ref",
        "title",
        "description",
        "default",
        "discriminator",
        "format",
    }

    def keywords(node):
        if isinstance(node, dict):
            for key, value in node.items():
                yield key
                if key in ("properties", "$defs"):
                    for child in value.values():
                        yield from keywords(child)
                elif key not in ("const", "enum", "default"):
                    yield from keywords(value)
        elif isinstance(node, list):
            for child in node:
                yield from keywords(child)

    schema = json.loads((ROOT / "docs" / "snapshot-line.schema.json").read_text())
    assert set(keywords(schema)) - known == set()


@pytest.mark.parametrize("compress", [False, True])
def test_lines_are_read_in_chunks_gzip_or_plain(monkeypatch, compress):
    monkeypatch.setattr(snapshot_stream, "CHUNK", 7)  # lines cross chunk boundaries
    text = b"first line\nsecond\n\nlast without newline"
    raw = gzip.compress(text) if compress else text
    assert list(read_lines(io.BytesIO(raw))) == [b"first line", b"second", b"", b"last without newline"]


def test_each_invalid_line_is_reported_with_its_number_and_the_webhook_error_form():
    result, _, items = _check(
        [
            _item("A"),
            "{not json",
            {"type": "product"},
            _item("B", price=-1),
            {"type": "snapshot", "takenAt": "2026-11-28T03:00:00Z"},
            "",
        ],
        100,
    )
    assert result.lines == 5 and result.invalid == 4 and [i["id"] for i in items] == ["A"]
    by_line = {entry["line"]: entry["errors"] for entry in result.invalid_lines}
    assert by_line[2][0]["path"] == "(line)" and by_line[2][0]["error"].startswith("not valid JSON")
    expected = "must be one of 'snapshot', 'category', 'item', 'item.patch'"
    assert by_line[3] == [{"path": "type", "error": expected}]
    assert by_line[4] == [{"path": "item.price", "error": "Value error, must be between 0 and 1000000000000"}]
    assert by_line[5] == [{"path": "type", "error": "a snapshot line may only be the first line"}]
    assert result.held == ["item#B"]  # its item stays in Tweakwise: an invalid line deletes nothing


def test_the_invalid_share_refuses_above_the_limit_only():
    good = [_item(f"I{n}") for n in range(999)]
    result, _, _ = _check([*good, _item("X", stock="many")])
    assert result.invalid == 1 and result.refused == ""  # 1 of 1000 = 0.1 %: at the limit
    result, _, _ = _check([*good[:998], _item("X", stock="many"), _item("Y", stock="many")])
    assert result.refused.startswith("2 of 1000 lines are invalid (0.2 %), above SnapshotMaxInvalidPercent")


def test_an_id_twice_refuses_and_names_the_id_and_its_lines():
    result, _, _ = _check(
        [
            _item("A"),
            _item("B"),
            _item("A", price=2),
            {"type": "category", "category": {"id": 7, "name": "x"}},
            {"type": "category", "category": {"id": 7, "name": "y"}},
        ]
    )
    assert result.refused == (
        "ids appear more than once (item A on lines 1, 3; category id:7 on lines 4, 5); nothing was applied"
    )


def test_a_category_key_and_a_category_number_are_different_ids():
    result, _, _ = _check(
        [
            {"type": "category", "category": {"id": 7, "name": "x"}},
            {"type": "category", "category": {"id": "7", "name": "y"}},
        ]
    )
    assert result.refused == ""


def test_an_empty_snapshot_is_refused():
    result, _, items = _check([{"type": "snapshot", "takenAt": "2026-11-28T03:00:00Z"}])
    assert (
        result.refused == "the snapshot holds no valid item or category; nothing was applied" and items == []
    )


def test_categories_come_parents_first_and_numeric_parents_are_trusted():
    tree = [
        (1, Category(id="leaf", name="L", parents=["mid"])),
        (2, Category(id="mid", name="M", parents=["root", 5])),
        (3, Category(id="root", name="R", parents=[1])),
        (4, Category(id=9, name="N")),
    ]
    result = Validation("s", 0.0)
    ordered = [c.id for _, c in order_categories(tree, result)]
    assert ordered.index("root") < ordered.index("mid") < ordered.index("leaf") and 9 in ordered
    assert result.invalid == 0


def test_a_cycle_an_unknown_parent_and_their_children_are_invalid():
    tree = [
        (1, Category(id="a", name="A", parents=["b"])),
        (2, Category(id="b", name="B", parents=["a"])),
        (3, Category(id="c", name="C", parents=["ghost"])),
        (4, Category(id="d", name="D", parents=["c"])),
        (5, Category(id="e", name="E")),
    ]
    result = Validation("s", 0.0)
    assert [c.id for _, c in order_categories(tree, result)] == ["e"]
    assert [entry["line"] for entry in result.invalid_lines] == [1, 2, 3, 4]
    assert result.invalid_lines[2]["errors"] == [
        {"path": "category.parents", "error": "parent 'ghost' is not a category of this snapshot"}
    ]
    assert result.held == ["category#key:a", "category#key:b", "category#key:c", "category#key:d"]


def test_the_id_set_finds_repeats_among_many():
    ids = IdSet()
    for n in range(50_000):
        ids.add(f"item#{n}")
    ids.add("item#123")
    assert ids.repeated() == {IdSet.digest("item#123")}


def test_the_snapshot_id_is_its_file_name_and_etag():
    assert snapshot_store.snapshot_id("snapshots/shop/Catalog 2026.jsonl.gz", '"0a1b2c3d4e5f6a7b"') == (
        "Catalog-2026-0a1b2c3d4e5f"
    )


def test_an_execution_input_must_name_a_snapshot_of_the_bucket():
    event = {"detail": {"bucket": {"name": "b"}, "object": {"key": "snapshots/x.jsonl"}}}
    assert object_key(event, "b") == "snapshots/x.jsonl"
    with pytest.raises(SnapshotInputError, match="upload to s3://b/snapshots/"):
        object_key({"detail": {"bucket": {"name": "b"}, "object": {"key": "reports/x.json"}}}, "b")
    with pytest.raises(SnapshotInputError, match="must be the S3 event"):
        object_key({"allowMassDelete": True}, "b")


def test_a_body_digest_ignores_key_order():
    assert body_digest({"Name": "a", "Price": 1}) == body_digest({"Price": 1, "Name": "a"})
    assert body_digest({"Name": "a", "Price": 1}) != body_digest({"Name": "a", "Price": 2})


# -- an invalid line never deletes: every id that can be read is held ------------------------------------

GOOD = b'{"type": "item", "item": {"id": "SKU-1", "name": "Trail runner", "price": 1, "stock": 1}}'
UNREADABLE_KINDS = {
    # kind: (line, what it holds)
    "a Latin-1 byte in the name": (GOOD.replace(b"Trail runner", b"Caf\xe9 runner"), ["item#SKU-1"]),
    "a line cut short": (GOOD[:50], ["item#SKU-1"]),
    "a NUL in the name": (GOOD.replace(b"Trail", b"Tr\x00il"), ["item#SKU-1"]),
    "a NUL between fields": (GOOD.replace(b', "price"', b',\x00"price"'), ["item#SKU-1"]),
    "an integer of 4,301 digits": (GOOD.replace(b'"price": 1', b'"price": ' + b"9" * 4301), ["item#SKU-1"]),
    'type "Item"': (GOOD.replace(b'"type": "item"', b'"type": "Item"'), ["item#SKU-1"]),
    "a numeric id": (GOOD.replace(b'"SKU-1"', b"5"), ["item#5"]),
    # nested 100,000 levels: tests/integration/test_snapshot_scale.py
}


@pytest.mark.parametrize("kind", UNREADABLE_KINDS)
def test_an_invalid_line_holds_every_id_that_can_be_read_from_it(kind):
    line, held = UNREADABLE_KINDS[kind]
    result, _, items = _check([_item("A"), line], 100)
    assert result.invalid == 1 and items == [_item("A")["item"]]
    assert result.held == held and result.unidentified == 0 and result.keeps_orphans() == ""


NO_ID = {
    "cut before its id": b'{"type": "item", "item": {"name": "Trail runner", "pri',
    "a Latin-1 byte in the id": GOOD.replace(b"SKU-1", b"SK\xc9-1"),
    "not JSON at all": b"SKU-1;Trail runner;1;1",
    "an unknown type and no id": b'{"type": "product", "name": "Trail runner"}',
    "an array": b'[{"id": "SKU-1"}]',
    "nested 100,000 levels": b"[" * 100_000,
    "an id that is not text": b'{"type": "item", "item": {"id": true}}',
}


@pytest.mark.parametrize("kind", NO_ID)
def test_a_line_that_names_no_readable_id_keeps_every_orphan(kind):
    result, _, _ = _check([_item("A"), NO_ID[kind]], 100)
    assert result.invalid == 1 and result.held == [] and result.unidentified == 1
    assert result.keeps_orphans() == (
        "1 invalid lines name no id that can be read (line 2), so the snapshot cannot tell what it lacks: "
        "nothing was deleted"
    )


def test_the_ids_a_broken_line_is_read_for():
    assert line_entities(b'{"type": "category", "category": {"id": 7, "name"') == [
        "category#key:7",
        "category#id:7",
    ]
    both = line_entities(b'{"type": "thing", "thing": {"id": "X"}, "id": "Y"}')
    assert both == ["item#X", "category#key:X", "item#Y", "category#key:Y"]
    assert line_entities(b'{"type": "snapshot", "takenAt": "soon"}') == []  # a header
    assert line_entities(b'{"type": "item", "item": {"id": 5.0}}') == ["item#5", "item#5.0"]


def test_a_header_later_than_the_upload_is_taken_as_the_upload():
    header = {"type": "snapshot", "takenAt": "2026-11-28T03:04:10Z"}  # 250 s after the upload
    uploaded = 1795834800.0  # 2026-11-28T03:00:00Z
    result, _, _ = _check([header, _item("A")], uploaded=uploaded)
    assert result.taken_at == uploaded and result.taken_at_given == uploaded + 250
    earlier = {"type": "snapshot", "takenAt": "2026-11-28T02:00:00Z"}
    result, _, _ = _check([earlier, _item("A")], uploaded=uploaded)
    assert result.taken_at == uploaded - 3600 and result.taken_at_given is None


# -- bounded, whatever the file ------------------------------------------------------------------------


def test_more_categories_than_kept_refuse_the_snapshot(monkeypatch):
    monkeypatch.setattr(snapshot_lines, "MAX_CATEGORIES", 3)
    lines = [{"type": "category", "category": {"id": f"c{n}", "name": "C"}} for n in range(5)]
    result, categories, _ = _check(lines)
    assert result.refused == "the snapshot holds more than 3 categories; nothing was applied"
    assert len(categories) == 3


def test_a_line_nested_100000_levels_is_one_invalid_line():
    result, _, _ = _check([_item("A"), b"[" * 100_000 + b"]" * 100_000], 100)
    assert result.invalid_lines == [
        {"line": 2, "errors": [{"path": "(line)", "error": "not valid JSON: nested too deeply"}]}
    ]


# One pass (validate_json) for nearly every line, json.loads and the line's model for the rest: a line the
# one pass takes must be one the other path takes too, with the same values.
TRICKY = [
    rb'{"type": "item", "item": {"id": "A", "name": "\ud800", "price": 1, "stock": 1}}',  # lone surrogate
    rb'{"type": "item", "item": {"id": "A", "name": "\udc00\ud800", "price": 1, "stock": 1}}',
    rb'{"type": "item", "item": {"id": "A", "name": "\ud83d\ude00", "price": 1, "stock": 1}}',  # a pair
    rb'{"type": "item", "item": {"id": "A", "name": "\u0000", "price": 1, "stock": 1}}',
    rb'{"type": "item", "item": {"id": "A", "name": "a\u2028b", "price": 1, "stock": 1}}',
    b'{"type": "item", "item": {"id": "A", "name": "a\x01b", "price": 1, "stock": 1}}',  # raw control
    b'{"type": "item", "item": {"id": "A", "name": "\xc3\xa9", "price": 1, "stock": 1}}',
    b'{"type": "item", "item": {"id": "A", "name": "\xc0\xa9", "price": 1, "stock": 1}}',  # overlong UTF-8
    b'\xef\xbb\xbf{"type": "item", "item": {"id": "A", "name": "N", "price": 1, "stock": 1}}',  # BOM
    '{"type": "item", "item": {"id": "A", "name": "N", "price": 1, "stock": 1}}'.encode("utf-16"),
    b'{"type": "item", "item": {"id": "A", "id": "B", "name": "N", "price": 1, "stock": 1}}',
    b'{"type": "item", "type": "category", "item": {"id": "A", "name": "N", "price": 1, "stock": 1}}',
    b'{"type": "item", "item": {"id": "A", "name": "N", "price": NaN, "stock": 1}}',
    b'{"type": "item", "item": {"id": "A", "name": "N", "price": Infinity, "stock": 1}}',
    b'{"type": "item", "item": {"id": "A", "name": "N", "price": 1e400, "stock": 1}}',
    b'{"type": "item", "item": {"id": "A", "name": "N", "price": -0.0, "stock": -0}}',
    b'{"type": "item", "item": {"id": "A", "name": "N", "price": 1.0, "stock": 3.0}}',
    b'{"type": "item", "item": {"id": "A", "name": "N", "price": 1, "stock": 3.5}}',
    b'{"type": "item", "item": {"id": "A", "name": "N", "price": 1, "stock": 2147483648}}',
    b'{"type": "item", "item": {"id": "A", "name": "N", "price": 1, "stock": true}}',
    b'{"type": "item", "item": {"id": "A", "name": "N", "price": "1", "stock": 1}}',
    b'{"type": "item", "item": {"id": "A", "name": "N", "price": 1, "stock": 1},}',
    b'{"type": "item", "item": {"id": "A", "name": "N", "price": 1, "stock": 1}} x',
    b' {"type": "item", "item": {"id": "A", "name": "N", "price": 1, "stock": 1}}\r',
    b'{"type": "item", "item": {"id": ".", "name": "N", "price": 1, "stock": 1}}',
    b'{"type": "item", "item": {"id": "A", "name": "N", "price": 1, "stock": 1, "categories": [1, 1.0]}}',
    b'{"type": "item", "item": {"id": "A", "name": "N", "price": 1, "stock": 1, "attributes": {"a": "\\t"}}}',
    b'{"type": "item.patch", "item": {"id": "A", "brand": null}}',
    b'{"type": "item.patch", "item": {"id": "A", "name": null}}',
    b'{"type": "category", "category": {"id": 1, "name": "N", "parents": [true]}}',
    b'{"type": "snapshot", "takenAt": "2026-11-28T03:00:00Z", "scope": "patch"}',
    b'{"type": "snapshot", "takenAt": "2026-11-28 03:00:00Z"}',
    b'{"type": "snapshot", "takenAt": "2026-11-28T03:00:00"}',
]


@pytest.mark.parametrize("raw", TRICKY, ids=range(len(TRICKY)))
def test_a_line_the_one_pass_takes_the_line_by_line_path_takes_alike(raw):
    from tweakwise.snapshot_models import SNAPSHOT_LINE_ADAPTER

    try:
        fast = SNAPSHOT_LINE_ADAPTER.validate_json(raw)
    except Exception:  # refused: the line-by-line path decides, as before
        return
    document = json.loads(raw)
    slow = snapshot_lines.LINE_MODELS[document["type"]].model_validate(document)
    assert fast == slow and fast.model_fields_set == slow.model_fields_set


def test_a_line_only_json_loads_reads_is_written_as_json_all_the_same():
    bom = b"\xef\xbb\xbf" + json.dumps(_item("A")).encode()
    result, _, items = _check([bom, _item("B")])
    assert result.invalid == 0 and items == [_item("A")["item"], _item("B")["item"]]
