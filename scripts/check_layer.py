"""Check what `sam build` produced: the layer holds the tweakwise package and every dependency it
needs, built for Lambda's python3.13 on arm64, with python3.13 bytecode for every module and without
what layers/tweakwise/prune.txt drops (proving nothing needs it); each function holds its handler.

Usage: python scripts/check_layer.py [.aws-sam/build]
"""

from __future__ import annotations

import ast
import sys
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tweakwise_local.template import function_setting, load_template

ROOT = Path(__file__).resolve().parent.parent
PRUNE_LIST = ROOT / "layers" / "tweakwise" / "prune.txt"
# Python 3.13's bytecode magic number (importlib.util.MAGIC_NUMBER there): CPython changes it per version.
PYC_MAGIC_313 = (3571).to_bytes(2, "little") + b"\r\n"
PYC_UNCHECKED_HASH = 0b01  # flags word: hash-based, source never checked (PEP 552)

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
    problems += check_bytecode(site)
    problems += check_pruned(site, [build / "TweakwiseLayer" / "python" / "tweakwise", *_handlers(build)])

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


def check_bytecode(site: Path) -> list[str]:
    """Every module has unchecked-hash bytecode of python3.13, and no bytecode of another version."""
    problems = []
    for source in sorted(site.rglob("*.py")):
        pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        if not pyc.is_file():
            problems.append(f"{source.relative_to(site)} has no python3.13 bytecode ({pyc.name})")
            continue
        header = pyc.read_bytes()[:8]
        if header[:4] != PYC_MAGIC_313:
            problems.append(f"{pyc.relative_to(site)} is not python3.13 bytecode")
        elif int.from_bytes(header[4:8], "little") != PYC_UNCHECKED_HASH:
            problems.append(f"{pyc.relative_to(site)} is not unchecked-hash bytecode (--invalidation-mode)")
    for pyc in site.rglob("*.pyc"):
        if not pyc.name.endswith(".cpython-313.pyc"):
            problems.append(f"{pyc.relative_to(site)}: bytecode of another Python than the runtime's 3.13")
    return problems


def pruned_paths() -> list[str]:
    lines = PRUNE_LIST.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def check_pruned(site: Path, ours: list[Path]) -> list[str]:
    """What prune.txt drops is gone, and nothing needs it: no module of the layer imports a dropped
    module at import time (pydantic imports its v1 copy only inside functions, for v1 models), and
    neither the tweakwise package nor a handler names a dropped module or calls a function that reads a
    dropped file (Powertools reads the Swagger UI assets only in enable_swagger)."""
    problems = []
    # Dropped subpackages (pydantic/v1); the top-level folders dropped (bin, wrapt-stubs) are no packages.
    dropped_modules = {p.replace("/", ".") for p in pruned_paths() if "/" in p and "." not in Path(p).name}
    readers: set[str] = set()  # functions whose body names a dropped file
    for path in pruned_paths():
        if (site / path).exists():
            problems.append(f"{path} is still in the layer (layers/tweakwise/prune.txt drops it)")
    dropped_files = {Path(p).name for p in pruned_paths() if "." in Path(p).name}
    for source in site.rglob("*.py"):
        tree = ast.parse(source.read_bytes(), str(source))
        for node in tree.body:  # module level only: imports inside functions run on demand
            for module in _imported(node):
                if module in dropped_modules or any(module.startswith(m + ".") for m in dropped_modules):
                    problems.append(f"{source.relative_to(site)} imports {module} at import time")
        for func in ast.walk(tree):
            if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in dropped_files
                for n in ast.walk(func)
            ):
                readers.add(func.name)
    for code in ours:
        for source in [code] if code.is_file() else sorted(code.rglob("*.py")):
            text = source.read_text(encoding="utf-8")
            for name in sorted(dropped_modules | readers):
                if name in text:
                    problems.append(f"{source.name} uses {name}, which the layer drops (prune.txt)")
    return problems


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    if isinstance(node, ast.If | ast.Try):  # top-level conditionals still run at import
        return [m for child in ast.iter_child_nodes(node) for m in _imported(child)]
    return []


def _handlers(build: Path) -> list[Path]:
    built = load_template(build / "template.yaml")
    return [
        build / resource["Properties"]["CodeUri"]
        for resource in built["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    ]


def main() -> int:
    build = Path(sys.argv[1] if len(sys.argv) > 1 else ".aws-sam/build")
    problems = check(build)
    for problem in problems:
        print(f"layer check: {problem}", file=sys.stderr)
    if problems:
        return 1
    size = sum(f.stat().st_size for f in (build / "TweakwiseLayer").rglob("*") if f.is_file())
    binaries = len(list((build / "TweakwiseLayer").rglob("*.so")))
    modules = len(list((build / "TweakwiseLayer").rglob("*.pyc")))
    print(
        f"layer check: ok ({size / 1e6:.1f} MB unzipped, {binaries} arm64 binaries, deps complete, "
        f"{modules} modules with python3.13 bytecode, {len(pruned_paths())} unused paths dropped)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
