"""The house rules the layer and the handlers keep: small modules, short functions, no path tricks."""

from __future__ import annotations

import ast

import pytest

from tweakwise_local.template import ROOT

MAX_MODULE_LINES = 350
MAX_FUNCTION_LINES = 50
# Generated data, not code anyone edits (scripts/webhook_contract.py writes it): held to its generator.
GENERATED = ROOT / "layers" / "tweakwise" / "tweakwise" / "webhook_contract.py"
CODE = sorted(
    {*(ROOT / "layers" / "tweakwise" / "tweakwise").glob("*.py"), *(ROOT / "functions").glob("*/app.py")}
    - {GENERATED}
)


@pytest.mark.parametrize("path", CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES
    long = [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES  # type: ignore[operator]
    ]
    assert long == []


def test_nothing_reaches_another_folder_through_sys_path():
    tracked = [*ROOT.glob("*/*.py"), *ROOT.glob("*/*/*.py"), *ROOT.glob("layers/tweakwise/tweakwise/*.py")]
    found = [
        str(p.relative_to(ROOT))
        for p in tracked
        if not str(p.relative_to(ROOT)).startswith((".", "build"))
        and "sys.path.insert" in p.read_text(encoding="utf-8")
        and p.name != "test_house.py"
    ]
    assert found == []
