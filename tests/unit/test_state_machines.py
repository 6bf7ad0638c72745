"""The state machines live in statemachines/*.asl.yaml: each is spliced back into its template resource
and checked by cfn-lint's state machine rules, so a misspelt field fails the build as it did inline."""

from __future__ import annotations

import copy
import json

from cfnlint.api import lint

from tweakwise_local.template import ROOT, load_template, state_machine_definition

TEMPLATE = load_template()
MACHINES = sorted(
    name
    for name, resource in TEMPLATE["Resources"].items()
    if resource["Type"] == "AWS::StepFunctions::StateMachine"
)


def _spliced(definitions: dict[str, dict]) -> str:
    """A template of the state machines, their definitions inline, their references made literal (they
    are checked with the whole template by `make cfn-lint`). One template: cfn-lint runs once."""
    resources = {}
    for logical_id, definition in definitions.items():
        props = copy.deepcopy(TEMPLATE["Resources"][logical_id.removesuffix("Misspelt")]["Properties"])
        for name in ("DefinitionS3Location", "StateMachineName", "LoggingConfiguration"):
            props.pop(name, None)
        props["Definition"] = definition
        props["RoleArn"] = "arn:aws:iam::123456789012:role/machine"
        substitutions = props["DefinitionSubstitutions"]
        for name in substitutions:
            substitutions[name] = f"arn:aws:lambda:eu-west-1:123456789012:function:{name}"
        resources[logical_id] = {"Type": "AWS::StepFunctions::StateMachine", "Properties": props}
    return json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources})


def test_every_state_machine_definition_is_a_file_under_statemachines():
    assert MACHINES == ["SnapshotStateMachine", "TaskStateMachine"]
    for name in MACHINES:
        props = TEMPLATE["Resources"][name]["Properties"]
        assert "Definition" not in props
        location = props["DefinitionS3Location"]
        assert location.startswith("statemachines/") and location.endswith(".asl.yaml")
        assert (ROOT / location).is_file()


def test_each_definition_file_passes_cfn_lints_state_machine_checks_and_a_misspelt_field_fails():
    definitions = {name: state_machine_definition(TEMPLATE, name) for name in MACHINES}
    for name in MACHINES:  # beside each, a copy with one field misspelt: one cfn-lint run for all
        broken = copy.deepcopy(definitions[name])
        first = broken["States"][broken["StartAt"]]
        first["Nxt"] = first.pop("Next", "Elsewhere")
        definitions[f"{name}Misspelt"] = broken
    found = {(match.rule.id, match.path[1]) for match in lint(_spliced(definitions))}
    # cfn-lint's state machine definition rule, on the misspelt copies only
    assert found == {("E3601", f"{name}Misspelt") for name in MACHINES}
