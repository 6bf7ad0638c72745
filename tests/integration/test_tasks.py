"""Tweakwise tasks: configuration in the secret, tolerant status parsing, the task runner function."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conftest import IMPORT_GUID, INSTANCE_KEY, LambdaContext, load_handler
from tweakwise.errors import TaskConfigError


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
