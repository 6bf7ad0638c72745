"""Every environment variable the functions read, in one place: its name, its default and its check.

Each function builds its frozen settings once, at init, with `from_env()`; a missing or invalid variable
raises ConfigurationError naming it. A field's default is the one default of that setting, and agrees
with the template parameter that sets it (tests/unit/test_settings.py compares them).
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Self

from .errors import ConfigurationError

DEFAULT_API_URL = "https://navigator-api.tweakwise.com"
STEP_FUNCTIONS_ITEM_BYTES = 262_144  # a Distributed Map item's own limit (256 KiB): a snapshot line's


def _setting(env: str, default: Any = MISSING, *, minimum: float | None = None, maximum: float | None = None):
    """A dataclass field read from the environment variable `env` (empty counts as unset)."""
    return field(default=default, metadata={"env": env, "minimum": minimum, "maximum": maximum})


def _kind(annotation: Any) -> type:
    """The type a field's variable is parsed as: its annotation, `None` dropped from an optional."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(kinds) == 1:
            return kinds[0]
    if annotation not in (str, bool, int, float):
        raise TypeError(f"a setting is a str, bool, int or float (or one of them | None), not {annotation!r}")
    return annotation


def _parse(kind: type, name: str, raw: str, minimum: float | None, maximum: float | None) -> Any:
    if kind is str:
        return raw
    if kind is bool:
        if raw.lower() not in ("true", "false"):
            raise ConfigurationError(f"{name} must be true or false, got {raw!r}")
        return raw.lower() == "true"
    try:
        value = int(raw) if kind is int else float(raw)
    except ValueError:
        wanted = "a whole number" if kind is int else "a number"
        raise ConfigurationError(f"{name} must be {wanted}, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum:g}, got {raw!r}")
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"{name} must be at most {maximum:g}, got {raw!r}")
    return value


# Frozen, with no generated __eq__ or __repr__: no function compares or prints its settings, and every cold
# start compiles the code a dataclass generates.
_settings = dataclass(frozen=True, eq=False, repr=False)


class _FromEnvironment:
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read and check every field's variable; ConfigurationError names the first bad one."""
        environ = os.environ if environ is None else environ
        values = {}
        annotations = typing.get_type_hints(cls)  # the type objects (annotations are strings here)
        for spec in fields(cls):  # type: ignore[arg-type]
            name = spec.metadata["env"]
            raw = environ.get(name, "").strip()
            if not raw:
                if spec.default is MISSING:
                    raise ConfigurationError(f"Environment variable {name} is not set; the template sets it")
                continue
            values[spec.name] = _parse(
                _kind(annotations[spec.name]), name, raw, spec.metadata["minimum"], spec.metadata["maximum"]
            )
        return cls(**values)

    @classmethod
    def _field(cls, name: str) -> Any:
        return next(spec for spec in fields(cls) if spec.name == name)  # type: ignore[arg-type]

    @classmethod
    def variable(cls, name: str) -> str:
        """The environment variable behind a field (for messages that tell where a value came from)."""
        return cls._field(name).metadata["env"]

    @classmethod
    def default(cls, name: str) -> Any:
        """A field's default: the one default of that setting."""
        return cls._field(name).default


@_settings
class ClientSettings(_FromEnvironment):
    """The Tweakwise client: every function that calls Tweakwise."""

    secret_id: str = _setting("TWEAKWISE_SECRET_ID")
    secret_max_age: int = _setting("TWEAKWISE_SECRET_MAX_AGE", 300, minimum=0)
    api_url: str = _setting("TWEAKWISE_API_URL", DEFAULT_API_URL)
    connect_timeout: float = _setting("TWEAKWISE_CONNECT_TIMEOUT", 5.0, minimum=0)
    read_timeout: float = _setting("TWEAKWISE_READ_TIMEOUT", 20.0, minimum=0)
    max_retries: int = _setting("TWEAKWISE_MAX_RETRIES", 3, minimum=0)
    # An HTTP(S) proxy for Tweakwise calls; empty: direct (HTTP(S)_PROXY variables are not read).
    proxy_url: str = _setting("TWEAKWISE_PROXY_URL", "")

    def __post_init__(self) -> None:
        if not self.api_url.startswith(("https://", "http://")):
            raise ConfigurationError(
                f"{self.variable('api_url')} must be an http(s) URL, got {self.api_url!r}"
            )
        if self.proxy_url and not self.proxy_url.startswith(("https://", "http://")):
            # Not echoed: a proxy URL may carry a password.
            raise ConfigurationError(f"{self.variable('proxy_url')} must be an http(s) URL")


@_settings
class ObservabilitySettings(_FromEnvironment):
    """Every function's logger and tracer."""

    # Each Tweakwise and AWS call as an X-Ray subsegment (Powertools Tracer and the X-Ray SDK: about 60 ms
    # of every cold start, and CPU on every call). Off, Lambda's active tracing still records each
    # invocation (template: TraceCalls).
    trace_calls: bool = _setting("TRACE_CALLS", False)


@_settings
class MetricsSettings(_FromEnvironment):
    """The `Instance` dimension of every metric (never the instance key: that is a secret)."""

    instance_name: str = _setting("TWEAKWISE_INSTANCE_NAME", "default")


