"""What must never reach a log line, trace, metric, error or message: the access token, the instance key,
task GUIDs and webhook signing keys. This module learns their values as the secrets are read, scrubs them
from any text that came from outside (Tweakwise's error bodies), and keeps the loggers that print request
URLs or secret answers quiet.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote

MASK = "***"
# Task GUIDs are secrets (a trigger URL needs no other authentication); any GUID in foreign text is masked.
_GUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
# Shorter values are masked too, but never one so short that masking it would garble every message.
_MIN_LENGTH = 4

# What Powertools Tracer may patch. Not requests: X-Ray's requests patch records each URL (the instance key
# and task GUIDs of /task/... paths) and urllib3's exception text; the client records its own subsegments.
TRACER_PATCH_MODULES = ("botocore",)

# A tuple replaced whole, so readers in other threads never see it change under them.
_known: tuple[str, ...] = ()

# At DEBUG, botocore logs GetSecretValue answers (the token, the signing keys), and its signer logs each
# canonical request, the function role's x-amz-security-token among its headers (Lambda's runtime puts
# the root logger at DEBUG when AWS_LAMBDA_LOG_LEVEL says so). urllib3 logs request URLs (instance key
# and task GUIDs in /task/... paths) at DEBUG, and at WARNING when it retries or a header is malformed.
# Those loggers are held above what any log level setting lets through, whatever the root logger's
# level; the client logs every call itself, with the secret parts of the path shown as {instance_key}
# and {task_guid}.
QUIET_LOGGERS = {
    "botocore.parsers": logging.INFO,
    "botocore.endpoint": logging.INFO,
    "botocore.httpchecksum": logging.INFO,
    "botocore.auth": logging.INFO,
    "botocore.credentials": logging.INFO,
    "botocore.utils": logging.INFO,  # the credential and metadata providers' answers
    "urllib3": logging.CRITICAL + 1,
}


def quiet_loggers() -> None:
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    # urllib3's own children would otherwise keep a level set on them by someone else.
    for name in ("urllib3.connectionpool", "urllib3.connection", "urllib3.response", "urllib3.util.retry"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def remember(*values: object) -> None:
    """Mark secret values read in this container, so `scrub` masks them wherever they show up."""
    global _known  # noqa: PLW0603 - one registry per container, replaced atomically
    strings = [v for v in values if isinstance(v, str)]
    # As sent in a path, too: an echoed URL carries the encoded form.
    new = {form for v in strings for form in (v, quote(v, safe="")) if len(form) >= _MIN_LENGTH}
    if not new.issubset(_known):
        # Longest first: a value that contains another is masked whole.
        _known = tuple(sorted(new.union(_known), key=len, reverse=True))


def forget() -> None:
    """Forget every remembered value (tests start each case from a clean container)."""
    global _known  # noqa: PLW0603
    _known = ()


def scrub(text: str) -> str:
    """The text with every known secret value and every GUID replaced by ***."""
    for value in _known:
        if value in text:
            text = text.replace(value, MASK)
    return _GUID.sub(MASK, text)


def clip(text: str, limit: int) -> str:
    """Foreign text made safe to keep: scrubbed, then cut to `limit` characters. Never the other way
    round: a secret cut in two no longer matches its value, and its first part would be kept."""
    text = scrub(text)
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


quiet_loggers()
