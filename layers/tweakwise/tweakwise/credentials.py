"""Tweakwise credentials from AWS Secrets Manager, through Powertools Parameters.

The secret is a JSON object: {"instance_key": "...", "access_token": "..."}; other keys may stand beside
these two. Values are cached per container for `max_age` seconds; `get(force=True)` re-reads the secret,
which is how a rotated access token is picked up without a redeploy.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from . import secrecy
from .errors import CredentialsError
from .settings import ClientSettings

T = TypeVar("T")

# A header value: visible ASCII, inner spaces allowed, no CR/LF, no leading or trailing white space.
_HEADER_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")

_NOT_FOUND_CODES = {"ResourceNotFoundException"}
_DENIED_CODES = {"AccessDeniedException", "AccessDenied", "UnrecognizedClientException"}
_KMS_CODES = {"DecryptionFailure", "KMSAccessDeniedException"}


@dataclass(frozen=True)
class Credentials:
    """The Tweakwise instance key and access token, and the secret's other keys (never printed)."""

    instance_key: str
    access_token: str = field(repr=False)
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def headers(self) -> dict[str, str]:
        return {"TWN-InstanceKey": self.instance_key, "TWN-Authentication": self.access_token}


def parse_secret(secret_id: str, value: Any) -> Credentials:
    """Validate the decoded secret and build Credentials; errors name the key, never its value."""
    if not isinstance(value, dict):
        raise CredentialsError(
            f"Secret {secret_id!r} must be a JSON object with 'instance_key' and 'access_token', "
            f"found a JSON {type(value).__name__}",
            secret_id=secret_id,
        )
    for key in ("instance_key", "access_token"):
        item = value.get(key)
        if item is None or item == "":
            raise CredentialsError(
                f"Secret {secret_id!r} has no {key!r} or it is empty; put both 'instance_key' and "
                "'access_token' in it (README: Deploy)",
                secret_id=secret_id,
            )
        if not isinstance(item, str) or not _HEADER_VALUE.fullmatch(item):
            raise CredentialsError(
                f"Secret {secret_id!r} key {key!r} must be a string of visible ASCII characters without "
                "CR/LF or surrounding white space, as it is sent in an HTTP header",
                secret_id=secret_id,
            )
    extra = {k: v for k, v in value.items() if k not in ("instance_key", "access_token")}
    tasks = extra.get("tasks")
    secrecy.remember(
        value["instance_key"], value["access_token"], *(tasks.values() if isinstance(tasks, dict) else ())
    )
    return Credentials(value["instance_key"], value["access_token"], extra)


class JsonSecret(Generic[T]):
    """One Secrets Manager secret holding a JSON object, read through Powertools Parameters and cached
    per container for `max_age` seconds. Creates its boto3 client on first use. Subclasses say how its
    JSON becomes a value, and which environment variable names the secret (for error hints)."""

    NAMED_BY = ClientSettings.variable("secret_id")
    DEFAULT_MAX_AGE: int = ClientSettings.default("secret_max_age")
    SHAPE = "a JSON object with 'instance_key' and 'access_token'"

    def __init__(self, secret_id: str, max_age: int | None = None, provider: Any = None):
        self.secret_id = secret_id
        self.max_age = self.DEFAULT_MAX_AGE if max_age is None else max_age
        self._provider = provider
        self._lock = threading.Lock()
        self._parsed: tuple[Any, T] | None = None

    def parse(self, value: Any) -> T:
        raise NotImplementedError

    @property
    def provider(self) -> Any:
        if self._provider is None:
            import boto3
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            # A client of the default session the handler's other clients use: SecretsProvider() alone
            # builds a boto3 Session of its own (50-70 ms of a cold start).
            self._provider = SecretsProvider(boto3_client=boto3.client("secretsmanager"))
        return self._provider

    def get(self, force: bool = False) -> T:
        from aws_lambda_powertools.utilities.parameters.exceptions import (
            GetParameterError,
            TransformParameterError,
        )

        # One fetch at a time: concurrent workers after a 401 share a single forced re-read.
        with self._lock:
            try:
                value = self.provider.get(
                    self.secret_id, max_age=self.max_age, transform="json", force_fetch=force
                )
            except TransformParameterError:
                raise CredentialsError(
                    f"Secret {self.secret_id!r} is not valid JSON; it must be {self.SHAPE}",
                    secret_id=self.secret_id,
                ) from None
            except GetParameterError as exc:
                raise self._read_error(exc) from None
            # Cached reads return the same dict: validate it once, not on every request.
            if self._parsed is None or self._parsed[0] is not value:
                self._parsed = (value, self.parse(value))
            return self._parsed[1]

    def _read_error(self, exc: Exception) -> CredentialsError:
        # Powertools wraps the botocore ClientError; its code says which of our hints applies.
        cause = exc.__cause__ or exc.__context__
        code = getattr(cause, "response", {}).get("Error", {}).get("Code")
        sid = self.secret_id
        if code in _NOT_FOUND_CODES:
            text = f"Secret {sid!r} was not found; check {self.NAMED_BY} and the region, or create it"
        elif code in _DENIED_CODES:
            text = (
                f"Access denied reading secret {sid!r}; the function's role needs "
                "secretsmanager:GetSecretValue on it"
            )
        elif code in _KMS_CODES:
            text = f"Secret {sid!r} could not be decrypted; the function's role needs kms:Decrypt on its key"
        else:
            text = f"Could not read secret {sid!r} ({code or type(cause or exc).__name__})"
        return CredentialsError(text, secret_id=sid)


class SecretCredentials(JsonSecret[Credentials]):
    """The Tweakwise credentials secret (settings: ClientSettings.secret_id)."""

    def parse(self, value: Any) -> Credentials:
        return parse_secret(self.secret_id, value)