@_settings
class WebhookSettings(_FromEnvironment):
    """The catalog webhook."""

    queue_url: str = _setting("CATALOG_QUEUE_URL")
    signing_secret_id: str = _setting("WEBHOOK_SECRET_ID")
    # How long a key removed from the secret may still pass (template: SigningSecretMaxAgeSeconds).
    signing_secret_max_age: int = _setting("WEBHOOK_SECRET_MAX_AGE", 60, minimum=0)


@_settings
class WorkerSettings(_FromEnvironment):
    """The catalog worker."""

    sync_state_table: str = _setting("SYNC_STATE_TABLE")
    dead_letter_queue_url: str = _setting("DEAD_LETTER_QUEUE_URL")
    ledger_table: str = _setting("LEDGER_TABLE")
    concurrency: int = _setting("WORKER_CONCURRENCY", 10, minimum=1, maximum=100)
    sync_state_ttl_days: int = _setting("SYNC_STATE_TTL_DAYS", 30, minimum=1)
    # Items offered to the publish sample (the publisher verifies them after the next publish); 0: none.
    publish_verify_sample: int = _setting("PUBLISH_VERIFY_SAMPLE", 20, minimum=0, maximum=100)


@_settings
class SnapshotSettings(_FromEnvironment):
    """The snapshot function: validate, apply, orphans and report of a whole-catalog snapshot."""

    bucket: str = _setting("SNAPSHOT_BUCKET")
    sync_state_table: str = _setting("SYNC_STATE_TABLE")
    ledger_table: str = _setting("LEDGER_TABLE")
    sync_state_ttl_days: int = _setting("SYNC_STATE_TTL_DAYS", 30, minimum=1)
    # Refuse the whole snapshot when more of its lines than this are invalid (template parameter).
    max_invalid_percent: float = _setting("SNAPSHOT_MAX_INVALID_PERCENT", 0.1, minimum=0, maximum=100)
    # The shrink guard: delete nothing when orphans exceed this share of the ledger's entities.
    max_delete_percent: float = _setting("SNAPSHOT_MAX_DELETE_PERCENT", 5.0, minimum=0, maximum=100)
    # ... or when the snapshot holds fewer items than this (the monitor's MinProductCount).
    min_product_count: int = _setting("MIN_PRODUCT_COUNT", 1, minimum=0)
    # Items of one Distributed Map batch applied at the same time.
    concurrency: int = _setting("SNAPSHOT_BATCH_CONCURRENCY", 8, minimum=1, maximum=64)
    # The Distributed Map's own numbers: the state machine reads them from the validate step's answer.
    map_concurrency: int = _setting("SNAPSHOT_MAP_CONCURRENCY", 10, minimum=1, maximum=1000)
    batch_size: int = _setting("SNAPSHOT_BATCH_SIZE", 200, minimum=1, maximum=2000)
    tolerated_failure_percent: float = _setting(
        "SNAPSHOT_TOLERATED_FAILURE_PERCENT", 10.0, minimum=0, maximum=100
    )
    # A longer line is an invalid line, read past (memory stays bounded whatever the file holds).
    max_line_bytes: int = _setting(
        "SNAPSHOT_MAX_LINE_BYTES", STEP_FUNCTIONS_ITEM_BYTES, minimum=1024, maximum=STEP_FUNCTIONS_ITEM_BYTES
    )
    # One snapshot at a time: a lock older than this (a crashed execution) is taken over. The snapshot
    # state machine's TimeoutSeconds: no execution outlives it (tests/unit/test_snapshot_contract.py).
    lock_seconds: int = _setting("SNAPSHOT_LOCK_SECONDS", 86400, minimum=60)


@_settings
class PublisherSettings(_FromEnvironment):
    """Publish after sync, and its check on the shopper-facing API."""

    sync_state_table: str = _setting("SYNC_STATE_TABLE")
    ledger_table: str = _setting("LEDGER_TABLE")
    # A publish running longer than this is taken as over (template: TaskTimeoutSeconds).
    max_publish_seconds: float = _setting("MAX_PUBLISH_SECONDS", 7200.0, minimum=1)
    publish_verify_sample: int = _setting("PUBLISH_VERIFY_SAMPLE", 20, minimum=0, maximum=100)
    # The shopper-facing API a finished publish is verified on (verify.py).
    frontend_url: str = _setting("TWEAKWISE_FRONTEND_URL", "https://gateway.tweakwisenavigator.com")
    alarm_topic_arn: str = _setting("ALARM_TOPIC_ARN", "")  # mismatches are notified here
    event_bus_name: str = _setting("EVENT_BUS_NAME", "default")  # tweakwise.publish.completed goes here


@_settings
class SourceSettings(_FromEnvironment):
    """The source function: commercetools and Shopify events from their partner event buses."""

    queue_url: str = _setting("CATALOG_QUEUE_URL")
    source_map_table: str = _setting("SOURCE_MAP_TABLE")
    dead_letter_queue_url: str = _setting("SOURCE_DEAD_LETTER_QUEUE_URL")
    commercetools_locale: str = _setting("COMMERCETOOLS_LOCALE", "en")
    commercetools_currency: str = _setting("COMMERCETOOLS_CURRENCY", "EUR")
    commercetools_country: str = _setting("COMMERCETOOLS_COUNTRY", "")
    shopify_item_per: str = _setting("SHOPIFY_ITEM_PER", "product")
