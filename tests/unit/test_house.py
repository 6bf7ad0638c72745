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


def test_every_dataclass_of_the_layer_has_a_docstring():
    # Without one, `dataclass` makes one from inspect.signature(cls) at import: 0.3-1 ms a class, at every
    # cold start of every function that imports it.
    undocumented = [
        f"{path.name}:{node.name}"
        for path in CODE
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
        and any("dataclass" in ast.unparse(d) or ast.unparse(d) == "_settings" for d in node.decorator_list)
        and ast.get_docstring(node) is None
    ]
    assert undocumented == []
