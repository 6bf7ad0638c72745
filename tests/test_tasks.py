"""Tweakwise tasks: configuration in the secret, tolerant status parsing, the task runner function."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conftest import ACCESS_TOKEN, IMPORT_GUID, INSTANCE_KEY, PUBLISH_GUID, TASKS, LambdaContext, load_handler
from tweakwise import tasks
from tweakwise.credentials import Credentials
from tweakwise.errors import TaskConfigError


def _creds(tasks_value):
    return Credentials(INSTANCE_KEY, ACCESS_TOKEN, {"tasks": tasks_value})


def test_task_guid_reads_the_named_task():
    assert tasks.task_guid(_creds(TASKS), "import", "s") == IMPORT_GUID


def test_an_unknown_task_names_the_configured_ones_but_no_guid():
    with pytest.raises(TaskConfigError) as caught:
        tasks.task_guid(_creds(TASKS), "export", "tw/secret")
    text = str(caught.value)
    assert "Task 'export' is not configured in secret 'tw/secret' (configured: import, publish)" in text
    assert IMPORT_GUID not in text and PUBLISH_GUID not in text


@pytest.mark.parametrize("bad", ["not-a-guid", IMPORT_GUID[:-1], 42, "", None])
def test_a_value_that_is_not_a_guid_is_refused_without_echoing_it(bad):
    with pytest.raises(TaskConfigError, match="Task 'import' in secret 's' is not a GUID") as caught:
        tasks.task_guid(_creds({"import": bad, "publish": PUBLISH_GUID}), "import", "s")
    assert PUBLISH_GUID not in str(caught.value)


def test_no_tasks_at_all():
    with pytest.raises(TaskConfigError, match=r"\(configured: none\)"):
        tasks.task_guid(Credentials(INSTANCE_KEY, ACCESS_TOKEN, {}), "import", "s")
    with pytest.raises(TaskConfigError, match="must be an object"):
        tasks.task_guid(_creds(["import"]), "import", "s")


@pytest.mark.parametrize(
    ("payload", "state"),
    [
        ({"Status": "Running"}, "running"),
        ({"status": "in progress"}, "running"),
        ({"State": "Queued"}, "running"),
        ({"Status": "Finished"}, "finished"),
        ({"TaskStatus": "Completed"}, "finished"),
        ("Done", "finished"),
        ({"Status": "Failed", "Message": "feed not found"}, "failed"),
        ({"status": {"state": "error"}}, "failed"),
        ({"IsRunning": True}, "running"),
        ({"IsRunning": False}, "finished"),
        ({"HasFailed": True, "IsRunning": False}, "failed"),
        ({"Status": "Idle"}, "unknown"),
        ({}, "unknown"),
        (None, "unknown"),
        ([1, 2], "unknown"),
    ],
)
def test_status_payloads_are_read_tolerantly(payload, state):
    found = tasks.parse_task_status(payload)
    assert found.state == state
    assert found.raw == payload


@pytest.fixture
def runner(tasks_secret, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "task-runner")
    return load_handler("task_runner")


def test_scheduled_event_triggers_the_task(runner, sandbox):
    assert runner.lambda_handler({"task": "import"}, LambdaContext()) == {"task": "import", "triggered": True}
    assert sandbox.task_triggers == [IMPORT_GUID]
    assert ("GET", f"/task/trigger/{INSTANCE_KEY}/{IMPORT_GUID}", None) in sandbox.requests


def test_status_action_follows_the_task(runner, sandbox):
    runner.lambda_handler({"action": "trigger", "task": "publish"}, LambdaContext())
    started = datetime.now(UTC).isoformat()
    event = {"action": "status", "task": "publish", "startedAt": started, "timeoutSeconds": 600}
    assert runner.lambda_handler(event, LambdaContext()) == {
        "task": "publish",
        "state": "running",
        "timedOut": False,
    }
    assert runner.lambda_handler(event, LambdaContext())["state"] == "finished"


def test_a_task_running_past_its_timeout_is_timed_out(runner, sandbox):
    runner.lambda_handler({"task": "import"}, LambdaContext())
    long_ago = (datetime.now(UTC) - timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    event = {"action": "status", "task": "import", "startedAt": long_ago, "timeoutSeconds": 7200}
    assert runner.lambda_handler(event, LambdaContext()) == {
        "task": "import",
        "state": "running",
        "timedOut": True,
    }


def test_unconfigured_task_fails_the_invocation_clearly(runner, sandbox):
    with pytest.raises(TaskConfigError, match="'export' is not configured"):
        runner.lambda_handler({"task": "export"}, LambdaContext())
    with pytest.raises(ValueError, match="must name a task"):
        runner.lambda_handler({}, LambdaContext())
    assert sandbox.task_triggers == []


def test_a_failing_trigger_fails_the_invocation_for_retry_and_dlq(runner, sandbox, monkeypatch):
    from tweakwise import errors
    from tweakwise_local.sandbox import Faults

    monkeypatch.setenv("TWEAKWISE_MAX_RETRIES", "1")
    sandbox.faults = Faults.parse("5xx=1")
    handler = load_handler("task_runner")
    with pytest.raises(
        errors.ServerError, match=r"GET /task/trigger/\{instance_key\}/\{task_guid\} answered 503"
    ):
        handler.lambda_handler({"task": "import"}, LambdaContext())
