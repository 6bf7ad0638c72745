"""`make invoke`: every function runs locally with its sample event (moto + the Tweakwise sandbox)."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT
from tweakwise_local.process import run_module
from tweakwise_local.template import load_template

FUNCTIONS = sorted(
    k for k, v in load_template()["Resources"].items() if v["Type"] == "AWS::Serverless::Function"
)
SAMPLES = {
    "CatalogMonitorFunction": ("catalog_monitor.json", '"total_products": 3'),
    "CatalogWebhookFunction": ("catalog_webhook.json", '"statusCode": 202'),
    "CatalogWorkerFunction": ("catalog_worker.json", '"batchItemFailures": []'),
    "TaskRunnerFunction": ("task_runner.json", '"triggered": true'),
    "PublisherFunction": ("publisher.json", '"published": false'),
    "CatalogSnapshotFunction": ("catalog_snapshot.json", '"outcome": "failed"'),
    "CatalogSourceFunction": ("sources/shopify-products-update.json", '"queued": 2'),
}


def test_every_function_has_a_sample_event():
    assert sorted(SAMPLES) == FUNCTIONS
    for event, _ in SAMPLES.values():
        json.loads((ROOT / "events" / event).read_text())


@pytest.mark.parametrize("function", FUNCTIONS)
def test_invoke_runs_the_function_with_its_sample_event(function):
    event, expected = SAMPLES[function]
    run = run_module("tweakwise_local.invoke", function, f"events/{event}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert expected in run.stdout
    assert "local sandbox" in run.stdout


def test_invoke_explains_a_wrong_function_name():
    run = run_module("tweakwise_local.invoke", "NoSuchFunction", "events/catalog_monitor.json", timeout=60)
    assert run.returncode == 2
    assert "choose one of: CatalogMonitorFunction" in run.stdout
