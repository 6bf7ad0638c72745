"""Publish after sync: the worker marks changes, the publisher debounces them into few publishes."""

from __future__ import annotations

import threading

import boto3
import pytest

from conftest import (
    ACCESS_TOKEN,
    INSTANCE_KEY,
    PUBLISH_GUID,
    REGION,
    SECRET_ID,
    TASKS,
    LambdaContext,
    emf_blobs,
    load_handler,
    queue_messages,
    sqs_event,
)
from tweakwise import errors
from tweakwise.client import TweakwiseClient
from tweakwise.credentials import SecretCredentials
from tweakwise.lazy import Lazy
from tweakwise.publish import Publisher, PublishOutcome
from tweakwise.state import PublishMarks, SyncState
from tweakwise.tasks import TaskState
from tweakwise_local.sandbox import Faults


class AtomicDynamoDB:
    """moto applies a conditional write in steps without a lock, so two threads can both pass one
    condition; DynamoDB applies each write atomically. This gives moto that guarantee for the test."""

    def __init__(self, client):
        self.client = client
        self.exceptions = client.exceptions
        self.lock = threading.Lock()

    def update_item(self, **request):
        with self.lock:
            return self.client.update_item(**request)

    def get_item(self, **request):
        with self.lock:
            return self.client.get_item(**request)


@pytest.fixture
def world(catalog_aws, tasks_secret, sandbox):
    state = SyncState(AtomicDynamoDB(boto3.client("dynamodb", region_name=REGION)), catalog_aws["table"])
    client = TweakwiseClient(SecretCredentials(SECRET_ID), sandbox.url, max_retries=0)
    return state, Publisher(Lazy(client), state, max_publish_seconds=3600), sandbox


def test_nothing_changed_means_no_publish(world):
    _state, publisher, sandbox = world
    assert publisher.run(now=1000) == PublishOutcome(False, "nothing changed since the last publish")
    assert sandbox.task_triggers == []


def test_changes_are_published_once_and_never_while_a_publish_runs(world):
    state, publisher, sandbox = world
    state.mark_changed(now=1000)
    assert publisher.run(now=1001).published is True
    assert sandbox.task_triggers == [PUBLISH_GUID]
    state.mark_changed(now=1002)  # a change while the publish runs
    assert publisher.run(now=1003) == PublishOutcome(False, "a publish is still running")
    # the sandbox now reports the publish finished: the change made during it is published
    outcome = publisher.run(now=1004)
    assert outcome == PublishOutcome(True, "changes since the last publish", TaskState.FINISHED, lag=2.0)
    assert sandbox.task_triggers == [PUBLISH_GUID, PUBLISH_GUID]
    publisher.run(now=1005)  # running
    outcome = publisher.run(now=1006)  # finished, nothing new
    assert outcome.as_dict() == {
        "published": False,
        "reason": "nothing changed since the last publish",
        "lastPublish": "finished",
    }
    assert len(sandbox.task_triggers) == 2


def test_a_publish_reports_its_lag_from_the_oldest_change_it_carries(world):
    state, publisher, sandbox = world
    state.mark_changed(now=1100, first=1000)  # a batch's first write at 1000, its deadline 1100
    state.mark_changed(now=1200, first=1150)  # a later batch: the oldest change stays 1000
    assert publisher.run(now=1300).lag == 300
    sandbox.running_polls = 0  # the sandbox reports the publish finished at the next look
    state.mark_changed(now=1400, first=1350)  # after the publish started: the next one's oldest
    outcome = publisher.run(now=1500)
    assert outcome.published is True and outcome.lag == 150


def test_a_publish_stuck_past_the_maximum_is_considered_over(world):
    state, publisher, sandbox = world
    state.mark_changed(now=1000)
    publisher.run(now=1001)
    state.mark_changed(now=1002)
    sandbox.running_polls = 1000  # reports "Running" for a long while
    assert publisher.run(now=2000).published is False
    assert publisher.run(now=1001 + 3601).published is True


