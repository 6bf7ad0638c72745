"""Run one function of template.yaml locally, the way Lambda would, without Docker or an AWS account.

    python scripts/invoke.py CatalogMonitorFunction events/catalog_monitor.json

AWS (Secrets Manager, ...) is moto, in process. Tweakwise is the local sandbox unless you give real
credentials: TWEAKWISE_INSTANCE_KEY and TWEAKWISE_ACCESS_TOKEN in the environment (and optionally
TWEAKWISE_API_URL); nothing of them is written to disk or printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "tweakwise")]  # the repo, and the layer as /opt/python

from scripts.cfn import Resolver, load_template  # noqa: E402
from scripts.lambda_local import LocalFunction  # noqa: E402
from scripts.local_aws import provision  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("function", help="logical id in template.yaml, e.g. CatalogMonitorFunction")
    parser.add_argument("event", type=Path, help="event file, e.g. events/catalog_monitor.json")
    args = parser.parse_args(argv)

    template = load_template()
    functions = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"]
    if args.function not in functions:
        print(f"No function {args.function!r} in template.yaml; choose one of: {', '.join(functions)}")
        return 2
    if not args.event.is_file():
        print(f"No event file {args.event}; the samples are in events/")
        return 2
    event = json.loads(args.event.read_text(encoding="utf-8"))

    resolver = Resolver(template)

    os.environ.update(
        {
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_EC2_METADATA_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )

    from moto import mock_aws

    with mock_aws():
        sandbox, credentials = _tweakwise()
        provision(template, resolver, {"TweakwiseSecret": credentials})
        extra = (
            {"TWEAKWISE_API_URL": os.environ["TWEAKWISE_API_URL"]}
            if os.environ.get("TWEAKWISE_API_URL")
            else {}
        )
        function = LocalFunction(template, args.function, resolver, extra)
        os.environ.update(function.env)
        if "WEBHOOK_SECRET_ID" in function.env and isinstance(event.get("body"), str):
            event = _resign(event, resolver)
        where = f"{function.handler_path}, {function.timeout:g} s"
        print(f"--- invoking {args.function} ({where}) with {args.event}")
        try:
            result, _ = function.invoke(event)
        except Exception as exc:  # show what Lambda would report, then fail
            print(f"--- {args.function} failed: {type(exc).__name__}: {exc}")
            traceback.print_exc(limit=3)
            return 1
        finally:
            if sandbox:
                sandbox.stop()
        print("--- result")
        print(json.dumps(result, indent=2, default=str))
        if sandbox and sandbox.requests:
            print(f"--- the Tweakwise sandbox received {len(sandbox.requests)} requests:")
            for method, request_path, _body in sandbox.requests:
                print(f"    {method} {request_path}")
    return 0


def _tweakwise():
    """The sandbox (started) and its credentials, or the real API when credentials are given."""
    from scripts.sandbox import Sandbox

    key, token = os.environ.get("TWEAKWISE_INSTANCE_KEY"), os.environ.get("TWEAKWISE_ACCESS_TOKEN")
    if key and token:
        os.environ.setdefault("TWEAKWISE_API_URL", "https://navigator-api.tweakwise.com")
        print(f"--- Tweakwise: {os.environ['TWEAKWISE_API_URL']} with your credentials")
        return None, {"instance_key": key, "access_token": token}
    sandbox = Sandbox()
    for number in range(1, 4):  # something to count and update
        sandbox.items[f"DEMO-{number}"] = {"ArticleNumber": f"DEMO-{number}", "Name": f"Demo item {number}"}
    sandbox.categories[100] = {"CategoryId": 100, "Name": "Shoes"}
    os.environ["TWEAKWISE_API_URL"] = sandbox.start()
    print(
        f"--- Tweakwise: local sandbox at {os.environ['TWEAKWISE_API_URL']}.\n"
        "    To call the real API instead: TWEAKWISE_INSTANCE_KEY=... TWEAKWISE_ACCESS_TOKEN=... "
        "make invoke FUNCTION=... EVENT=..."
    )
    return sandbox, sandbox.secret()


def _resign(event: dict, resolver: Resolver) -> dict:
    """Sample webhook events carry a stale signature: sign the body now with the local signing secret."""
    import base64

    from tweakwise.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

    raw = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else event["body"].encode()
    key = resolver.resources["WebhookSigningSecret"]["Value"]["signing_secret"]
    stamp = int(time.time())
    headers = {
        k: v
        for k, v in (event.get("headers") or {}).items()
        if k.lower() not in (TIMESTAMP_HEADER, SIGNATURE_HEADER)
    }
    headers.update({TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: sign(key, stamp, raw)})
    print("--- signed the sample webhook body with the local signing secret")
    return {**event, "headers": headers}


if __name__ == "__main__":
    sys.exit(main())
