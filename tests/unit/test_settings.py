"""Settings: every environment variable read once, checked, named in errors, with one default that agrees
with template.yaml."""

from __future__ import annotations

import dataclasses

import pytest

from tweakwise import settings
from tweakwise.errors import ConfigurationError
from tweakwise_local.template import load_template

ALL = [
    settings.ClientSettings,
    settings.MetricsSettings,
    settings.WebhookSettings,
    settings.WorkerSettings,
    settings.PublisherSettings,
    settings.SnapshotSettings,
    settings.ObservabilitySettings,
    settings.SourceSettings,
]
TEMPLATE = load_template()
# A value for every required variable, so that one class can be read with one variable changed.
REQUIRED = {
    spec.metadata["env"]: "x"
    for cls in ALL
    for spec in dataclasses.fields(cls)
    if spec.default is dataclasses.MISSING
}
FUNCTIONS = {k: v for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


GLOBAL_ENV = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]


def _variables(function: dict) -> dict:
    return {**GLOBAL_ENV, **function["Properties"].get("Environment", {}).get("Variables", {})}


def _template_values(variable: str) -> list:
    """What the template gives `variable`, in each function that sets it: parameter defaults for Refs."""
    values = []
    for function in FUNCTIONS.values():
        value = _variables(function).get(variable)
        if isinstance(value, dict) and value.get("Ref") in TEMPLATE["Parameters"]:
            values.append(TEMPLATE["Parameters"][value["Ref"]].get("Default"))
        elif isinstance(value, dict):
            continue  # a resource's name or ARN: no default to agree with
        elif value is not None:
            values.append(value)
    return values


def test_each_variable_belongs_to_one_setting():
    names = [spec.metadata["env"] for cls in ALL for spec in dataclasses.fields(cls)]
    # The worker, the publisher and the snapshot function read the same tables.
    # The webhook and the source function send to the same queue.
    # The worker samples the items the publisher verifies, as many as PUBLISH_VERIFY_SAMPLE says.
    shared = {
        "SYNC_STATE_TABLE",
        "SYNC_STATE_TTL_DAYS",
        "LEDGER_TABLE",
        "CATALOG_QUEUE_URL",
        "PUBLISH_VERIFY_SAMPLE",
    }
    assert {name for name in names if names.count(name) > 1} == shared


@pytest.mark.parametrize("cls", ALL)
def test_defaults_agree_with_the_template(cls):
    for spec in dataclasses.fields(cls):
        if spec.default is dataclasses.MISSING:
            continue
        for value in _template_values(spec.metadata["env"]):
            variable = spec.metadata["env"]
            read = getattr(cls.from_env({**REQUIRED, variable: str(value)}), spec.name)
            assert read == spec.default, (variable, value)


def test_every_variable_a_function_reads_is_set_by_the_template():
    given = {name for function in FUNCTIONS.values() for name in _variables(function)}
    required = {
        spec.metadata["env"]
        for cls in ALL
        for spec in dataclasses.fields(cls)
        if spec.default is dataclasses.MISSING
    }
    assert required <= given