def test_concurrent_changes_and_publishers_give_exactly_one_publish(world):
    state, publisher, sandbox = world
    sandbox.running_polls = 1000  # the publish stays running throughout
    barrier = threading.Barrier(24)

    def change():
        barrier.wait()
        state.mark_changed()

    outcomes = []

    def publish():
        barrier.wait()
        outcomes.append(publisher.run())

    threads = [threading.Thread(target=change) for _ in range(20)]
    threads += [threading.Thread(target=publish) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    state.mark_changed()  # in case every publisher ran before the first change landed
    if not any(o.published for o in outcomes):
        outcomes.append(publisher.run())
    assert sum(o.published for o in outcomes) == 1
    assert len(sandbox.task_triggers) == 1
    reasons = {o.reason for o in outcomes if not o.published}
    assert reasons <= {
        "another publisher started one",
        "nothing changed since the last publish",
        "a publish is still running",
    }


def test_an_unreadable_status_right_after_a_start_counts_as_running(world):
    state, publisher, sandbox = world
    state.mark_changed(now=1000)
    publisher.run(now=1001)
    state.mark_changed(now=1002)
    sandbox.task_polls.clear()  # the sandbox answers "Idle": a state this package cannot read
    assert publisher.run(now=1010) == PublishOutcome(False, "a publish is still running")
    assert publisher.run(now=1001 + 301).published is True  # after the grace period it is over


def test_a_failed_trigger_is_retried_on_the_next_run(world):
    state, publisher, sandbox = world
    state.mark_changed(now=1000)
    sandbox.faults = Faults.parse("5xx=1")
    with pytest.raises(errors.ServerError):
        publisher.run(now=1001)
    assert state.publish_marks() == PublishMarks(changed_at=1000.0, started_at=0.0, running=False)
    sandbox.faults = Faults()
    assert publisher.run(now=1002).published is True


def test_a_failed_publish_is_reported(world):
    state, publisher, sandbox = world
    sandbox.fail_tasks = True
    state.mark_changed(now=1000)
    publisher.run(now=1001)
    publisher.run(now=1002)  # running
    assert publisher.run(now=1003).last_publish == "failed"


def test_no_publish_task_in_the_secret_is_a_clear_error(world, secrets):
    state, publisher, _sandbox = world
    secrets(
        {"instance_key": INSTANCE_KEY, "access_token": ACCESS_TOKEN, "tasks": {"import": TASKS["import"]}}
    )
    state.mark_changed(now=1000)
    publisher.client.get().credentials.get(force=True)
    with pytest.raises(
        errors.ConfigurationError, match=r"'publish' is not configured .*\(configured: import\)"
    ):
        publisher.run(now=1001)
    assert state.publish_marks().running is False


def test_worker_marks_changes_and_the_publisher_function_publishes(world, catalog_aws, monkeypatch, capsys):
    _state, _publisher, sandbox = world
    monkeypatch.setenv("TWEAKWISE_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("TWEAKWISE_API_URL", sandbox.url)
    monkeypatch.setenv("SYNC_STATE_TABLE", catalog_aws["table"])
    monkeypatch.setenv("LEDGER_TABLE", catalog_aws["ledger"])
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", catalog_aws["dlq"])
    publisher = load_handler("publisher")
    assert publisher.lambda_handler({}, LambdaContext())["published"] is False
    worker = load_handler("catalog_worker")
    event = sqs_event(queue_messages([{"id": "e", "type": "item.delete", "itemId": "X"}]))
    assert worker.lambda_handler(event, LambdaContext()) == {"batchItemFailures": []}
    capsys.readouterr()
    assert publisher.lambda_handler({}, LambdaContext())["published"] is True
    assert sandbox.task_triggers == [PUBLISH_GUID]
    blobs = emf_blobs(capsys.readouterr().out)
    assert blobs[-1]["PublishesStarted"] == [1.0]


def test_the_tweakwise_client_is_made_by_the_first_run_that_calls_tweakwise_and_kept(world):
    state, publisher, _sandbox = world
    client, made = publisher.client.get(), []
    lazy = Publisher(Lazy(lambda: made.append(1) or client), state, max_publish_seconds=3600)
    assert lazy.run(now=1000).published is False  # nothing changed: two marks read, no client
    assert made == []
    state.mark_changed(now=1001)
    assert lazy.run(now=1002).published is True
    lazy.run(now=1003)  # asks Tweakwise whether the publish still runs: the same client
    assert made == [1]
