"""Run one function of template.yaml locally, the way Lambda would, without Docker or an AWS account.

    python scripts/invoke.py CatalogMonitorFunction events/catalog_monitor.json

AWS (Secrets Manager, ...) is moto, in process. Tweakwise is the local sandbox unless you give real
credentials: TWEAKWISE_INSTANCE_KEY and TWEAKWISE_ACCESS_TOKEN in the environment (and optionally
TWEAKWISE_API_URL); nothing of them is written to disk or printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import traceback
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.cfn import Resolver, function_environment, function_setting, load_template  # noqa: E402


class LambdaContext:
    def __init__(self, name: str, memory: int, timeout: float):
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{name}"
        self.memory_limit_in_mb = memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


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
    env = function_environment(template, args.function, resolver)
    timeout = float(function_setting(template, args.function, "Timeout", 3))
    memory = int(function_setting(template, args.function, "MemorySize", 128))
    props = template["Resources"][args.function]["Properties"]

    os.environ.update(
        {
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_EC2_METADATA_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    os.environ.update(env)

    from moto import mock_aws

    with mock_aws():
        sandbox = _tweakwise(env["TWEAKWISE_SECRET_ID"])
        sys.path.insert(0, str(ROOT / "layers" / "tweakwise"))
        module_file, handler_name = props["Handler"].rsplit(".", 1)
        path = ROOT / props["CodeUri"] / f"{module_file}.py"
        spec = importlib.util.spec_from_file_location(module_file, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        context = LambdaContext(args.function, memory, timeout)
        print(f"--- invoking {args.function} ({props['Handler']}, timeout {timeout:g} s) with {args.event}")
        try:
            result = getattr(module, handler_name)(event, context)
        except Exception as exc:  # show what Lambda would report, then fail
            print(f"--- {args.function} failed: {type(exc).__name__}: {exc}")
            traceback.print_exc(limit=3)
            return 1
        finally:
            if sandbox:
                sandbox.stop()
        print("--- result")
        print(json.dumps(result, indent=2, default=str))
    return 0


def _tweakwise(secret_id: str):
    """Put credentials in moto's Secrets Manager; start the sandbox unless real credentials are given."""
    import boto3

    from scripts.sandbox import Sandbox

    key, token = os.environ.get("TWEAKWISE_INSTANCE_KEY"), os.environ.get("TWEAKWISE_ACCESS_TOKEN")
    sandbox = None
    if key and token:
        os.environ.setdefault("TWEAKWISE_API_URL", "https://navigator-api.tweakwise.com")
        print(f"--- Tweakwise: {os.environ['TWEAKWISE_API_URL']} with your credentials")
    else:
        sandbox = Sandbox()
        key, token = sandbox.instance_key, sandbox.access_token
        os.environ["TWEAKWISE_API_URL"] = sandbox.start()
        print(
            f"--- Tweakwise: local sandbox at {os.environ['TWEAKWISE_API_URL']}.\n"
            "    To call the real API instead: TWEAKWISE_INSTANCE_KEY=... TWEAKWISE_ACCESS_TOKEN=... "
            "make invoke FUNCTION=... EVENT=..."
        )
    boto3.client("secretsmanager").create_secret(
        Name=secret_id, SecretString=json.dumps({"instance_key": key, "access_token": token})
    )
    return sandbox


if __name__ == "__main__":
    sys.exit(main())
