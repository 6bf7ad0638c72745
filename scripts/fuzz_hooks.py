"""Schemathesis hooks (SCHEMATHESIS_HOOKS=scripts.fuzz_hooks): every generated request is signed as a
sender would sign it, over the exact bytes sent, with the key in WEBHOOK_SIGNING_SECRET."""

from __future__ import annotations

import os
import time

import requests
import schemathesis

from tweakwise.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign


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
