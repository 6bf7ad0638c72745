"""`make run`: the whole bundle on this machine, in one process, without Docker or an AWS account.

- AWS: a moto server in this process, holding the secrets, queues and tables template.yaml declares.
- Tweakwise: the in-memory sandbox (scripts/sandbox.py), or the real API with TWEAKWISE_MODE=live.
- The HTTP API routes of template.yaml on http://127.0.0.1:3000, each calling its function.
- Every SQS event source of template.yaml polled and fed to its function, partial failures retried.
- Every ScheduleV2 of template.yaml fired at its rate (and once at start), and on demand.

Everything is read from template.yaml: a new function, route, queue or schedule needs no change here.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "tweakwise")]

from scripts.cfn import Resolver, load_template  # noqa: E402
from scripts.lambda_events import emf_metrics, sqs_event  # noqa: E402
from scripts.lambda_local import LocalFunction  # noqa: E402
from scripts.local_aws import provision  # noqa: E402
from scripts.local_sfn import ExecutionFailed, LocalStateMachine, substitute  # noqa: E402
from scripts.sandbox import Faults, Sandbox  # noqa: E402

LIVE_FILE = ROOT / ".tweakwise.local.json"  # {"instance_key", "access_token", "api_url"?}; git-ignored
RATE = re.compile(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)")
SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
RETRY_VISIBILITY = 2  # seconds before a failed record comes back, locally (the template says 360)


def say(kind: str, message: str) -> None:
    # The real stdout: an invocation running in another thread may be capturing sys.stdout (its metrics).
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    print(f"{stamp} {kind:<9} {message}", file=sys.__stdout__, flush=True)


def live_credentials() -> dict[str, str]:
    key, token = os.environ.get("TWEAKWISE_INSTANCE_KEY"), os.environ.get("TWEAKWISE_ACCESS_TOKEN")
    if key and token:
        return {"instance_key": key, "access_token": token}
    if LIVE_FILE.is_file():
        data = json.loads(LIVE_FILE.read_text(encoding="utf-8"))
        if data.get("api_url"):
            os.environ.setdefault("TWEAKWISE_API_URL", data["api_url"])
        return {"instance_key": data["instance_key"], "access_token": data["access_token"]}
    raise SystemExit(
        "TWEAKWISE_MODE=live needs credentials: export TWEAKWISE_INSTANCE_KEY and TWEAKWISE_ACCESS_TOKEN, or "
        f'write them to {LIVE_FILE.name} as {{"instance_key": "...", "access_token": "..."}} '
        "(git ignores that file)."
    )


# Locally the task schedules are on, so their path (and the state machine's) can be seen.
LOCAL_PARAMETERS = {"ImportTaskScheduleState": "ENABLED", "PublishTaskScheduleState": "ENABLED"}


class Runner:
    def __init__(
        self,
        api_port: int = 3000,
        mode: str = "sandbox",
        faults: Faults | None = None,
        fail_tasks: bool = False,
    ):
        self.template = load_template()
        self.resolver = Resolver(self.template, LOCAL_PARAMETERS)
        self.fail_tasks = fail_tasks
        self.api_port = api_port
        self.mode = mode
        self.faults = faults or Faults()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.functions: dict[str, LocalFunction] = {}
        self.routes: list[tuple[str, re.Pattern[str], str, LocalFunction]] = []
        self.schedules: dict[str, tuple[Any, dict, float | None]] = {}  # target: a function or state machine
        self.state_machines: dict[str, dict] = {}
        self.pollers: list[tuple[LocalFunction, str, str, int]] = []
        self.sandbox: Sandbox | None = None

    # -- start and stop -----------------------------------------------------------------------------

    def start(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines

        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.aws_url = f"http://{host}:{port}"
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.aws_url,
                "AWS_DEFAULT_REGION": "eu-west-1",
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_EC2_METADATA_DISABLED": "true",
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
        )
        extra_env = {"POWERTOOLS_LOG_LEVEL": os.environ.get("RUN_LOG_LEVEL", "WARNING")}
        if self.mode == "live":
            credentials = live_credentials()
            self.tweakwise_url = os.environ.get("TWEAKWISE_API_URL") or "https://navigator-api.tweakwise.com"
        else:
            self.sandbox = Sandbox(faults=self.faults)
            self.sandbox.fail_tasks = self.fail_tasks
            self.tweakwise_url = self.sandbox.start()
            credentials = self.sandbox.secret()
        extra_env["TWEAKWISE_API_URL"] = self.tweakwise_url
        provision(self.template, self.resolver, {"TweakwiseSecret": credentials})
        for logical, resource in self.template["Resources"].items():
            arn = f"arn:aws:{{}}:eu-west-1:123456789012:{{}}:{logical}"
            if resource["Type"] == "AWS::Serverless::Function":
                self.resolver.resources[logical] = {"Ref": logical, "Arn": arn.format("lambda", "function")}
            elif resource["Type"] == "AWS::StepFunctions::StateMachine":
                self.resolver.resources[logical] = {
                    "Ref": arn.format("states", "stateMachine"),
                    "Name": logical,
                }
        for logical, resource in self.template["Resources"].items():
            if resource["Type"] == "AWS::Serverless::Function":
                self.functions[logical] = LocalFunction(self.template, logical, self.resolver, extra_env)
            elif resource["Type"] == "AWS::StepFunctions::StateMachine":
                props = resource["Properties"]
                values = self.resolver.resolve(props.get("DefinitionSubstitutions", {}))
                self.state_machines[logical] = substitute(props["Definition"], values)
        self._wire_events()
        self.api = ThreadingHTTPServer(("127.0.0.1", self.api_port), self._api_handler())
        self.api.daemon_threads = True
        self.api_port = self.api.server_port
        self._spawn(self.api.serve_forever)
        for function, queue_url, arn, batch in self.pollers:
            self._spawn(self._poll, function, queue_url, arn, batch)
        for name in self.schedules:
            self._spawn(self._schedule, name)

    def stop(self) -> None:
        self.stopping.set()
        self.api.shutdown()
        self.api.server_close()
        for thread in self.threads:
            thread.join(timeout=5)
        if self.sandbox:
            self.sandbox.stop()
        self.moto.stop()

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _wire_events(self) -> None:
        arns = {attrs.get("Arn"): attrs for attrs in self.resolver.resources.values()}
        targets = {}
        for logical, attrs in self.resolver.resources.items():
            if logical in self.functions:
                targets[attrs["Arn"]] = self.functions[logical]
            elif logical in self.state_machines:
                targets[attrs["Ref"]] = logical
        for logical, resource in self.template["Resources"].items():
            active = "Condition" not in resource or self.resolver.condition(resource["Condition"])
            if resource["Type"] == "AWS::Scheduler::Schedule" and active:
                self._add_schedule(
                    logical,
                    resource["Properties"],
                    targets[self.resolver.resolve(resource["Properties"]["Target"]["Arn"])],
                    resource["Properties"]["Target"].get("Input", "{}"),
                )
        for logical, function in self.functions.items():
            for event_name, event in function.events.items():
                props = event.get("Properties", {})
                if event["Type"] == "HttpApi":
                    method = props.get("Method", "ANY").upper()
                    pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", props["Path"]) + "$")
                    self.routes.append((method, pattern, props["Path"], function))
                elif event["Type"] == "SQS":
                    arn = self.resolver.resolve(props["Queue"])
                    self.pollers.append((function, arns[arn]["Ref"], arn, int(props.get("BatchSize", 10))))
                elif event["Type"] == "ScheduleV2":
                    self._add_schedule(f"{logical}/{event_name}", props, function, props.get("Input", "{}"))

    def _add_schedule(self, name: str, props: dict, target: Any, payload: Any) -> None:
        if self.resolver.resolve(props.get("State", "ENABLED")) != "ENABLED":
            return
        expression = str(self.resolver.resolve(props["ScheduleExpression"]))
        match = RATE.fullmatch(expression)
        period = int(match[1]) * SECONDS[match[2].rstrip("s")] if match else None
        self.schedules[name] = (target, json.loads(self.resolver.resolve(payload)), period)

    # -- the three ways functions run ----------------------------------------------------------------

    def run(self, function: LocalFunction, event: dict, kind: str) -> Any:
        try:
            result, printed = function.invoke(event, capture=True)
        except Exception as exc:  # a failed invocation: Lambda would retry or dead-letter it
            say(kind, f"{function.logical_id} failed: {type(exc).__name__}: {exc}")
            return None
        metrics = emf_metrics(printed)
        if metrics:
            say("metrics", " ".join(f"{k}={v:g}" for k, v in metrics.items()))
        return result

    def execute(self, logical: str, document: dict) -> Any:
        """A state machine execution, its steps in order (waits shortened to 1 s)."""
        import boto3

        def invoke(function_arn: str, payload: dict) -> Any:
            name = function_arn.rsplit(":", 1)[1]
            return self.functions[name].invoke(payload, capture=True)[0]

        def sdk(resource: str, params: dict) -> Any:
            if resource.endswith(":cloudwatch:putMetricData"):
                boto3.client("cloudwatch").put_metric_data(**params)
                say("metrics", " ".join(f"{m['MetricName']}={m['Value']:g}" for m in params["MetricData"]))
            elif resource.endswith(":sns:publish"):
                boto3.client("sns").publish(**params)
                say("notify", f"SNS: {params.get('Subject')}: {params.get('Message')}")
            return {}

        def step(state: str, doc: Any) -> None:
            status = doc.get("status", {}).get("state") if isinstance(doc, dict) else None
            note = f" (task {status})" if status and state == "Finished?" else ""
            if state == "Failed" and isinstance(doc, dict) and doc.get("error"):
                note = f" ({doc['error']['Error']}: {doc['error']['Cause']})"
            say("sfn", f"{logical} -> {state}{note}")

        machine = LocalStateMachine(self.state_machines[logical], invoke, sdk, max_wait=1.0, on_state=step)
        try:
            return machine.run(document)
        except ExecutionFailed as exc:
            say("sfn", f"{logical} execution failed: {exc}")
            return {"failed": exc.error}
        except Exception as exc:
            say("sfn", f"{logical} execution failed: {type(exc).__name__}: {exc}")
            return None

    def fire(self, name: str) -> Any:
        target, payload, _period = self.schedules[name]
        say("schedule", f"{name} fired")
        if isinstance(target, str):
            result = self.execute(target, payload)
        else:
            result = self.run(target, payload, "schedule")
        if result is not None:
            say("schedule", f"{name} -> {json.dumps(result, default=str)}")
        return result

    def _schedule(self, name: str) -> None:
        _function, _payload, period = self.schedules[name]
        delay = 2.0  # once at start, so the result shows at once
        while not self.stopping.wait(delay):
            self.fire(name)
            if period is None:  # cron(): on demand only, locally
                return
            delay = period

    def _poll(self, function: LocalFunction, queue_url: str, arn: str, batch: int) -> None:
        import boto3

        sqs = boto3.client("sqs")
        while not self.stopping.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=batch,
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception as exc:  # the moto server stopping under us
                if not self.stopping.is_set():
                    say("worker", f"receive failed: {exc}")
                return
            if not messages:
                continue
            result = self.run(function, sqs_event(messages, arn), "worker") or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            if result == {}:  # the whole invocation failed: every record comes back
                failed = {m["MessageId"] for m in messages}
            for message in messages:
                if message["MessageId"] in failed:
                    sqs.change_message_visibility(
                        QueueUrl=queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=RETRY_VISIBILITY,
                    )
                else:
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            summary = f"{function.logical_id}: {len(messages) - len(failed)} of {len(messages)} records done"
            if failed:
                summary += f", {len(failed)} to retry in {RETRY_VISIBILITY} s"
            if self.sandbox:
                box = self.sandbox
                summary += f"; sandbox holds {len(box.items)} items, {len(box.categories)} categories"
            say("worker", summary)

    # -- the HTTP API ----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        import boto3

        sqs = boto3.client("sqs")
        queues = {}
        for logical, attrs in self.resolver.resources.items():
            if "QueueName" in attrs:
                counts = sqs.get_queue_attributes(
                    QueueUrl=attrs["Ref"],
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                queues[logical] = {k: int(v) for k, v in counts.items()}
        sandbox = None
        if self.sandbox:
            sandbox = {
                "items": len(self.sandbox.items),
                "item_ids": sorted(self.sandbox.items),
                "categories": len(self.sandbox.categories),
                "task_triggers": len(self.sandbox.task_triggers),
                "requests": len(self.sandbox.requests),
            }
        return {"mode": self.mode, "sandbox": sandbox, "queues": queues, "schedules": sorted(self.schedules)}

    def api_event(self, method: str, raw_path: str, headers: dict[str, str], body: bytes, route: str) -> dict:
        parts = urlsplit(raw_path)
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
        now = datetime.now(UTC)
        return {
            "version": "2.0",
            "routeKey": f"{method} {route}",
            "rawPath": parts.path,
            "rawQueryString": parts.query,
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "local",
                "domainName": f"127.0.0.1:{self.api_port}",
                "http": {
                    "method": method,
                    "path": parts.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": f"local-{time.time_ns()}",
                "routeKey": f"{method} {route}",
                "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "body": text,
            "isBase64Encoded": encoded,
        }

    def _api_handler(self) -> type[BaseHTTPRequestHandler]:
        runner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {"Content-Type": "application/json"}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urlsplit(self.path).path
                if path.startswith("/_local/"):
                    return self._admin(path)
                headers: dict[str, str] = {}
                for name, value in self.headers.items():  # API Gateway v2: lower case, repeats joined
                    key = name.lower()
                    headers[key] = f"{headers[key]},{value}" if key in headers else value
                for method, pattern, route, function in runner.routes:
                    if pattern.match(path) and method in (self.command, "ANY"):
                        event = runner.api_event(self.command, self.path, headers, body, route)
                        result = runner.run(function, event, "api")
                        if result is None:
                            return self._reply(500, b'{"message":"Internal Server Error"}')
                        return self._answer(function, result)
                return self._reply(404, b'{"message":"Not Found"}')

            def _answer(self, function: LocalFunction, result: dict) -> None:
                raw = result.get("body") or ""
                data = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
                status = int(result.get("statusCode", 200))
                say(
                    "api",
                    f"{self.command} {urlsplit(self.path).path} -> {function.logical_id} -> {status} "
                    f"{raw[:160]}",
                )
                self._reply(status, data, result.get("headers") or {"Content-Type": "application/json"})

            def _admin(self, path: str) -> None:
                if path == "/_local/status" and self.command == "GET":
                    return self._reply(200, json.dumps(runner.status()).encode())
                name = path.removeprefix("/_local/schedules/")
                if self.command == "POST" and name in runner.schedules:
                    result = runner.fire(name)
                    return self._reply(200, json.dumps(result, default=str).encode())
                known = ", ".join(f"/_local/schedules/{n}" for n in runner.schedules)
                return self._reply(
                    404, json.dumps({"message": f"GET /_local/status or POST {known}"}).encode()
                )

            def __getattr__(self, name: str) -> Any:
                # API Gateway answers any method (QUERY, TRACE...): an unrouted one is a 404, never a 501.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    # -- what the user sees first ----------------------------------------------------------------------

    def banner(self) -> str:
        api = f"http://127.0.0.1:{self.api_port}"
        secret = (
            self.resolver.resources.get("WebhookSigningSecret", {}).get("Value", {}).get("signing_secret")
        )
        lines = [f"Tweakwise bundle running locally ({self.mode} mode). Ctrl-C stops it.", ""]
        for method, _pattern, route, function in self.routes:
            lines.append(f"  api        {method} {api}{route} -> {function.logical_id}")
        if self.sandbox:
            lines.append(
                f"  tweakwise  {self.tweakwise_url} (sandbox; instance key {self.sandbox.instance_key}, "
                f"token {self.sandbox.access_token}; faults: {self.faults})"
            )
        else:
            lines.append(f"  tweakwise  {self.tweakwise_url} (live: your instance)")
        lines.append(
            f"  aws        {self.aws_url} (moto; e.g. aws --endpoint-url {self.aws_url} sqs list-queues)"
        )
        for function, _url, arn, batch in self.pollers:
            lines.append(
                f"  queue      {arn.rsplit(':', 1)[1]} -> {function.logical_id} (batches of {batch})"
            )
        for name, (_target, _payload, period) in self.schedules.items():
            every = f"every {period} s" if period else "cron: on demand"
            lines.append(
                f"  schedule   {name} ({every}, first in 2 s; now: "
                f"curl -X POST {api}/_local/schedules/{name})"
            )
        lines.append(f"  status     curl {api}/_local/status")
        if secret:
            lines += [
                f"  signing    {secret} (local, new each run)",
                "",
                "Send a signed webhook (paste into a shell):",
                "",
                '  BODY=\'{"events":[{"id":"evt-\'"$(date +%s%N)"\'","type":"item.upsert",'
                '"occurredAt":"\'"$(date -u +%Y-%m-%dT%H:%M:%SZ)"\'","item":{"id":"SKU-1",'
                '"name":"Trail runner","price":89.95,"stock":12}}]}\'',
                "  TS=$(date +%s)",
                '  SIG=$(printf \'%s.%s\' "$TS" "$BODY" | '
                f"openssl dgst -sha256 -hmac '{secret}' | sed 's/^.* //')",
                f"  curl -sS -X POST {api}/webhooks/catalog -H 'Content-Type: application/json' \\",
                '    -H "X-Signature-Timestamp: $TS" -H "X-Signature: sha256=$SIG" -d "$BODY"',
            ]
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("API_PORT", "3000")))
    parser.add_argument(
        "--faults",
        default=os.environ.get("SANDBOX_FAULTS", ""),
        help='sandbox faults, e.g. "429=0.2,5xx=0.1,latency=0.3,retry-after=2"',
    )
    parser.add_argument(
        "--fail-tasks",
        action="store_true",
        default=bool(os.environ.get("SANDBOX_FAIL_TASKS")),
        help="the sandbox reports every task as failed (shows the alarm path)",
    )
    args = parser.parse_args(argv)
    mode = os.environ.get("TWEAKWISE_MODE", "sandbox").lower()
    if mode not in ("sandbox", "live"):
        print(f"TWEAKWISE_MODE must be sandbox or live, not {mode!r}")
        return 2
    runner = Runner(args.api_port, mode, Faults.parse(args.faults), args.fail_tasks)
    try:
        runner.start()
    except OSError as exc:
        print(f"Cannot start: {exc}. Is something else on port {args.api_port}? Try: make run API_PORT=3001")
        return 1
    print(runner.banner(), file=sys.__stdout__, flush=True)
    print("ready", file=sys.__stdout__, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    say("run", "stopping")
    with contextlib.suppress(Exception):
        runner.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
