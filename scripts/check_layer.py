"""Check what `sam build` produced: the layer holds the tweakwise package and every dependency it
needs, built for Lambda's python3.13 on arm64; each function holds its handler.

Usage: python scripts/check_layer.py [.aws-sam/build]
"""

from __future__ import annotations

import sys
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tweakwise_local.template import function_setting, load_template

# What the python3.13 Lambda runtime already provides (and the layer must not ship again).
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "python-dateutil", "six"}
LAYER_EXTRAS = {"aws-lambda-powertools": {"tracer", "parser"}}
ELF_AARCH64 = 183  # e_machine of an arm64 ELF file
LAMBDA_ENV = {
    **default_environment(),
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
}


def check(build: Path) -> list[str]:
    problems: list[str] = []
    site = build / "TweakwiseLayer" / "python"
    if not (site / "tweakwise" / "client.py").is_file():
        return [f"{site}/tweakwise is missing: did sam build run?"]
    if list(site.rglob("__pycache__")):
        problems.append("the layer holds __pycache__ folders (build with --no-compile)")

    shipped: dict[str, Path] = {}
    for dist in site.glob("*.dist-info"):
        meta = Parser().parsestr((dist / "METADATA").read_text(encoding="utf-8"))
        shipped[canonicalize_name(meta["Name"])] = dist
        for line in (dist / "WHEEL").read_text().splitlines():
            if line.startswith("Tag:") and not line.endswith(("-none-any", "aarch64")):
                problems.append(f"{dist.name}: wheel tag {line[4:].strip()} is not for arm64")
    for name in RUNTIME_PROVIDED & shipped.keys():
        problems.append(f"{name} is shipped although the Lambda runtime provides it")

    for name, dist in shipped.items():
        meta = Parser().parsestr((dist / "METADATA").read_text(encoding="utf-8"))
        for text in meta.get_all("Requires-Dist") or []:
            req = Requirement(text)
            extras = LAYER_EXTRAS.get(name, set()) | {""}
            if req.marker and not any(req.marker.evaluate({**LAMBDA_ENV, "extra": e}) for e in extras):
                continue
            dep = canonicalize_name(req.name)
            if dep not in shipped and dep not in RUNTIME_PROVIDED:
                problems.append(f"{name} needs {req} but the layer does not ship it")

    for binary in [*site.rglob("*.so"), *site.rglob("*.so.*")]:
        header = binary.read_bytes()[:20]
        machine = int.from_bytes(header[18:20], "little")
        if header[:4] != b"\x7fELF" or machine != ELF_AARCH64:
            problems.append(f"{binary.relative_to(site)} is not an arm64 ELF binary")

    built = load_template(build / "template.yaml")
    for name, resource in built["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            handler_file = function_setting(built, name, "Handler").rsplit(".", 1)[0] + ".py"
            if not (build / resource["Properties"]["CodeUri"] / handler_file).is_file():
                problems.append(f"{name}: {handler_file} is missing from the build")
    return problems


def main() -> int:
    build = Path(sys.argv[1] if len(sys.argv) > 1 else ".aws-sam/build")
    problems = check(build)
    for problem in problems:
        print(f"layer check: {problem}", file=sys.stderr)
    if problems:
        return 1
    size = sum(f.stat().st_size for f in (build / "TweakwiseLayer").rglob("*") if f.is_file())
    binaries = len(list((build / "TweakwiseLayer").rglob("*.so")))
    print(f"layer check: ok ({size / 1e6:.1f} MB unzipped, {binaries} arm64 binaries, deps complete)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
