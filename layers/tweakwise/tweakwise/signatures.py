"""Webhook signatures: `X-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">` with the signing
secret, and `X-Signature-Timestamp` within TOLERANCE_SECONDS of now. `sign` and `verify_signature` are
pure (what a sender computes, what the webhook checks); `Verifier` adds the secret (the current and the
previous key) and re-reads it, rate limited, when a signature matches neither.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from . import secrecy
from .credentials import JsonSecret
from .errors import (
    CredentialsError,
    MalformedSignatureError,
    MissingSignatureError,
    SignatureMismatchError,
    TimestampError,
)
from .settings import WebhookSettings

logger = logging.getLogger("tweakwise")


SIGNATURE_HEADER = "x-signature"


TIMESTAMP_HEADER = "x-signature-timestamp"


TOLERANCE_SECONDS = 300


# A signature that matches no cached key may mean the secret was rotated: re-read it, at most this often.
# Short, so a stream of bad signatures (each may trigger the re-read) delays a new key by 5 s at most;
# at worst one GetSecretValue call per 5 s per container.
REFRESH_INTERVAL = 5.0


class SigningSecrets(JsonSecret[tuple[bytes, ...]]):
    """The webhook signing secret: {"signing_secret": "...", "previous_signing_secret": "..."}."""

    NAMED_BY = WebhookSettings.variable("signing_secret_id")
    DEFAULT_MAX_AGE: int = WebhookSettings.default("signing_secret_max_age")
    SHAPE = "a JSON object with 'signing_secret' (and optionally 'previous_signing_secret')"

    def parse(self, value: Any) -> tuple[bytes, ...]:
        if not isinstance(value, dict):
            raise CredentialsError(
                f"Secret {self.secret_id!r} must be {self.SHAPE}", secret_id=self.secret_id
            )
        keys = []
        for name in ("signing_secret", "previous_signing_secret"):
            key = value.get(name)
            if key is None or (key == "" and name == "previous_signing_secret"):
                if name == "signing_secret":
                    raise CredentialsError(
                        f"Secret {self.secret_id!r} has no 'signing_secret'", secret_id=self.secret_id
                    )
                continue
            if not isinstance(key, str) or len(key) < 16:
                raise CredentialsError(
                    f"Secret {self.secret_id!r} key {name!r} must be a string of at least 16 characters",
                    secret_id=self.secret_id,
                )
            keys.append(key.encode())
        secrecy.remember(*(k.decode() for k in keys))
        return tuple(keys)


def sign(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """The X-Signature value for a body: what a sender computes."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(keys: Sequence[bytes], headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Return when the request is authentic; otherwise raise the SignatureError subclass saying why."""
    timestamp = (headers.get(TIMESTAMP_HEADER) or "").strip()
    signature = (headers.get(SIGNATURE_HEADER) or "").strip()
    if not timestamp or not signature:
        raise MissingSignatureError(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise TimestampError(f"{TIMESTAMP_HEADER} must be whole unix seconds")
    if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        raise TimestampError(f"{TIMESTAMP_HEADER} is more than {TOLERANCE_SECONDS} s from now")
    if not signature.startswith("sha256=") or not signature.isascii():
        raise MalformedSignatureError(f"{SIGNATURE_HEADER} must look like sha256=<hex>")
    # The digest's case carries no secret: .NET's Convert.ToHexString sends upper case.
    given = ("sha256=" + signature[7:].lower()).encode()
    # Compare against every valid key, always: the time taken does not tell which key matched.
    matches = [hmac.compare_digest(sign(key, timestamp, body).encode(), given) for key in keys]
    if not any(matches):
        raise SignatureMismatchError("signature does not match")


class Verifier:
    """Checks signatures against the current and previous signing secret, re-reading the secret (rate
    limited) when a signature matches neither, so a rotated secret is picked up without a redeploy."""

    def __init__(self, secrets: SigningSecrets):
        self.secrets = secrets
        self._refreshed_at = 0.0
        self._lock = threading.Lock()

    def verify(self, headers: Mapping[str, str], body: bytes, now: float | None = None) -> None:
        """Raise a SignatureError unless the request is authentic (CredentialsError: no usable secret)."""
        now = time.time() if now is None else now
        try:
            verify_signature(self.secrets.get(), headers, body, now)
        except SignatureMismatchError:
            with self._lock:
                due = time.monotonic() - self._refreshed_at > REFRESH_INTERVAL
                if due:
                    self._refreshed_at = time.monotonic()
            if not due:
                raise
            verify_signature(self.secrets.get(force=True), headers, body, now)
