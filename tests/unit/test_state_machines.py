"""The state machines live in statemachines/*.asl.yaml: each is spliced back into its template resource
and checked by cfn-lint's state machine rules, so a misspelt field fails the build as it did inline."""

from __future__ import annotations

import copy
import json

import pytest
from cfnlint.api import lint

from tweakwise_local.template import ROOT, load_template, state_machine_definition

TEMPLATE = load_template()
MACHINES = sorted(
    name
    for name, resource in TEMPLATE["Resources"].items()
    if resource["Type"] == "AWS::StepFunctions::StateMachine"
)


def _spliced(logical_id: str, definition: dict) -> str:
    """A template of the one state machine, its definition inline, its references made literal (they
    are checked with the whole template by `make cfn-lint`)."""
    props = copy.deepcopy(TEMPLATE["Resources"][logical_id]["Properties"])
    props.pop("DefinitionS3Location")
    props["Definition"] = definition
    props["RoleArn"] = "arn:aws:iam::123456789012:role/machine"
    props.pop("StateMachineName", None)
    props.pop("LoggingConfiguration")
    substitutions = props["DefinitionSubstitutions"]
    for name in substitutions:
        substitutions[name] = f"arn:aws:lambda:eu-west-1:123456789012:function:{name}"
    resource = {"Type": "AWS::StepFunctions::StateMachine", "Properties": props}
    return json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": {logical_id: resource}})


def test_every_state_machine_definition_is_a_file_under_statemachines():
    assert MACHINES == ["SnapshotStateMachine", "TaskStateMachine"]
    for name in MACHINES:
        props = TEMPLATE["Resources"][name]["Properties"]
        assert "Definition" not in props
        location = props["DefinitionS3Location"]
        assert location.startswith("statemachines/") and location.endswith(".asl.yaml")
        assert (ROOT / location).is_file()


@pytest.mark.parametrize("name", MACHINES)
def test_each_definition_file_passes_cfn_lints_state_machine_checks(name):
    assert [str(match) for match in lint(_spliced(name, state_machine_definition(TEMPLATE, name)))] == []


@pytest.mark.parametrize("name", MACHINES)
def test_a_misspelt_field_in_a_definition_file_fails(name):
    definition = state_machine_definition(TEMPLATE, name)
    first = definition["States"][definition["StartAt"]]
    first["Nxt"] = first.pop("Next", "Elsewhere")
    found = [match.rule.id for match in lint(_spliced(name, definition))]
    assert found and set(found) == {"E3601"}  # cfn-lint's state machine definition rule
