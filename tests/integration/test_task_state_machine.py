"""The task state machine of template.yaml, run by moto's Step Functions with the real task runner."""

from __future__ import annotations

import json
import re

import boto3
import pytest

from conftest import IMPORT_GUID, REGION, LambdaContext, load_handler
from tweakwise_local.states import StateMachines
from tweakwise_local.template import Resolver, load_template, state_machine_definition

TEMPLATE = load_template()
DEFINITION = state_machine_definition(TEMPLATE, "TaskStateMachine")


@pytest.fixture
def machine(tasks_secret, monkeypatch):
    """The template's state machines in moto, their Lambda tasks run by the task runner in process."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "TweakwiseTest")
    runner = load_handler("task_runner")
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="alarms")["TopicArn"]
    resolver = Resolver(TEMPLATE, {"MetricsNamespace": "TweakwiseTest", "InstanceName": "shop-nl"})
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:TaskRunnerFunction"
    resolver.resources["TaskRunnerFunction"] = {"Ref": "TaskRunnerFunction", "Arn": arn}
    resolver.resources["AlarmTopic"] = {"Ref": topic}
    calls = []

    def invoke(function: str, payload: dict):
        calls.append((function, payload))
        return runner.lambda_handler(payload, LambdaContext())

    machines = StateMachines(TEMPLATE, resolver, invoke)
    machines.create()
    machines.calls = calls
    return machines


def _metrics():
    found = boto3.client("cloudwatch", region_name=REGION).list_metrics(Namespace="TweakwiseTest")["Metrics"]
    return [(m["MetricName"], m["Dimensions"]) for m in found]


def _run(machine, task: str, timeout_seconds: int = 600):
    return machine.execute(
        "TaskStateMachine", {"task": task, "pollSeconds": 0, "timeoutSeconds": timeout_seconds}
    )


def test_definition_substitutions_cover_every_placeholder():
    props = TEMPLATE["Resources"]["TaskStateMachine"]["Properties"]
    used = set(re.findall(r"\$\{(\w+)\}", json.dumps(DEFINITION)))
    assert used == set(props["DefinitionSubstitutions"])


def test_a_task_that_finishes(machine, sandbox):
    execution = _run(machine, "import")
    assert execution.status == "SUCCEEDED"
    assert execution.states == [
        "Trigger",
        "Wait",
        "Status",
        "Finished?",
        "Wait",
        "Status",
        "Finished?",
        "Done",
    ]
    assert execution.output == {
        "task": "import",
        "pollSeconds": 0,
        "timeoutSeconds": 600,
        "trigger": {"triggered": True},
        "status": {"state": "finished", "timedOut": False},
    }
    assert sandbox.task_triggers == [IMPORT_GUID]
    # what the state machine passed to the function at each step
    (function, trigger), (_, status), _ = machine.calls
    assert function == "TaskRunnerFunction"
    assert trigger == {"action": "trigger", "task": "import"}
    assert status["action"] == "status" and status["timeoutSeconds"] == 600
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.*", status["startedAt"])
    assert execution.service_calls() == []


def test_a_failed_task_counts_a_metric_and_notifies(machine, sandbox):
    sandbox.fail_tasks = True
    execution = _run(machine, "publish")
    assert execution.status == "FAILED" and execution.error == "TaskDidNotFinish"
    assert execution.states[-4:] == ["Failed", "CountFailure", "Notify", "TaskDidNotFinish"]
    (metric_resource, metric), (sns_resource, message) = execution.service_calls()
    assert metric_resource == "aws-sdk:cloudwatch:putMetricData"
    assert metric["MetricData"][0]["MetricName"] == "TaskFailures"
    assert metric["MetricData"][0]["Dimensions"] == [{"Name": "Instance", "Value": "shop-nl"}]
    assert sns_resource == "sns:publish"
    assert re.fullmatch(
        r"Tweakwise task publish failed \(execution arn:aws:states:eu-west-1:\d+:execution:TaskStateMachine:"
        r"local-[0-9a-f-]{36}\)\. See docs/tasks.md\.",
        message["Message"],
    )
    assert ("TaskFailures", [{"Name": "Instance", "Value": "shop-nl"}]) in _metrics()


def test_a_task_that_runs_too_long_times_out(machine, sandbox):
    execution = _run(machine, "import", timeout_seconds=0)
    assert execution.status == "FAILED"
    assert "TimedOut" in execution.states and "Failed" not in execution.states
    assert "timed out" in execution.service_calls()[1][1]["Message"]


def test_a_trigger_error_is_caught_and_reported(machine, sandbox):
    execution = _run(machine, "export")  # not in the secret
    assert execution.status == "FAILED"
    assert execution.states[:2] == ["Trigger", "Failed"]
    [failed_input] = execution.inputs("Failed")
    assert failed_input["error"]["Error"] == "TaskConfigError"
    assert IMPORT_GUID not in json.dumps(execution.events, default=str)  # the task is named, never a GUID
    assert len(execution.service_calls()) == 2
