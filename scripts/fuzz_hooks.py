"""Schemathesis hooks (SCHEMATHESIS_HOOKS=scripts.fuzz_hooks): every generated request is signed as a
sender would sign it, over the exact bytes sent, with the key in WEBHOOK_SIGNING_SECRET.

The signature is computed here from the README's scheme, as a sender's own code would, not with
`tweakwise.signatures.sign`: importing the bundle's modules into Schemathesis' process would let Hypothesis
draw from their literals (it collects the constants of local modules), so any change to the bundle would
change what is generated; with seed and source fixed here, a run generates the same requests every time."""

from __future__ import annotations

import hashlib
import hmac
import os
import time

import requests
import schemathesis

SIGNATURE_HEADER, TIMESTAMP_HEADER = "X-Signature", "X-Signature-Timestamp"


def sign(secret: str, stamp: int, body: bytes) -> str:
    """README, Catalog webhook: sha256= HMAC-SHA256 of "<timestamp>." + the body, hex."""
    return "sha256=" + hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()


class Signature(requests.auth.AuthBase):
    """Signs the prepared request: its body is final here, after Schemathesis serialized it."""

    def __init__(self, secret: str):
        self.secret = secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        raw = body.encode() if isinstance(body, str) else body
        stamp = int(time.time())
        request.headers[TIMESTAMP_HEADER] = str(stamp)
        request.headers[SIGNATURE_HEADER] = sign(self.secret, stamp, raw)
        return request


@schemathesis.hook
def before_call(context, case, kwargs):
    kwargs["auth"] = Signature(os.environ["WEBHOOK_SIGNING_SECRET"])
