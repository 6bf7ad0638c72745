"""Read template.yaml: a YAML loader for CloudFormation's short tags, and SAM's own translation to
plain CloudFormation (for tests of what will really be deployed, such as the generated IAM roles)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, ClassVar

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]  # libyaml: 5x faster
    pass


def _intrinsic(loader: _Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected !{suffix} node", node.start_mark)
    return {name: value}


_Loader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def state_machine_definition(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """A state machine's definition: the ASL file its DefinitionS3Location names (statemachines/), as
    `sam build` and `sam package` upload it, or its inline Definition."""
    props = template["Resources"][logical_id]["Properties"]
    location = props.get("DefinitionS3Location")
    if isinstance(location, str):
        with open(TEMPLATE.parent / location, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    return props["Definition"]


def translate(template: dict[str, Any] | None = None, parameters: dict[str, str] | None = None) -> dict:
    """SAM -> CloudFormation, offline: local code paths become placeholder S3 URIs."""
    from samtranslator.translator.transform import transform

    doc = copy.deepcopy(template or load_template())
    for resource in doc.get("Resources", {}).values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = f"s3://placeholder-bucket/{props[key].strip('/')}.zip"

    class _NoManagedPolicies:
        def load(self) -> dict:
            return {}

    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    return transform(doc, parameters or {}, _NoManagedPolicies())


class Resolver:
    """Evaluates the intrinsic functions a function's environment uses (Ref, If, Equals, Not, And, Or,
    Sub, GetAtt), with parameter defaults (or overrides) and local stand-in names for resources."""

    PSEUDO: ClassVar[dict[str, str]] = {
        "AWS::Region": "eu-west-1",
        "AWS::AccountId": "123456789012",
        "AWS::Partition": "aws",
        "AWS::StackName": "tweakwise-local",
        "AWS::URLSuffix": "amazonaws.com",
    }

    # Locally every native source is on (docs/sources.md): its function runs, and `make run` delivers
    # events to its rules.
    LOCAL: ClassVar[dict[str, str]] = {
        "CommercetoolsEventBusName": "aws.partner/commercetools.com/local-project/tweakwise",
        "ShopifyEventBusName": "aws.partner/shopify.com/local-app/tweakwise",
    }

    def __init__(self, template: dict[str, Any], overrides: dict[str, str] | None = None):
        self.template = template
        self.params = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        self.params.update({k: v for k, v in self.LOCAL.items() if k in self.params})
        self.params.update(overrides or {})
        # Attributes of resources that exist locally (tweakwise_local/provision.py): {"Ref": ..., "Arn": ...}
        self.resources: dict[str, dict[str, Any]] = {}

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resource_name(self, logical_id: str) -> str:
        return f"tweakwise-local-{logical_id}"

    def resolve(self, value: Any) -> Any:  # noqa: PLR0911 - one branch per intrinsic
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v) for k, v in value.items()}
        [(key, arg)] = value.items()
        if key == "Ref":
            if arg in self.params:
                return self.params[arg]
            if arg in self.resources:
                return self.resources[arg]["Ref"]
            return self.PSEUDO.get(arg, self.resource_name(arg))
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::If":
            name, yes, no = arg
            return self.resolve(yes if self.condition(name) else no)
        if key == "Fn::Equals":
            left, right = self.resolve(arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Fn::And":
            return all(self.resolve(arg))
        if key == "Fn::Or":
            return any(self.resolve(arg))
        if key == "Fn::GetAtt":
            known = self.resources.get(arg[0], {})
            return known.get(arg[1], f"{self.resource_name(arg[0])}.{arg[1]}")
        if key == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
            import re

            return re.sub(
                r"\$\{([^}!]+)\}", lambda m: str(extra.get(m[1], self.resolve({"Ref": m[1]}))), text
            )
        return {key: self.resolve(arg)}


def function_environment(template: dict[str, Any], logical_id: str, resolver: Resolver) -> dict[str, str]:
    glob = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own = template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
    return {k: str(resolver.resolve(v)) for k, v in {**glob, **own}.items()}


def function_setting(template: dict[str, Any], logical_id: str, key: str, default: Any = None) -> Any:
    """A function property, else the Globals one; a parameter's Ref gives that parameter's default."""
    own = template["Resources"][logical_id]["Properties"]
    value = own.get(key, template.get("Globals", {}).get("Function", {}).get(key, default))
    return Resolver(template).resolve(value) if isinstance(value, dict) and "Ref" in value else value


def variable_target(template: dict[str, Any], variable: str, resolver: Resolver | None = None) -> str:
    """The logical id of the resource a function environment variable names (`!Ref X`, through `!If`
    when a resolver decides the conditions): how the local runtime finds, say, the Tweakwise secret
    without knowing its logical id."""
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    sources = [template.get("Globals", {}).get("Function", {})] + [f["Properties"] for f in functions]
    for source in sources:
        value = source.get("Environment", {}).get("Variables", {}).get(variable)
        while isinstance(value, dict) and "Fn::If" in value:
            name, yes, no = value["Fn::If"]
            value = yes if resolver is None or resolver.condition(name) else no
        if isinstance(value, dict) and "Ref" in value:
            return value["Ref"]
    raise KeyError(f"no function of template.yaml sets {variable} to a resource")
