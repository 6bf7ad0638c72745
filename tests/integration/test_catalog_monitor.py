"""The scheduled catalog monitor, from its sample event to the EMF metrics it prints."""

from __future__ import annotations

import json
import logging

import pytest

from conftest import (
    ACCESS_TOKEN,
    INSTANCE_KEY,
    SECRET_ID,
    CallCounter,
    LambdaContext,
    emf_blobs,
    load_event,
    load_handler,
)
from tweakwise import errors


@pytest.fixture
def monitor(tweakwise, secrets, monkeypatch):
    monkeypatch.setenv("TWEAKWISE_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("TWEAKWISE_API_URL", tweakwise.url_for("/"))
    monkeypatch.setenv("TWEAKWISE_INSTANCE_NAME", "shop-nl")
    monkeypatch.setenv("TWEAKWISE_MAX_RETRIES", "1")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "catalog-monitor")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    return load_handler("catalog_monitor")


def _serve_stats(tweakwise, products=1200, categories=85):
    tweakwise.expect_request("/stats/totalproducts").respond_with_json({"TotalProducts": products})
    tweakwise.expect_request("/stats/totalcategories").respond_with_json(categories)


def test_sample_event_publishes_both_counts_as_metrics(monitor, tweakwise, capsys):
    _serve_stats(tweakwise)
    result = monitor.lambda_handler(load_event("catalog_monitor.json"), LambdaContext())
    assert result == {"total_products": 1200, "total_categories": 85}
    [blob] = emf_blobs(capsys.readouterr().out)
    directive = blob["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "TweakwiseTest"
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "TotalProducts": "Count",
        "TotalCategories": "Count",
    }
    assert "Instance" in directive["Dimensions"][0]
    assert blob["Instance"] == "shop-nl"
    assert (blob["TotalProducts"], blob["TotalCategories"]) == ([1200.0], [85.0])
    assert INSTANCE_KEY not in json.dumps(blob)


def test_warm_invocations_do_not_read_the_secret_again(monitor, tweakwise, capsys):
    _serve_stats(tweakwise)
    calls = CallCounter(monitor.client.credentials.provider.client, "GetSecretValue")
    for _ in range(3):
        monitor.lambda_handler(load_event("catalog_monitor.json"), LambdaContext())
    assert calls.count == 1
    assert len(tweakwise.log) == 6


def test_no_secret_value_in_any_log_or_output(monitor, tweakwise, capsys, caplog):
    tweakwise.expect_request("/stats/totalproducts").respond_with_data("", status=401)
    with caplog.at_level(logging.DEBUG), pytest.raises(errors.AuthenticationError) as caught:
        monitor.lambda_handler(load_event("catalog_monitor.json"), LambdaContext())
    out = capsys.readouterr()
    everything = out.out + out.err + caplog.text + str(caught.value) + repr(caught.value)
    assert ACCESS_TOKEN not in everything
    assert "re-reading secret" in everything


def test_tweakwise_failure_fails_the_invocation_for_retry_and_dlq(monitor, tweakwise, capsys):
    tweakwise.expect_request("/stats/totalproducts").respond_with_data("", status=503)
    with pytest.raises(errors.ServerError, match="GET /stats/totalproducts answered 503"):
        monitor.lambda_handler(load_event("catalog_monitor.json"), LambdaContext())
    assert len(tweakwise.log) == 2  # one retry (TWEAKWISE_MAX_RETRIES=1)
    assert emf_blobs(capsys.readouterr().out) == []  # no count published: the not-reporting alarm sees it


def test_import_fetches_nothing(tweakwise, secrets, monkeypatch):
    monkeypatch.setenv("TWEAKWISE_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("TWEAKWISE_API_URL", tweakwise.url_for("/"))
    module = load_handler("catalog_monitor")
    assert module.client.credentials._provider is None  # no boto3 client, no GetSecretValue yet
    assert tweakwise.log == []


def test_alarms_watch_exactly_the_metric_the_handler_publishes(tweakwise, secrets, monkeypatch, capsys):
    """CloudWatch matches a metric by namespace, name and the full set of dimensions: a published
    dimension the alarm does not name would leave every alarm without data."""
    from tweakwise_local.template import Resolver, function_environment, load_template

    template = load_template()
    resolver = Resolver(template)
    for key, value in function_environment(template, "CatalogMonitorFunction", resolver).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TWEAKWISE_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("TWEAKWISE_API_URL", tweakwise.url_for("/"))
    _serve_stats(tweakwise)
    load_handler("catalog_monitor").lambda_handler({}, LambdaContext())
    [blob] = emf_blobs(capsys.readouterr().out)
    directive = blob["_aws"]["CloudWatchMetrics"][0]
    published = {name: blob[name] for name in directive["Dimensions"][0]}
    alarms = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    watched = []
    for alarm in alarms:
        props = alarm["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        for metric in [props, *stats]:
            names = {m["Name"] for m in directive["Metrics"]}
            if (
                resolver.resolve(metric.get("Namespace")) == directive["Namespace"]
                and metric["MetricName"] in names
            ):
                dims = {d["Name"]: resolver.resolve(d["Value"]) for d in metric["Dimensions"]}
                assert dims == published, alarm["Properties"]["AlarmName"]
                watched.append(metric["MetricName"])
    assert len(watched) == 3
