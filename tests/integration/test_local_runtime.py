"""The local runtime's own promises (tweakwise_local): functions isolated from each other as separate
Lambda functions are, SQS FIFO deduplication as SQS keeps it, clear words for a bad local setup."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from tweakwise_local import credentials, queues
from tweakwise_local.credentials import local_tweakwise
from tweakwise_local.functions import local_functions
from tweakwise_local.provision import LOCAL_AWS_ENVIRONMENT


@pytest.fixture
def local(monkeypatch):
    for name, value in LOCAL_AWS_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    with local_functions() as make:
        yield make


# In a fresh interpreter: Powertools keeps a service's logger configured for the process, so a function
# loaded by an earlier test would still write to that test's output.
TWO_FUNCTIONS = """
import json, os, sys
from tweakwise_local.functions import local_functions
from tweakwise_local.invocations import log_lines
from tweakwise_local.provision import LOCAL_AWS_ENVIRONMENT

os.environ.update(LOCAL_AWS_ENVIRONMENT)
with local_functions() as make:
    monitor, runner = make("CatalogMonitorFunction"), make("TaskRunnerFunction")
    monitor.invoke({}, capture=True)
    runner.invoke({"task": "import"}, capture=True)  # loaded last: its init configured the package logger
    _result, printed = monitor.invoke({}, capture=True)
print(json.dumps([entry for _line, entry in log_lines(printed) if entry is not None]))
"""


def test_each_function_logs_under_its_own_name_whichever_loaded_last():
    run = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", TWO_FUNCTIONS],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    entries = json.loads(run.stdout.strip().splitlines()[-1])
    assert any("Tweakwise GET" in e["message"] for e in entries)  # the package logger's own lines
    assert {(e["service"], e.get("function_name")) for e in entries} == {
        ("catalog-monitor", "CatalogMonitorFunction")
    }


def test_one_function_runs_while_another_is_busy(local):
    monitor, publisher = local("CatalogMonitorFunction"), local("PublisherFunction")
    monitor.invoke({})
    publisher.invoke({"job": "publish-after-sync"})  # both warm
    release, entered = threading.Event(), threading.Event()
    slow_monitor = monitor._handler

    def blocking(event, context):
        entered.set()
        release.wait(10)
        return slow_monitor(event, context)

    monitor._handler = blocking
    busy = threading.Thread(target=monitor.invoke, args=({},))
    busy.start()
    assert entered.wait(5)
    started = time.monotonic()
    assert publisher.invoke({"job": "publish-after-sync"}, capture=True)[0]["published"] is False
    assert time.monotonic() - started < 5  # it did not wait for the monitor's invocation
    release.set()
    busy.join(10)


def _message(message_id: str, dedup: str, group: str = "g", sent: float | None = None) -> dict:
    attributes = {
        "MessageDeduplicationId": dedup,
        "MessageGroupId": group,
        "SentTimestamp": str(int((sent or time.time()) * 1000)),
    }
    return {
        "MessageId": message_id,
        "Body": json.dumps({"id": message_id, "type": "item.upsert"}),
        "Attributes": attributes,
    }


def test_fifo_deduplication_lasts_five_minutes_from_the_first_send():
    source = queues.EventSource(None, "url", "arn", 10, by_group=True)  # type: ignore[arg-type]
    assert not queues._duplicate(source, _message("m1", "d1"))
    assert not queues._duplicate(source, _message("m1", "d1"))  # the same message delivered again
    assert queues._duplicate(source, _message("m2", "d1"))  # sent again after m1 was deleted
    assert not queues._duplicate(source, _message("m3", "d1", group="other"))  # scope: message group
    old = queues.EventSource(None, "url", "arn", 10, by_group=True)  # type: ignore[arg-type]
    assert not queues._duplicate(old, _message("m1", "d1", sent=time.time() - 301))
    assert not queues._duplicate(old, _message("m2", "d1"))  # five minutes on: a new message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"instance_key": "k",', ".tweakwise.local.json is not valid JSON (line 1, column 22)"),
        ('["k", "t"]', ".tweakwise.local.json must hold a JSON object"),
        ('{"instance_key": "k"}', ".tweakwise.local.json has no 'access_token' (a non-empty string)"),
        ('{"instance_key": "", "access_token": "t"}', ".tweakwise.local.json has no 'instance_key'"),
        (
            '{"instance_key": "k", "access_token": "t", "api_url": "ftp://x"}',
            "'api_url' must be an http(s) URL",
        ),
    ],
)
def test_a_bad_local_credentials_file_is_named_in_one_line(tmp_path, monkeypatch, content, message):
    path = tmp_path / ".tweakwise.local.json"
    path.write_text(content)
    monkeypatch.setattr(credentials, "LIVE_FILE", path)
    monkeypatch.setenv("TWEAKWISE_MODE", "live")
    monkeypatch.delenv("TWEAKWISE_INSTANCE_KEY", raising=False)
    monkeypatch.delenv("TWEAKWISE_ACCESS_TOKEN", raising=False)
    with pytest.raises(SystemExit) as caught:
        local_tweakwise()
    text = str(caught.value)
    assert message in text and "\n" not in text and '"k"' not in text.split("must be", maxsplit=1)[0]
