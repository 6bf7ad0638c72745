"""scripts/check_layer.py on small layers of its own: it can fail, and says why."""

from __future__ import annotations

import py_compile
import shutil
import subprocess
import sys

import pytest

from scripts import check_layer
from scripts.lambda_like import python313


def _module(
    site, name: str, source: str = "x = 1\n", *, magic: bytes = check_layer.PYC_MAGIC_313, flags: int = 1
):
    path = site / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    pyc = path.parent / "__pycache__" / f"{path.stem}.cpython-313.pyc"
    pyc.parent.mkdir(exist_ok=True)
    pyc.write_bytes(magic + flags.to_bytes(4, "little") + b"\0" * 8)
    return path


def test_every_module_needs_unchecked_hash_bytecode_of_python_313(tmp_path):
    _module(tmp_path, "good.py")
    _module(tmp_path, "timestamped.py", flags=0)
    _module(tmp_path, "other_version.py", magic=(3495).to_bytes(2, "little") + b"\r\n")
    (tmp_path / "bare.py").write_text("x = 1\n")
    py_compile.compile(str(tmp_path / "bare.py"))  # this interpreter's bytecode, not the runtime's
    assert check_layer.check_bytecode(tmp_path) == [
        "bare.py has no python3.13 bytecode (bare.cpython-313.pyc)",
        "__pycache__/other_version.cpython-313.pyc is not python3.13 bytecode",
        "__pycache__/timestamped.cpython-313.pyc is not unchecked-hash bytecode (--invalidation-mode)",
        f"__pycache__/bare.{sys.implementation.cache_tag}.pyc: bytecode of another Python than the "
        "runtime's 3.13",
    ]


def test_what_is_dropped_must_be_gone_and_unused(tmp_path):
    site = tmp_path / "site"
    _module(site, "pydantic/v1/__init__.py")  # still there
    _module(site, "pydantic/_loader.py", "def load():\n    from pydantic.v1 import BaseModel\n")  # lazy: fine
    _module(site, "pydantic/eager.py", "from pydantic.v1 import BaseModel\n")
    _module(site, "powertools/api.py", "def enable_swagger():\n    return 'swagger-ui.min.css'\n")
    ours = tmp_path / "app.py"
    ours.write_text("app.enable_swagger()\n")
    problems = check_layer.check_pruned(site, [ours])
    assert "pydantic/v1 is still in the layer (layers/tweakwise/prune.txt drops it)" in problems
    assert "pydantic/eager.py imports pydantic.v1 at import time" in problems
    assert "app.py uses enable_swagger, which the layer drops (prune.txt)" in problems
    assert not any("_loader" in problem for problem in problems)


def test_the_magic_number_is_python_313s():
    try:
        interpreter = python313()  # the one the layer build compiles with
    except SystemExit:
        pytest.skip("no python3.13 here")
    code = "import importlib.util, sys; sys.stdout.buffer.write(importlib.util.MAGIC_NUMBER)"
    magic = subprocess.run([interpreter, "-c", code], capture_output=True, check=True).stdout  # noqa: S603
    assert magic == check_layer.PYC_MAGIC_313


def test_the_layer_build_without_python_313_says_what_to_install(tmp_path):
    """No python3.13 on PATH and no pyenv one: the build stops before installing anything, naming the fix."""
    layer = check_layer.ROOT / "layers" / "tweakwise"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "pyenv")}
    if shutil.which("python3.13", path=env["PATH"]):
        pytest.skip("a python3.13 is on the system PATH")
    artifacts = tmp_path / "artifacts"
    make = shutil.which("make") or "make"
    run = subprocess.run(  # noqa: S603 - make, our own Makefile
        [make, "-s", "-C", str(layer), "build-TweakwiseLayer", f"ARTIFACTS_DIR={artifacts}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0
    assert "no python3.13 found (PATH or pyenv); install Python 3.13" in run.stderr
    assert "PYTHON313=/path/to/python3.13" in run.stderr
    assert not artifacts.exists()  # nothing installed: it stopped first
