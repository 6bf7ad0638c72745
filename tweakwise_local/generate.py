"""Write a synthetic whole-catalog snapshot: N items in a few categories, JSON Lines (gzip for .gz).

    python -m tweakwise_local.generate 20000 build/catalog-20k.jsonl.gz [--seed 1] [--change 1 --remove 0.5]

--change / --remove give the percentage of items changed (new price) or left out, the same seed giving
the same catalog: two runs give a first load and a nightly diff (benchmarks and tries).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CATEGORIES = 20


def lines(count: int, seed: int, change: float, remove: float) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)  # noqa: S311 - test data
    yield {"type": "snapshot", "takenAt": datetime.now(UTC).isoformat(timespec="seconds")}
    yield {"type": "category", "category": {"id": "all", "name": "All products"}}
    for n in range(CATEGORIES):
        yield {
            "type": "category",
            "category": {"id": f"cat-{n}", "name": f"Category {n}", "parents": ["all"]},
        }
    churn = random.Random(seed + 1)  # noqa: S311 - which items change, independent of the catalog
    for n in range(count):
        price = round(rng.uniform(1, 500), 2)
        category = f"cat-{rng.randrange(CATEGORIES)}"
        roll = churn.random() * 100
        if roll < remove:
            continue
        if roll < remove + change:
            price = round(price + 1, 2)
        yield {
            "type": "item",
            "item": {
                "id": f"SKU-{n:07d}",
                "name": f"Product {n}",
                "price": price,
                "stock": n % 50,
                "brand": f"Brand {n % 13}",
                "categories": [category],
                "attributes": {"color": ["red", "blue"][n % 2], "size": str(36 + n % 10)},
            },
        }


def stock_lines(count: int, seed: int) -> Iterator[dict[str, Any]]:
    """A patch snapshot of the same items: each item's stock, new (a stock feed)."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    yield {"type": "snapshot", "takenAt": datetime.now(UTC).isoformat(timespec="seconds"), "scope": "patch"}
    for n in range(count):
        yield {"type": "item.patch", "item": {"id": f"SKU-{n:07d}", "stock": rng.randrange(1000, 2000)}}


def write(
    path: Path, count: int, seed: int = 1, change: float = 0.0, remove: float = 0.0, *, stock: bool = False
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as out:
        for line in stock_lines(count, seed) if stock else lines(count, seed, change, remove):
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("count", type=int)
    parser.add_argument("path", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--change", type=float, default=0.0, help="percentage of items with a new price")
    parser.add_argument("--remove", type=float, default=0.0, help="percentage of items left out")
    parser.add_argument("--stock", action="store_true", help="a patch snapshot of every item's stock")
    args = parser.parse_args()
    print(write(args.path, args.count, args.seed, args.change, args.remove, stock=args.stock))


if __name__ == "__main__":
    main()
