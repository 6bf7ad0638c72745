"""Shared fixtures: moto for AWS, a real threaded HTTP server on 127.0.0.1 standing in for Tweakwise."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import hypothesis
import pytest
from pytest_httpserver import HTTPServer

from tweakwise.client import TweakwiseClient
from tweakwise.credentials import SecretCredentials
from tweakwise_local import invocations as lambda_events
from tweakwise_local.invocations import (  # noqa: F401 - re-exported for the tests
    LambdaContext,
    api_event,
    emf_blobs,
    load_event,
    load_handler,
    queue_messages,
    sqs_event,
)
from tweakwise_local.provision import create_table

ROOT = Path(__file__).resolve().parent.parent

# Property tests draw 150 examples; `make mutation` runs them once per mutant, with fewer.
hypothesis.settings.register_profile("default", max_examples=150)
hypothesis.settings.register_profile("mutation", max_examples=25)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
REGION = "eu-west-1"
SECRET_ID = "tweakwise/test"
INSTANCE_KEY = "inst-4f1c2a"
ACCESS_TOKEN = "tok-SECRET-9b8e7d6c5a4f3e2d1c0b"


KINDS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items):
    """Mark each test by its folder: `pytest -m unit` is the quick loop (`make unit`)."""
    for item in items:
        kind = item.path.parent.name
        if kind in KINDS:
            item.add_marker(kind)


@pytest.fixture(autouse=True)
def _unit_tests_spawn_nothing(request, monkeypatch):
    """The unit loop stays in seconds: a unit test that starts a process fails (move it to integration)."""
    if request.node.get_closest_marker("unit") is None:
        return
    import subprocess

    def refuse(*args, **kwargs):
        raise AssertionError("a unit test starts no process: move this test to tests/integration")

    monkeypatch.setattr(subprocess, "Popen", refuse)


@pytest.fixture(autouse=True)
def _fresh_container():
    """Each test starts as a new container: no secret value remembered by an earlier one."""
    from tweakwise import secrecy

    secrecy.forget()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    """Fake AWS credentials and a region: nothing can reach a real account."""
    for key in [k for k in os.environ if k.startswith(("AWS_", "TWEAKWISE_", "POWERTOOLS_"))]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "TweakwiseTest")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "test")


IMPORT_GUID = "3f2b8a3c-1d4e-4f5a-9b6c-7d8e9f0a1b2c"
PUBLISH_GUID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
TASKS = {"import": IMPORT_GUID, "publish": PUBLISH_GUID}


@pytest.fixture
def sandbox():
    """The Tweakwise sandbox (tweakwise_local/sandbox.py) on a free port, knowing the test credentials."""
    from tweakwise_local.sandbox import Sandbox

    box = Sandbox(INSTANCE_KEY, ACCESS_TOKEN)
    box.url = box.start()
    yield box
    box.stop()


@pytest.fixture
def tasks_secret(secrets, sandbox, monkeypatch):
    """The Tweakwise secret with task GUIDs, and the environment of a function calling the sandbox."""
    secrets({"instance_key": INSTANCE_KEY, "access_token": ACCESS_TOKEN, "tasks": TASKS})
    monkeypatch.setenv("TWEAKWISE_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("TWEAKWISE_API_URL", sandbox.url)
    return secrets


@pytest.fixture
def aws():
    from moto import mock_aws  # here: the unit loop never loads it

    with mock_aws():
        yield


@pytest.fixture
def secrets(aws):
    client = boto3.client("secretsmanager", region_name=REGION)

    def put(value, secret_id: str = SECRET_ID) -> None:
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            client.put_secret_value(SecretId=secret_id, SecretString=text)
        except client.exceptions.ResourceNotFoundException:
            client.create_secret(Name=secret_id, SecretString=text)

    put({"instance_key": INSTANCE_KEY, "access_token": ACCESS_TOKEN})
    return put


class CallCounter:
    """Counts AWS API calls made by one boto3 client, through botocore's own event hooks."""

    def __init__(self, boto_client, operation: str):
        self.count = 0
        service = boto_client.meta.service_model.service_id.hyphenize()
        boto_client.meta.events.register(f"before-call.{service}.{operation}", self._hit)

    def _hit(self, **_):
        self.count += 1


@pytest.fixture(scope="session")
def _tweakwise_server():
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def tweakwise(_tweakwise_server):
    """The Tweakwise stand-in, with no expectations left over from an earlier test."""
    _tweakwise_server.clear()
    yield _tweakwise_server
    _tweakwise_server.clear()


@pytest.fixture
def make_client(tweakwise, secrets):
    def make(**kwargs) -> TweakwiseClient:
        options = {"backoff_factor": 0.01, "backoff_jitter": 0.0, "read_timeout": 5.0}
        options.update(kwargs)
        return TweakwiseClient(
            SecretCredentials(SECRET_ID, 300), tweakwise.url_for("/").rstrip("/"), **options
        )

    return make


SIGNING_SECRET = "whsec-0123456789abcdef0123456789abcdef"
WEBHOOK_SECRET_ID = "tweakwise/webhook-test"


@pytest.fixture
def catalog_aws(secrets):
    """The webhook's and worker's AWS resources, as template.yaml declares them, in moto."""
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName="catalog-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName="catalog.fifo",
        Attributes={
            "FifoQueue": "true",
            "DeduplicationScope": "messageGroup",
            "FifoThroughputLimit": "perMessageGroupId",
            "VisibilityTimeout": "360",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    create_table(boto3.client("dynamodb", region_name=REGION), "sync-state", "SYNC_STATE_TABLE")
    create_table(boto3.client("dynamodb", region_name=REGION), "ledger", "LEDGER_TABLE")
    secrets({"signing_secret": SIGNING_SECRET}, secret_id=WEBHOOK_SECRET_ID)
    return {"sqs": sqs, "queue": queue, "dlq": dlq, "table": "sync-state", "ledger": "ledger"}


def signed_headers(body: bytes, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    return lambda_events.signed_headers(body, secret, timestamp)


def drain(sqs, queue_url: str) -> list[dict]:
    """Every message on a queue, with its attributes, as a worker's event source would receive them."""
    messages = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=0,
        ).get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        messages.extend(batch)


@pytest.fixture
def tweakwise_log(monkeypatch):
    """Every message the tweakwise logger emits during the test, whatever handlers Powertools sets on it
    (loading a handler replaces them)."""
    import logging

    messages: list[str] = []
    logger = logging.getLogger("tweakwise")
    handle = logger.handle

    def collect(record: logging.LogRecord) -> None:
        messages.append(record.getMessage())
        handle(record)

    monkeypatch.setattr(logger, "handle", collect)
    return messages
