"""Snapshot validation at scale, without AWS: memory stays bounded and time linear whatever a file holds
(tens of thousands of lines, a 64 MiB line, a gzip cut short). Seconds each: out of the unit loop."""

from __future__ import annotations

import gzip
import io
import json
import re
import time
import tracemalloc

from tweakwise import snapshot_lines
from tweakwise.snapshot_lines import check_lines
from tweakwise.snapshot_stream import read_lines

UPLOADED = 4_000_000_000.0  # the object's upload time: far after any takenAt of these tests
GOOD = b'{"type": "item", "item": {"id": "SKU-1", "name": "Trail runner", "price": 1, "stock": 1}}'


def _item(ref: str, **fields) -> dict:
    return {"type": "item", "item": {"id": ref, "name": "N", "price": 1, "stock": 1, **fields}}


def _peak(run) -> tuple[int, float]:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        run()
        return tracemalloc.get_traced_memory()[1], time.perf_counter() - started
    finally:
        tracemalloc.stop()


def _gzip_of(*parts: tuple[bytes, int]) -> bytes:
    """A gzip of each part repeated so many times, written a chunk at a time."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6) as zipped:
        for piece, times in parts:
            for _ in range(times):
                zipped.write(piece)
    return out.getvalue()


def test_validation_memory_stays_flat_in_the_number_of_lines():
    def peak(count: int) -> int:
        raw = [json.dumps(_item(f"SKU-{n}")).encode() for n in range(count)]
        out = io.BytesIO()  # the /tmp file in Lambda
        tracemalloc.start()
        check_lines(lambda: iter(raw), out, "s", UPLOADED, 0.1)
        found = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return found - 2 * out.getbuffer().nbytes  # less what the output holds (and its last copy)

    small, large = peak(2_000), peak(20_000)
    assert large < small + 20_000 * 40  # at most ~8 bytes an id for the repeat check, plus slack


def test_a_line_over_the_limit_is_read_past_in_bounded_memory_and_linear_time():
    head = b'{"type": "item", "item": {"id": "HUGE-1", "name": "'
    zipped = _gzip_of((head, 1), (b"x" * (1 << 20), 64), (b'"}}\n', 1), (GOOD + b"\n", 1))
    assert len(zipped) < 100_000  # 64 MiB of line in a small file

    def run():
        global found  # noqa: PLW0603 - the result, out of the measured call
        found = check_lines(lambda: read_lines(io.BytesIO(zipped)), io.BytesIO(), "s", UPLOADED, 100)[0]

    peak, seconds = _peak(run)
    assert found.lines == 2 and found.items == 1 and found.held == ["item#HUGE-1"]
    assert found.invalid_lines[0]["errors"][0]["error"].startswith("the line is over 262144 bytes")
    assert peak < 8 * 2**20, peak  # a few chunks, never the line
    assert seconds < 20, seconds


def test_many_lines_of_one_category_are_refused_in_bounded_memory(monkeypatch):
    monkeypatch.setattr(snapshot_lines, "MAX_CATEGORIES", 1_000)
    line = b'{"type": "category", "category": {"id": "shoes", "name": "Shoes"}}\n'
    zipped = _gzip_of((line, 20_000))

    def run():
        global found  # noqa: PLW0603
        found = check_lines(lambda: read_lines(io.BytesIO(zipped)), io.BytesIO(), "s", UPLOADED, 0.1)[0]

    peak, _ = _peak(run)
    assert (
        found.refused
        == "ids appear more than once (category key:shoes on lines 1, 2, 3, 4, 5); nothing was applied"
    )
    assert peak < 12 * 2**20, peak  # 8 bytes an id and at most MAX_CATEGORIES categories kept


def test_a_gzip_cut_short_or_corrupt_is_refused_with_the_line_it_stopped_at():
    zipped = _gzip_of((GOOD + b"\n", 50_000))
    cut = zipped[: len(zipped) // 2]
    result, _, _ = check_lines(lambda: read_lines(io.BytesIO(cut)), io.BytesIO(), "s", UPLOADED, 0.1)
    assert re.fullmatch(
        r"the gzip stream ends before its end after line \d+; nothing was applied", result.refused
    ), result.refused
    stopped = int(result.refused.split("after line ")[1].split(";")[0])
    assert 0 < stopped < 50_000
    assert result.invalid_lines[-1] == {
        "line": stopped + 1,
        "errors": [{"path": "(file)", "error": "the gzip stream ends before its end"}],
    }
    corrupt = bytearray(zipped)
    corrupt[-6] ^= 0xFF  # in the CRC: every line reads, the check at the end fails
    result, _, _ = check_lines(
        lambda: read_lines(io.BytesIO(bytes(corrupt))), io.BytesIO(), "s", UPLOADED, 0.1
    )
    assert result.refused.startswith("the gzip stream is corrupt (CRC check failed")


def test_an_invalid_line_nested_100000_levels_still_holds_its_id():
    line = GOOD[:-2] + b', "attributes": ' + b'{"a": ' * 100_000 + b"}}"
    raw = [json.dumps(_item("A")).encode(), line]
    out = io.BytesIO()
    result = check_lines(lambda: iter(raw), out, "s", UPLOADED, 100)[0]
    assert result.invalid == 1 and json.loads(out.getvalue()) == [_item("A")]
    assert result.held == ["item#SKU-1"] and result.unidentified == 0 and result.keeps_orphans() == ""
