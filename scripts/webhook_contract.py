"""The webhook's compiled contract (layers/tweakwise/tweakwise/webhook_contract.py), generated: the schema
pydantic builds for `catalog.WebhookBody`, its models turned into typed dicts, so the webhook validates
with pydantic-core alone and never imports pydantic at its cold start (decision 0014). The models stay
the contract's one owner: `python -m scripts.webhook_contract --write` writes the module again, and
tests/unit/test_webhook_compiled.py fails when it is not what this prints.

What changes on the way: a model becomes a typed dict with the same fields (extra fields refused as
before); a field with a default becomes a field that may be left out (left out, it stays out, as
`exclude_unset` kept it out); a validator is referenced by its name in `contract_rules`, a model's own
validator by the dict form listed in VALIDATORS; metadata (JSON Schema hints) and refs are dropped."""

from __future__ import annotations

import argparse
import pprint
import sys
from typing import Any

from tweakwise_local.template import ROOT

TARGET = ROOT / "layers" / "tweakwise" / "tweakwise" / "webhook_contract.py"
RULES = "tweakwise.contract_rules"
# A model's validator (it gets the model) -> its counterpart in contract_rules (it gets the dict).
VALIDATORS = {
    "ItemPatchFields._some_field": "patch_fields",
    "WebhookBody._unique_ids": "unique_events",
}
DROPPED = frozenset({"metadata", "ref", "serialization"})

HEADER = '''"""Generated from `catalog.WebhookBody` by `python -m scripts.webhook_contract --write`: do not
edit. The webhook body's schema for pydantic-core (decision 0014): the models' rules, over typed dicts."""

# ruff: noqa: E501

from __future__ import annotations

from typing import Any

from . import contract_rules as rules

'''


class _Name:
    """A function in the generated text: `rules.<name>`."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"rules.{self.name}"


def _function(value: Any) -> _Name:
    qualname = getattr(value, "__qualname__", "")
    if qualname in VALIDATORS:
        return _Name(VALIDATORS[qualname])
    if getattr(value, "__module__", None) == RULES and qualname == value.__name__:
        return _Name(qualname)
    raise SystemExit(
        f"{qualname or value!r} is not in {RULES}: move the rule there, or map a model's validator to its "
        "dict form in VALIDATORS"
    )


class _Compiler:
    def __init__(self) -> None:
        self.definitions: dict[str, dict[str, Any]] = {}

    def node(self, value: Any) -> Any:
        if isinstance(value, dict):
            if value.get("type") == "model":
                return self.model(value)
            return {k: self.node(v) for k, v in value.items() if k not in DROPPED}
        if isinstance(value, list | tuple):
            return type(value)(self.node(v) for v in value)
        if callable(value):
            return _function(value)
        return value

    def model(self, schema: dict[str, Any]) -> dict[str, Any]:
        name = schema["cls"].__name__
        if name not in self.definitions:
            self.definitions[name] = {}  # taken before its fields: a model that holds itself ends here
            fields = schema["schema"]
            if fields["type"] != "model-fields":
                raise SystemExit(f"{name}: a {fields['type']!r} schema inside a model is not compiled yet")
            self.definitions[name] |= {
                "type": "typed-dict",
                "fields": {k: self.field(v) for k, v in fields["fields"].items()},
                "extra_behavior": schema["config"].get("extra_fields_behavior", "ignore"),
                "ref": name,
            }
        return {"type": "definition-ref", "schema_ref": name}

    def field(self, field: dict[str, Any]) -> dict[str, Any]:
        schema, required = field["schema"], True
        if schema["type"] == "default":  # left out stays out: no default is filled in
            schema, required = schema["schema"], False
        return {"type": "typed-dict-field", "schema": self.node(schema), "required": required}


def schema() -> dict[str, Any]:
    """The compiled schema, as the generated module holds it (functions as `_Name`s)."""
    from tweakwise.catalog import WebhookBody

    WebhookBody.model_rebuild()
    compiler = _Compiler()
    body = compiler.node(WebhookBody.__pydantic_core_schema__)
    return {"type": "definitions", "schema": body, "definitions": list(compiler.definitions.values())}


def rendered() -> str:
    text = pprint.pformat(schema(), width=110, sort_dicts=False)
    return f"{HEADER}SCHEMA: dict[str, Any] = {text}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help=f"write {TARGET.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    text = rendered()
    if args.write:
        TARGET.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
