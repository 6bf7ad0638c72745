"""`make invoke`: run one function of template.yaml locally, the way Lambda would, without Docker or an AWS
account.

    python -m tweakwise_local.invoke CatalogMonitorFunction events/catalog_monitor.json

AWS (Secrets Manager, ...) is moto, in process. Tweakwise is the local sandbox, or the real API by the
rule of tweakwise_local.credentials (the same as `make run`); nothing of your credentials is printed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from tweakwise.settings import ClientSettings, WebhookSettings
from tweakwise_local.credentials import LocalTweakwise, local_tweakwise
from tweakwise_local.functions import LocalFunction
from tweakwise_local.provision import LOCAL_AWS_ENVIRONMENT, provision
from tweakwise_local.template import Resolver, load_template, variable_target


def _arguments(argv: list[str] | None, template: dict) -> tuple[str, Path, dict] | str:
    """(function, event file, event), or what is wrong with the arguments."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("function", help="logical id in template.yaml, e.g. CatalogMonitorFunction")
    parser.add_argument("event", type=Path, help="event file, e.g. events/catalog_monitor.json")
    args = parser.parse_args(argv)
    functions = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"]
    if args.function not in functions:
        return f"No function {args.function!r} in template.yaml; choose one of: {', '.join(functions)}"
    if not args.event.is_file():
        return f"No event file {args.event}; the samples are in events/"
    return args.function, args.event, json.loads(args.event.read_text(encoding="utf-8"))


def _report(result: Any, tweakwise: LocalTweakwise) -> None:
    print("--- result")
    print(json.dumps(result, indent=2, default=str))
    if tweakwise.sandbox and tweakwise.sandbox.requests:
        print(f"--- the Tweakwise sandbox received {len(tweakwise.sandbox.requests)} requests:")
        for method, request_path, _body in tweakwise.sandbox.requests:
            print(f"    {method} {request_path}")


def main(argv: list[str] | None = None) -> int:
    template = load_template()
    found = _arguments(argv, template)
    if isinstance(found, str):
        print(found)
        return 2
    name, event_file, event = found
    resolver = Resolver(template)
    os.environ.update(LOCAL_AWS_ENVIRONMENT)

    from moto import mock_aws

    with mock_aws():
        tweakwise = local_tweakwise(demo=True)
        if tweakwise.sandbox:
            print(
                f"--- Tweakwise: local sandbox at {tweakwise.url}.\n"
                "    To call the real API instead: TWEAKWISE_INSTANCE_KEY=... TWEAKWISE_ACCESS_TOKEN=... "
                "make invoke FUNCTION=... EVENT=..."
            )
        else:
            print(f"--- Tweakwise: {tweakwise.url} with your credentials")
        secret = variable_target(template, ClientSettings.variable("secret_id"), resolver)
        provision(template, resolver, {secret: tweakwise.credentials})
        function = LocalFunction(
            template, name, resolver, {ClientSettings.variable("api_url"): tweakwise.url}
        )
        os.environ.update(function.env)
        signed = WebhookSettings.variable("signing_secret_id") in function.env
        if signed and isinstance(event.get("body"), str):
            event = resign(event, template, resolver)
            print("--- signed the sample webhook body with the local signing secret")
        print(f"--- invoking {name} ({function.handler_path}, {function.timeout:g} s) with {event_file}")
        try:
            result, _ = function.invoke(event)
        except Exception as exc:  # show what Lambda would report, then fail
            print(f"--- {name} failed: {type(exc).__name__}: {exc}")
            traceback.print_exc(limit=3)
            return 1
        finally:
            tweakwise.stop()
        _report(result, tweakwise)
    return 0


def resign(event: dict, template: dict, resolver: Resolver) -> dict:
    """Sample webhook events carry a stale signature: sign the body now with the local signing secret."""
    from tweakwise.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

    raw = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else event["body"].encode()
    logical = variable_target(template, WebhookSettings.variable("signing_secret_id"), resolver)
    key = resolver.resources[logical]["Value"]["signing_secret"]
    stamp = int(time.time())
    headers = {
        k: v
        for k, v in (event.get("headers") or {}).items()
        if k.lower() not in (TIMESTAMP_HEADER, SIGNATURE_HEADER)
    }
    headers.update({TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: sign(key, stamp, raw)})
    return {**event, "headers": headers}


if __name__ == "__main__":
    sys.exit(main())
