"""What the benchmarks share: their environment, a DynamoDB that answers like in-region DynamoDB, and
their sections of docs/benchmarks.md (each script rewrites its own and keeps the others).

moto spends ~10 ms of CPU per DynamoDB call, one call at a time, so N concurrent calls take N x 10 ms
there, which says more about moto than about this bundle; the stand-in answers after a fixed latency.
"""

from __future__ import annotations

import re
from pathlib import Path

BENCHMARKS_DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"

BENCH_ENV = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "bench",
    "TWEAKWISE_SECRET_ID": "bench/tweakwise",
    "TWEAKWISE_MAX_RETRIES": "0",
}


def write_sections(own: list[str], text: str) -> None:
    """Write docs/benchmarks.md: `text` replaces the "## " sections whose titles start with one of `own`;
    the other scripts' sections are kept. A `text` with the "# " title goes first, a section alone last.
    The contents list after the title is made anew each time."""
    current = BENCHMARKS_DOC.read_text() if BENCHMARKS_DOC.exists() else "# Benchmarks\n"
    head, *sections = re.split(r"(?m)^(?=## )", current)
    sections = [part for part in sections if not part.startswith("## Contents")]
    kept = [part.rstrip() + "\n" for part in sections if not any(part.startswith(f"## {t}") for t in own)]
    if text.startswith("# "):  # the title and its paragraph, then this script's sections, then the others
        title, *own_sections = re.split(r"(?m)^(?=## )", text)
        parts = [title.rstrip() + "\n", *own_sections, *kept]
    else:
        parts = [head.rstrip() + "\n", *kept, text]
    parts = [part for part in parts if part.strip()]
    titles = [part.split("\n", 1)[0][3:] for part in parts[1:]]
    contents = "## Contents\n\n" + "".join(f"- [{title}](#{_slug(title)})\n" for title in titles)
    BENCHMARKS_DOC.write_text("\n".join(part.rstrip() + "\n" for part in [parts[0], contents, *parts[1:]]))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
