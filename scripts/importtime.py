"""Cold-start import cost: each handler module beside `import boto3` alone, measured side by side.

Runs `python -X importtime` in fresh interpreters, alternating the subjects, and reports medians of the
summed self times (ms) and the ratio to boto3. Nothing is fetched at import, so no AWS is needed.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 7


def _total_ms(code: str, path: list[Path], function_env: dict[str, str]) -> float:
    env = {
        **os.environ,
        **function_env,
        "PYTHONPATH": os.pathsep.join(str(p) for p in path),
        "TWEAKWISE_SECRET_ID": "importtime",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_SERVICE_NAME": "importtime",
        "POWERTOOLS_METRICS_NAMESPACE": "importtime",
        "POWERTOOLS_TRACE_DISABLED": "false",
        "PYTHONDONTWRITEBYTECODE": "",
    }
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True, check=True
    )
    total = 0
    for line in run.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            field = line.split(":", 1)[1].split("|")[0].strip()
            if field.isdigit():
                total += int(field)
    return total / 1000


def main() -> int:
    from tweakwise_local.template import Resolver, function_environment, load_template

    template = load_template()
    resolver = Resolver(template)
    layer = ROOT / "layers" / "tweakwise"
    subjects = {"import boto3": ("import boto3", [], {})}
    for logical, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            code_dir = ROOT / resource["Properties"]["CodeUri"]
            env = function_environment(template, logical, resolver)  # placeholders: nothing is called
            subjects[f"{logical}"] = ("import app", [code_dir, layer], env)
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    for _ in range(ROUNDS):
        for name, (code, path, env) in subjects.items():
            samples[name].append(_total_ms(code, path, env))
    base = statistics.median(samples["import boto3"])
    print(f"{'subject':<28}{'median ms':>10}{'x boto3':>9}   ({ROUNDS} rounds, interleaved)")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:<28}{median:>10.1f}{median / base:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
