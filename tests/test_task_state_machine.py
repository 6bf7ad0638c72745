"""The task state machine of template.yaml, run state by state with the real task runner function."""

from __future__ import annotations

import json

import boto3
import pytest

from conftest import IMPORT_GUID, REGION, LambdaContext, load_handler
from scripts.cfn import load_template
from scripts.local_sfn import ExecutionFailed, LocalStateMachine, substitute

TEMPLATE = load_template()
DEFINITION = TEMPLATE["Resources"]["TaskStateMachine"]["Properties"]["Definition"]


@pytest.fixture
def machine(tasks_secret):
    """The definition with its substitutions, calling the task runner and (moto) CloudWatch and SNS."""
    runner = load_handler("task_runner")
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="alarms")["TopicArn"]
    calls = {"lambda": [], "sdk": []}

    def build():
        definition = substitute(
            DEFINITION,
            {
                "TaskRunnerArn": "arn:aws:lambda:eu-west-1:123456789012:function:TaskRunner",
                "AlarmTopicArn": topic,
                "MetricsNamespace": "TweakwiseTest",
                "InstanceName": "shop-nl",
            },
        )

        def invoke(function, payload):
            calls["lambda"].append(payload)
            return runner.lambda_handler(payload, LambdaContext())

        def sdk(resource, params):
            calls["sdk"].append((resource, params))
            if resource.endswith(":cloudwatch:putMetricData"):
                boto3.client("cloudwatch", region_name=REGION).put_metric_data(**params)
            elif resource.endswith(":sns:publish"):
                boto3.client("sns", region_name=REGION).publish(**params)
            return {}

        documents = []
        sm = LocalStateMachine(
            definition, invoke, sdk, max_wait=0, on_state=lambda n, d: documents.append((n, d))
        )
        sm.documents = documents
        return sm

    build.calls = calls
    return build


def _metric_sum():
    stats = boto3.client("cloudwatch", region_name=REGION).list_metrics(Namespace="TweakwiseTest")["Metrics"]
    return [(m["MetricName"], m["Dimensions"]) for m in stats]


def test_definition_substitutions_cover_every_placeholder():
    props = TEMPLATE["Resources"]["TaskStateMachine"]["Properties"]
    used = set(__import__("re").findall(r"\$\{(\w+)\}", json.dumps(DEFINITION)))
    assert used == set(props["DefinitionSubstitutions"])


def test_a_task_that_finishes(machine, sandbox):
    sm = machine()
    result = sm.run({"task": "import", "pollSeconds": 60, "timeoutSeconds": 600})
    assert sm.visited == ["Trigger", "Wait", "Status", "Finished?", "Wait", "Status", "Finished?", "Done"]
    assert result == {
        "task": "import",
        "pollSeconds": 60,
        "timeoutSeconds": 600,
        "trigger": {"triggered": True},
        "status": {"state": "finished", "timedOut": False},
    }
    assert sandbox.task_triggers == [IMPORT_GUID]
    # each step's input: what the state machine passed to the function
    trigger, status, _ = machine.calls["lambda"]
    assert trigger == {"action": "trigger", "task": "import"}
    assert (
        status["action"] == "status" and status["timeoutSeconds"] == 600 and status["startedAt"].endswith("Z")
    )
    assert machine.calls["sdk"] == []


def test_a_failed_task_counts_a_metric_and_notifies(machine, sandbox):
    sandbox.fail_tasks = True
    sm = machine()
    with pytest.raises(ExecutionFailed, match="TaskDidNotFinish"):
        sm.run({"task": "publish", "pollSeconds": 60, "timeoutSeconds": 600})
    assert sm.visited[-4:] == ["Failed", "CountFailure", "Notify", "TaskDidNotFinish"]
    (metric_resource, metric), (sns_resource, message) = machine.calls["sdk"]
    assert metric_resource == "arn:aws:states:::aws-sdk:cloudwatch:putMetricData"
    assert metric["MetricData"][0]["MetricName"] == "TaskFailures"
    assert metric["MetricData"][0]["Dimensions"] == [{"Name": "Instance", "Value": "shop-nl"}]
    assert sns_resource == "arn:aws:states:::sns:publish"
    assert message["Message"].startswith("Tweakwise task publish failed (execution arn:aws:states:")
    assert ("TaskFailures", [{"Name": "Instance", "Value": "shop-nl"}]) in _metric_sum()


def test_a_task_that_runs_too_long_times_out(machine, sandbox):
    sm = machine()
    with pytest.raises(ExecutionFailed):
        sm.run({"task": "import", "pollSeconds": 60, "timeoutSeconds": 0})
    assert "TimedOut" in sm.visited and "Failed" not in sm.visited
    assert "timed out" in machine.calls["sdk"][1][1]["Message"]


def test_a_trigger_error_is_caught_and_reported(machine, sandbox):
    sm = machine()
    with pytest.raises(ExecutionFailed):
        sm.run({"task": "export", "pollSeconds": 60, "timeoutSeconds": 600})  # not in the secret
    assert sm.visited[:2] == ["Trigger", "Failed"]
    failed_input = dict(sm.documents)["Failed"]
    assert failed_input["error"]["Error"] == "TaskConfigError"
    assert IMPORT_GUID not in json.dumps(failed_input)  # the error names the task, never a GUID
    assert len(machine.calls["sdk"]) == 2
