"""`make mutation`: stage the project in build/mutation with the tweakwise package at the top (mutmut names
mutants by module path, and the tests import `tweakwise.*`), run mutmut there, print each module's score.
Usage: mutation.py MUTMUT [--min PERCENT]"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / "build" / "mutation"
COPY = [
    "tests",
    "scripts",
    "tweakwise_local",
    "docs",
    "functions",
    "events",
    "benchmarks",
    "statemachines",
    "template.yaml",
    "pyproject.toml",
]


def stage() -> None:
    shutil.rmtree(STAGE, ignore_errors=True)
    STAGE.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache")
    for name in COPY:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, STAGE / name, ignore=ignore)
        else:
            shutil.copy2(source, STAGE / name)
    shutil.copytree(ROOT / "layers" / "tweakwise" / "tweakwise", STAGE / "tweakwise", ignore=ignore)


def main() -> int:
    # Absolute: mutmut runs with the stage as its working directory.
    mutmut, rest = str(Path(sys.argv[1]).resolve()), sys.argv[2:]
    stage()
    jobs = str(os.cpu_count() or 2)
    subprocess.run([mutmut, "run", "--max-children", jobs], cwd=STAGE, check=False)
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "mutation_scores.py"),
            "--mutants",
            str(STAGE / "mutants"),
            *rest,
        ],
        check=False,
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
