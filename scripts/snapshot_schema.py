"""Write docs/snapshot-line.schema.json: the JSON Schema of one snapshot line, generated from the same
pydantic models the snapshot function validates with (tests/unit/test_snapshot_rules.py checks it is
up to date).

    python scripts/snapshot_schema.py
"""

from __future__ import annotations

import json
from pathlib import Path

from tweakwise.snapshot_models import SNAPSHOT_LINE_ADAPTER

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "docs" / "snapshot-line.schema.json"


def schema() -> dict:
    document = SNAPSHOT_LINE_ADAPTER.json_schema()
    document.pop("discriminator", None)  # OpenAPI's keyword, not JSON Schema's: "oneOf" says it all
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "One line of a Tweakwise bundle whole-catalog snapshot (JSON Lines)",
        **document,
    }


def text() -> str:
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    SCHEMA_FILE.write_text(text(), encoding="utf-8")
    print(SCHEMA_FILE)
