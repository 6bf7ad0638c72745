"""secrecy's pure rules: what is kept of foreign text."""

from __future__ import annotations

from conftest import ACCESS_TOKEN
from tweakwise import secrecy


def test_clip_masks_a_secret_before_cutting_wherever_the_cut_falls():
    secrecy.remember(ACCESS_TOKEN)
    pieces = {ACCESS_TOKEN[i : i + 4] for i in range(len(ACCESS_TOKEN) - 3)}
    for limit in range(1, 3 * len(ACCESS_TOKEN)):
        for before in range(2 * len(ACCESS_TOKEN)):
            kept = secrecy.clip("=" * before + ACCESS_TOKEN + "=" * 40, limit)
            assert len(kept) <= limit
            assert not [piece for piece in pieces if piece in kept], (limit, before, kept)


def test_clip_keeps_short_text_whole_and_marks_a_cut():
    assert secrecy.clip("short", 10) == "short"
    assert secrecy.clip("0123456789abc", 10) == "012345678…"
    guid = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert secrecy.clip(f"task {guid} failed", 12) == "task *** fa…"  # a GUID cut in two is masked too
