"""Validation is bounded whatever the file: the hostile inputs that once took most of the function's
1,024 MB or crashed it, each validated in a process of its own (its peak resident memory is what Lambda
would count), as the validate step reads an S3 object: streamed, in chunks."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from conftest import ROOT

MEASURE = """
import json, sys, time
from tweakwise.snapshot_lines import check_lines
from tweakwise.snapshot_stream import read_lines
started = time.perf_counter()
with open("/dev/null", "wb") as out:
    result = check_lines(lambda: read_lines(open(sys.argv[1], "rb")), out, "s", 4e9, 0.1)[0]
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
seconds = time.perf_counter() - started
found = {"refused": result.refused, "invalid_lines": result.invalid_lines[:3]}
print(json.dumps({"seconds": seconds, "peak_mib": peak / 1024, **found}))
"""
ITEM = b'{"type": "item", "item": {"id": "A", "name": "a", "price": 1, "stock": 1}}\n'


def _gzip(path, *parts: tuple[bytes, int]) -> None:
    with gzip.open(path, "wb", compresslevel=9) as zipped:
        for piece, times in parts:
            for _ in range(times):
                zipped.write(piece)


def _one_400_mib_line(path) -> None:
    head = b'{"type": "item", "item": {"id": "HUGE-1", "name": "'
    _gzip(path, (head, 1), (b"x" * (1 << 20), 400), (b'"}}\n', 1))


def _category_lines(path) -> None:
    _gzip(path, (b'{"type":"category","category":{"id":"c","name":"C"}}\n', 1_270_000))


def _one_100_mb_line(path) -> None:
    with path.open("wb") as plain:
        plain.write(b'{"type": "item", "item": {"id": "BIG-1", "name": "')
        for _ in range(100):
            plain.write(b"y" * 1_000_000)
        plain.write(b'"}}\n')


def _nested(path) -> None:
    _gzip(path, (ITEM, 1), (b"[" * 100_000 + b"\n", 1))


def _cut_in_half(path) -> None:
    whole = gzip.compress(b"".join(ITEM.replace(b'"A"', f'"A{n}"'.encode()) for n in range(200_000)))
    path.write_bytes(whole[: len(whole) // 2])


HOSTILE = {
    # name: (how to write it, what it is refused for, the most memory it may take)
    "one 400 MiB line in a 400 KB gzip": (_one_400_mib_line, "1 of 1 lines are invalid", 64),
    "1.27 M lines of one category in a 196 KB gzip": (_category_lines, "ids appear more than once", 160),
    "one 100 MB line": (_one_100_mb_line, "1 of 1 lines are invalid", 64),
    "a line nested 100,000 levels": (_nested, "1 of 2 lines are invalid", 64),
    "a gzip cut in half": (_cut_in_half, "the gzip stream ends before its end after line ", 64),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_validation_is_bounded_and_refuses_with_a_reason(tmp_path, name):
    write, reason, most_mib = HOSTILE[name]
    path = tmp_path / "snapshot"
    write(path)
    run = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", MEASURE, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PYTHONPATH": str(ROOT / "layers" / "tweakwise")},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    found = json.loads(run.stdout)
    print(
        f"{name}: {path.stat().st_size:,} bytes, {found['seconds']:.1f} s, peak {found['peak_mib']:.0f} MiB"
    )
    assert found["refused"].startswith(reason), found
    assert found["invalid_lines"] or " on lines " in found["refused"], "the report names the line"
    assert found["peak_mib"] < most_mib, found