def test_values_are_read_and_typed():
    found = settings.WorkerSettings.from_env(
        {
            "SYNC_STATE_TABLE": "t",
            "DEAD_LETTER_QUEUE_URL": "q",
            "LEDGER_TABLE": "l",
            "WORKER_CONCURRENCY": " 4 ",
            "SYNC_STATE_TTL_DAYS": "",  # empty counts as unset
        }
    )
    expected = settings.WorkerSettings("t", "q", "l", concurrency=4, sync_state_ttl_days=30)
    assert dataclasses.asdict(found) == dataclasses.asdict(expected)
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.concurrency = 5  # type: ignore[misc]
    publisher = settings.PublisherSettings.from_env({"SYNC_STATE_TABLE": "t", "LEDGER_TABLE": "l"})
    assert publisher.max_publish_seconds == 7200.0


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "Environment variable SYNC_STATE_TABLE is not set; the template sets it"),
        ({"SYNC_STATE_TABLE": "t"}, "Environment variable DEAD_LETTER_QUEUE_URL is not set"),
        ({"WORKER_CONCURRENCY": "ten"}, "WORKER_CONCURRENCY must be a whole number, got 'ten'"),
        ({"WORKER_CONCURRENCY": "2.5"}, "WORKER_CONCURRENCY must be a whole number, got '2.5'"),
        ({"WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY must be at least 1, got '0'"),
        ({"WORKER_CONCURRENCY": "101"}, "WORKER_CONCURRENCY must be at most 100, got '101'"),
        ({"SYNC_STATE_TTL_DAYS": "0"}, "SYNC_STATE_TTL_DAYS must be at least 1, got '0'"),
    ],
)
def test_bad_values_name_their_variable(environ, message):
    base = {"SYNC_STATE_TABLE": "t", "DEAD_LETTER_QUEUE_URL": "q", "LEDGER_TABLE": "l"}
    if environ == {} or "DEAD_LETTER_QUEUE_URL" in message:
        base = {}
    with pytest.raises(ConfigurationError) as caught:
        settings.WorkerSettings.from_env({**base, **environ})
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [
        ("TWEAKWISE_READ_TIMEOUT", "soon", "TWEAKWISE_READ_TIMEOUT must be a number, got 'soon'"),
        ("TWEAKWISE_CONNECT_TIMEOUT", "-1", "TWEAKWISE_CONNECT_TIMEOUT must be at least 0, got '-1'"),
        ("TWEAKWISE_MAX_RETRIES", "-1", "TWEAKWISE_MAX_RETRIES must be at least 0, got '-1'"),
        ("TWEAKWISE_API_URL", "ftp://x", "TWEAKWISE_API_URL must be an http(s) URL, got 'ftp://x'"),
        # A proxy URL may carry a password: the message does not echo it.
        ("TWEAKWISE_PROXY_URL", "socks5://u:pw@h", "TWEAKWISE_PROXY_URL must be an http(s) URL"),
    ],
)
def test_client_settings_are_checked(variable, raw, message):
    with pytest.raises(ConfigurationError) as caught:
        settings.ClientSettings.from_env({"TWEAKWISE_SECRET_ID": "s", variable: raw})
    assert str(caught.value) == message


def test_fields_know_their_variable_and_default():
    assert settings.WebhookSettings.variable("signing_secret_id") == "WEBHOOK_SECRET_ID"
    assert settings.WebhookSettings.default("signing_secret_max_age") == 60
    assert settings.ClientSettings.default("api_url") == settings.DEFAULT_API_URL


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("FALSE", False), ("", False)])
def test_switches_read_true_or_false(raw, value):
    assert settings.ObservabilitySettings.from_env({"TRACE_CALLS": raw}).trace_calls is value


def test_a_switch_is_true_or_false_only():
    with pytest.raises(ConfigurationError) as caught:
        settings.ObservabilitySettings.from_env({"TRACE_CALLS": "yes"})
    assert str(caught.value) == "TRACE_CALLS must be true or false, got 'yes'"


@dataclasses.dataclass(frozen=True)
class _Optional(settings._FromEnvironment):
    label: str | None = settings._setting("OPTIONAL_LABEL", None)
    limit: int | None = settings._setting("OPTIONAL_LIMIT", None, minimum=1)


def test_an_optional_setting_is_parsed_as_its_type_not_as_a_number():
    read = _Optional.from_env({"OPTIONAL_LABEL": "12", "OPTIONAL_LIMIT": "12"})
    assert read.label == "12"  # a string, though it looks like a number
    assert read.limit == 12
    assert _Optional.from_env({"OPTIONAL_LABEL": "shoes"}).label == "shoes"
    assert _Optional.from_env({}) == _Optional(None, None)
    with pytest.raises(ConfigurationError, match="OPTIONAL_LIMIT must be a whole number"):
        _Optional.from_env({"OPTIONAL_LIMIT": "many"})
