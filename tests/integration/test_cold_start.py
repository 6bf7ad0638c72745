"""What a handler's cold start loads: nothing it does not use (measured in `make importtime`,
docs/benchmarks.md). Each handler is imported in a fresh interpreter with its template environment."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tweakwise_local.template import ROOT, Resolver, function_environment, load_template

TEMPLATE = load_template()
FUNCTIONS = [k for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::Function"]
# Loaded by nothing a handler runs: Powertools' parser models (70-100 ms), its batch module and event data
# classes (asyncio and every event type: 26 ms of the worker's cold start), the X-Ray SDK (about 60 ms,
# TraceCalls off), pydantic's v1 copy (the layer does not ship it).
UNUSED = (
    "aws_lambda_powertools.utilities.parser",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.data_classes",
    "asyncio",
    "aws_xray_sdk",
    "pydantic.v1",
)
# What only another function builds: the snapshot line models and steps, the webhook's flow.
NOT_MINE = {
    # pydantic itself: the webhook validates with its compiled contract, on pydantic-core alone
    "CatalogWebhookFunction": (
        "tweakwise.snapshot",
        "tweakwise.worker",
        "tweakwise.sync",
        "tweakwise.catalog",
        "pydantic.",
    ),
    "CatalogWorkerFunction": ("tweakwise.snapshot", "tweakwise.webhook", "tweakwise.queueing"),
    # requests with the Tweakwise client: made on the first run that has something to publish
    "PublisherFunction": (
        "tweakwise.catalog",
        "tweakwise.snapshot",
        "pydantic",
        "requests",
        "tweakwise.client",
    ),
    # the line checks and models, the plan, the ids and the guard: one invocation each per run (the Map's
    # batches, which use none of them, are most of its cold starts)
    "CatalogSnapshotFunction": (
        "tweakwise.webhook",
        "tweakwise.worker",
        "tweakwise.queueing",
        "tweakwise.snapshot_lines",
        "tweakwise.snapshot_models",
        "tweakwise.snapshot_plan",
        "tweakwise.snapshot_ids",
        "tweakwise.snapshot_guard",
    ),
    # maps and queues: never calls Tweakwise, never applies
    "CatalogSourceFunction": (
        "tweakwise.snapshot",
        "tweakwise.worker",
        "tweakwise.sync",
        "tweakwise.webhook",
        "tweakwise.client",
        "requests",
    ),
}
PROBE = """
import json, sys
import app
print(json.dumps(sorted(m for m in sys.modules if m.startswith(tuple(sys.argv[1:])))))
"""
# The boto3 clients a handler makes at init: only those every invocation uses (each costs 20-45 % of
# `import boto3`); the others are made on first use (tweakwise.lazy).
CLIENTS_AT_INIT = {
    "CatalogMonitorFunction": [],
    "CatalogWebhookFunction": ["sqs"],
    "CatalogWorkerFunction": ["dynamodb"],  # SQS only to dead-letter
    "TaskRunnerFunction": [],
    "PublisherFunction": ["dynamodb"],
    "CatalogSnapshotFunction": ["dynamodb"],  # S3 only in validate, report and a batch's rejections
    "CatalogSourceFunction": ["dynamodb", "sqs"],  # the source map, the catalog queue
}
CLIENT_PROBE = """
import json, botocore.session
made, create = [], botocore.session.Session.create_client
def record(self, service_name, *args, **kwargs):
    made.append(service_name)
    return create(self, service_name, *args, **kwargs)
botocore.session.Session.create_client = record
import app
print(json.dumps(made))
"""

# After `import app`: the catalog's models not built. A model a flow validates is built at init (not in the
# first request); a model it never validates (a base, another function's body) is not built at all. The
# webhook builds none: it imports no model (NOT_MINE), and its compiled contract is built at init.
UNBUILT_PROBE = """
import json, pydantic, pydantic_core
import app
from tweakwise import catalog
print(json.dumps(sorted(
    name for name, value in vars(catalog).items()
    if isinstance(value, type) and issubclass(value, pydantic.BaseModel)
    and value.__module__ == catalog.__name__
    and not isinstance(value.__pydantic_validator__, pydantic_core.SchemaValidator)
)))
"""
BASES = ["_Event", "_ItemFields"]
UNBUILT = {
    "CatalogWorkerFunction": ["WebhookBody", *BASES],
    "CatalogSnapshotFunction": ["WebhookBody", *BASES],
    "CatalogSourceFunction": ["WebhookBody", *BASES],
}


def _probe(logical: str, probe: str, *args: str, **extra: str) -> list[str]:
    code = ROOT / TEMPLATE["Resources"][logical]["Properties"]["CodeUri"]
    env = {
        **function_environment(TEMPLATE, logical, Resolver(TEMPLATE)),
        "AWS_DEFAULT_REGION": "eu-west-1",
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(code),
        **extra,
    }
    run = subprocess.run(  # noqa: S603 - our own interpreter and probe
        [sys.executable, "-c", probe, *args], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def _loaded(logical: str, **extra: str) -> list[str]:
    return _probe(logical, PROBE, *UNUSED, **extra)


@pytest.mark.parametrize("logical", FUNCTIONS)
def test_a_cold_start_loads_nothing_the_handler_does_not_use(logical):
    assert _loaded(logical) == []
    if logical in NOT_MINE:
        assert _probe(logical, PROBE, *NOT_MINE[logical]) == []


@pytest.mark.parametrize("logical", sorted(UNBUILT))
def test_a_cold_start_builds_the_models_its_flow_validates_and_no_other(logical):
    assert _probe(logical, UNBUILT_PROBE) == UNBUILT[logical]


def test_every_function_has_its_clients_at_init_listed():
    assert sorted(CLIENTS_AT_INIT) == sorted(FUNCTIONS)


@pytest.mark.parametrize("logical", FUNCTIONS)
def test_a_cold_start_makes_only_the_clients_every_invocation_uses(logical):
    assert sorted(_probe(logical, CLIENT_PROBE)) == CLIENTS_AT_INIT[logical]


def test_trace_calls_loads_the_xray_sdk_and_patches_botocore_only():
    lambda_env = {"LAMBDA_TASK_ROOT": "/var/task", "AWS_LAMBDA_FUNCTION_NAME": "monitor"}  # else it stays off
    loaded = _loaded("CatalogMonitorFunction", TRACE_CALLS="true", **lambda_env)
    assert "aws_xray_sdk" in loaded
    assert "aws_xray_sdk.ext.botocore.patch" in loaded and "aws_xray_sdk.ext.requests.patch" not in loaded
