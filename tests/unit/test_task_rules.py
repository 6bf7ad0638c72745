"""Task GUIDs and status answers, read without Tweakwise."""

from __future__ import annotations

import pytest

from conftest import ACCESS_TOKEN, IMPORT_GUID, INSTANCE_KEY, PUBLISH_GUID, TASKS
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
