"""Per-module mutation scores from mutmut's results (mutants/**/*.py.meta), and the surviving mutants.

A mutant is killed when the tests failed (or timed out) with it; it survived when they passed, or when no
test ran its code. Usage: mutation_scores.py [--min PERCENT]; exits 1 when a module scores below it."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KILLED = {1, 3, 24, -24, 36, 152, 255}
SURVIVED = {0, 5, 33}


def scores(mutants: Path) -> dict[str, dict]:
    found = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        counts = Counter(
            "killed" if c in KILLED else "survived" if c in SURVIVED else "other" for c in codes.values()
        )
        judged = counts["killed"] + counts["survived"]
        found[meta.name.removesuffix(".meta")] = {
            "mutants": len(codes),
            "killed": counts["killed"],
            "survived": counts["survived"],
            "unjudged": counts["other"],
            "score": round(100 * counts["killed"] / judged, 1) if judged else 0.0,
            "survivors": sorted(k.rsplit(".", 1)[1] for k, c in codes.items() if c in SURVIVED),
        }
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--min", type=float, default=0.0)
    parser.add_argument("--survivors", action="store_true", help="list every surviving mutant")
    parser.add_argument("--mutants", type=Path, default=ROOT / "build" / "mutation" / "mutants")
    args = parser.parse_args()
    found = scores(args.mutants)
    if not found:
        print("no mutmut results under mutants/: run `make mutation`")
        return 1
    low = []
    for module, result in found.items():
        print(
            f"{module:16} {result['score']:5.1f} %  killed {result['killed']}/{result['mutants']}, "
            f"survived {result['survived']}, not judged {result['unjudged']}"
        )
        if args.survivors:
            for name in result["survivors"]:
                print(f"    survived: {name.replace(chr(0x1C1), '.')}")
        if result["score"] < args.min:
            low.append(module)
    if low:
        print(
            f"below {args.min:g} %: {', '.join(low)} (`mutmut results` lists survivors; `mutmut show NAME`)"
        )
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
