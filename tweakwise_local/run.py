"""`make run`: the whole bundle on this machine, in one process, without Docker or an AWS account.

- AWS: a moto server in this process, holding the secrets, queues, tables and state machines template.yaml
  declares (moto's Step Functions runs the state machines, their Lambda tasks in this process).
- Tweakwise: the in-memory sandbox, or the real API (tweakwise_local.credentials says when).
- The HTTP API routes of template.yaml on http://127.0.0.1:3000, each calling its function.
- Every SQS event source of template.yaml polled and fed to its function, partial failures retried.
- Every schedule of template.yaml fired at its rate (and once at start), and on demand.

Everything is read from template.yaml: a new function, route, queue, schedule or state machine needs no
change here.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

from tweakwise.settings import ClientSettings, PublisherSettings, WebhookSettings
from tweakwise_local import api, eventbridge, queues, runs, snapshots
from tweakwise_local.credentials import local_tweakwise, mode
from tweakwise_local.functions import LocalFunction
from tweakwise_local.invocations import emf_metrics, log_lines
from tweakwise_local.provision import LOCAL_AWS_ENVIRONMENT, provision
from tweakwise_local.sandbox import Faults
from tweakwise_local.schedules import Schedule, schedules
from tweakwise_local.states import StateMachines
from tweakwise_local.template import Resolver, load_template, variable_target

# A followed task is polled every second locally, instead of every minute.
LOCAL_POLL_SECONDS = {"TaskPollSeconds": "1"}


def local_parameters(template: dict[str, Any]) -> dict[str, str]:
    """Locally every schedule is on (each ENABLED/DISABLED parameter is ENABLED), so every path can be
    seen; and followed tasks are polled every second."""
    switches = {
        name: "ENABLED"
        for name, parameter in template.get("Parameters", {}).items()
        if sorted(parameter.get("AllowedValues", [])) == ["DISABLED", "ENABLED"]
    }
    return {**switches, **LOCAL_POLL_SECONDS}


_OUTPUT = threading.Lock()


def show(line: str) -> None:
    """One whole line on the real stdout (invocations capture sys.stdout; threads must not interleave)."""
    with _OUTPUT:
        print(line, file=sys.__stdout__, flush=True)


def say(kind: str, message: str) -> None:
    show(f"{datetime.now(UTC).strftime('%H:%M:%S')} {kind:<9} {message}")


class Runner:
    def __init__(self, api_port: int = 3000, faults: Faults | None = None, fail_tasks: bool = False):
        self.template = load_template()
        self.resolver = Resolver(self.template, local_parameters(self.template))
        self.api_port = api_port
        self.faults = faults or Faults()
        self.fail_tasks = fail_tasks
        self.mode = mode()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.functions: dict[str, LocalFunction] = {}

    # -- start and stop -----------------------------------------------------------------------------

    def start(self) -> None:
        self._start_aws()
        self.tweakwise = local_tweakwise(self.faults, self.fail_tasks)
        self.sandbox = self.tweakwise.sandbox
        secret = variable_target(self.template, ClientSettings.variable("secret_id"), self.resolver)
        provision(self.template, self.resolver, {secret: self.tweakwise.credentials})
        self._load_functions()
        self.state_machines = StateMachines(
            self.template, self.resolver, lambda name, payload: self.functions[name].invoke(payload, True)[0]
        )
        self.state_machines.create()
        self.schedules = {s.name: s for s in schedules(self.template, self.resolver)}
        self.routes = api.routes(self.functions)
        self.sources = queues.event_sources(self.functions, self.resolver)
        stack = self.resolver.PSEUDO["AWS::StackName"]
        self.bus = eventbridge.Bus(eventbridge.create(eventbridge.rules(self.resolver), stack), self.deliver)
        admin = api.Admin(
            self.status,
            self.fire,
            lambda: sorted(self.schedules),
            snapshot=self.snapshot,
            events=self.bus.put,
            outputs=self.outputs,
        )
        self.api = api.serve(self.api_port, self.routes, self.run, admin, say)
        self.api_port = self.api.server_port
        self._spawn(self.api.serve_forever)
        for source in self.sources:
            self._spawn(queues.poll, source, self.run_records, self.stopping, say, self._sandbox_summary)
        for schedule in self.schedules.values():
            self._spawn(self._repeat, schedule)

    def _start_aws(self) -> None:
        """A moto server in this process, which every AWS client of the process talks to."""
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)  # failed states: we report them
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.aws_url = f"http://{host}:{port}"
        os.environ.update(LOCAL_AWS_ENVIRONMENT)
        os.environ["AWS_ENDPOINT_URL"] = self.aws_url
        os.environ["MOTO_PORT"] = str(port)  # where moto's Step Functions sends its service integrations

    def _load_functions(self) -> None:
        """Every function, with the environment the template gives it (every function's ARN known first)."""
        logical_ids = [
            k for k, v in self.template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"
        ]
        for logical in logical_ids:
            arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{logical}"
            self.resolver.resources[logical] = {"Ref": logical, "Arn": arn}
        extra_env = {
            "POWERTOOLS_LOG_LEVEL": os.environ.get("RUN_LOG_LEVEL", "WARNING"),
            ClientSettings.variable("api_url"): self.tweakwise.url,
        }
        if self.tweakwise.sandbox:  # it serves the shopper-facing API too; live: Tweakwise's own gateway
            extra_env[PublisherSettings.variable("frontend_url")] = self.tweakwise.url
        for logical in logical_ids:
            self.functions[logical] = LocalFunction(self.template, logical, self.resolver, extra_env)

    def stop(self) -> None:
        self.stopping.set()
        self.api.shutdown()
        self.api.server_close()
        deadline = time.monotonic() + 5  # all threads together: Ctrl-C stops in seconds, however many run
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.tweakwise.stop()
        self.moto.stop()

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    # -- functions, state machines, schedules --------------------------------------------------------

    def run(self, function: LocalFunction, event: dict, kind: str) -> Any:
        return self.run_records(function, event, kind)[0]

    def run_records(self, function: LocalFunction, event: dict, kind: str) -> tuple[Any, dict[str, dict]]:
        """Run a function; show its log lines and a summary of its metrics. Also returns what it logged
        about single records (message_id -> the log entry), which the queue poller reports itself."""
        try:
            result, printed = function.invoke(event, capture=True)
        except Exception as exc:  # a failed invocation: Lambda would retry or dead-letter it
            say(kind, f"{function.logical_id} failed: {type(exc).__name__}: {exc}")
            return None, {}
        records: dict[str, dict] = {}
        for line, entry in log_lines(printed):
            if entry is not None and "message_id" in entry:
                records[entry["message_id"]] = entry
            else:
                show(line)
        metrics = emf_metrics(printed)
        if metrics:
            say("metrics", " ".join(f"{k}={v:g}" for k, v in metrics.items()))
        return result, records

    def execute(self, logical: str, document: dict) -> Any:
        """A state machine execution to its end: its output, or {"failed": error}."""
        execution = self.state_machines.execute(logical, document)
        say("sfn", f"{logical}: {' -> '.join(execution.states)}")
        for resource, params in execution.service_calls():
            if resource.endswith("cloudwatch:putMetricData"):
                say("metrics", " ".join(f"{m['MetricName']}={m['Value']:g}" for m in params["MetricData"]))
            elif resource.endswith("sns:publish"):
                say("notify", f"SNS: {params.get('Subject')}: {params.get('Message')}")
        if execution.status == "SUCCEEDED":
            return execution.output
        say("sfn", f"{logical} execution {execution.status.lower()}: {execution.error}: {execution.cause}")
        return {"failed": execution.error}

    def snapshot(
        self, name: str, body: bytes, allow_mass_delete: bool, dry_run: bool = False
    ) -> dict[str, Any]:
        """Upload a snapshot to the local bucket and run it as the template's S3 rule would; a dry run
        under dry-runs/, started with `dryRun` (as `tweakwise-ops snapshot plan` starts one)."""
        import boto3

        from tweakwise.settings import SnapshotSettings
        from tweakwise.snapshot_contract import DRY_RUNS_PREFIX, SNAPSHOTS_PREFIX, execution_input
        from tweakwise.snapshot_store import read_report

        bucket = self.resolver.resolve(
            {"Ref": variable_target(self.template, SnapshotSettings.variable("bucket"))}
        )
        key = f"{DRY_RUNS_PREFIX if dry_run else SNAPSHOTS_PREFIX}{name}"
        s3 = boto3.client("s3")
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        say("snapshot", f"s3://{bucket}/{key} uploaded ({len(body)} bytes)")
        execution = self.state_machines.execute(
            snapshots.SNAPSHOT_MACHINE, execution_input(bucket, key, allow_mass_delete, dry_run), timeout=3600
        )
        say("sfn", f"{snapshots.SNAPSHOT_MACHINE}: {' -> '.join(execution.states)}")
        report = read_report(s3, bucket, key, execution.arn)
        outcome = report["outcome"] if report else "failed"
        reason = report["reason"] if report else f"{execution.error}: {execution.cause}"
        say("snapshot", f"{key}: {outcome}" + (f" ({reason})" if reason else ""))
        return {
            "key": key,
            "outcome": outcome,
            "reason": reason,
            "status": execution.status,
            "report": report,
        }

    def deliver(self, rule: eventbridge.Rule, event: dict) -> str:
        """What EventBridge does with an event a rule matched: invoke the function asynchronously, or start
        the state machine. One line per delivery."""
        if rule.target in self.functions:
            result = eventbridge.invoke_async(self.functions[rule.target], event, self.run, self.resolver)
        else:
            result = json.dumps(self.execute(rule.target, event), default=str)
        what = f"{event['source']} {event['detail-type']}"
        say("events", f"{what} -> {rule.logical_id} -> {rule.target}: {result[:160]}")
        return result

    def fire(self, name: str) -> Any:
        schedule = self.schedules[name]
        say("schedule", f"{name} fired")
        if schedule.target in self.functions:
            result = self.run(self.functions[schedule.target], schedule.payload, "schedule")
        else:
            result = self.execute(schedule.target, schedule.payload)
        if result is not None:
            say("schedule", f"{name} -> {json.dumps(result, default=str)}")
        return result

    def _repeat(self, schedule: Schedule) -> None:
        delay = 2.0  # once at start, so the result shows at once
        while not self.stopping.wait(delay):
            self.fire(schedule.name)
            if schedule.period is None:  # cron(): on demand only, locally
                return
            delay = schedule.period

    # -- what /_local/status shows -------------------------------------------------------------------

    def _sandbox_summary(self) -> str:
        box = self.sandbox
        return f"; sandbox holds {len(box.items)} items, {len(box.categories)} categories" if box else ""

    def status(self) -> dict[str, Any]:
        import boto3

        sqs = boto3.client("sqs")
        found = {}
        for logical, attrs in self.resolver.resources.items():
            if "QueueName" in attrs:
                counts = sqs.get_queue_attributes(
                    QueueUrl=attrs["Ref"],
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                found[logical] = {k: int(v) for k, v in counts.items()}
        sandbox = None
        if self.sandbox:
            sandbox = {
                "items": len(self.sandbox.items),
                "item_ids": sorted(self.sandbox.items),
                "categories": len(self.sandbox.categories),
                "task_triggers": len(self.sandbox.task_triggers),
                "requests": len(self.sandbox.requests),
                "writes": self.sandbox.writes(),
                # What Tweakwise got last: the fields a change sent, and only those.
                "last_writes": [
                    {"method": method, "path": path, "body": body}
                    for method, path, body in self.sandbox.requests
                    if method in ("POST", "PATCH", "PUT", "DELETE")
                ][-5:],
            }
        return {"mode": self.mode, "sandbox": sandbox, "queues": found, "schedules": sorted(self.schedules)}

    def outputs(self) -> dict[str, Any]:
        """The stack's outputs as CloudFormation would give them, resolved locally, and where AWS and
        Tweakwise answer: what `tweakwise-ops --local` reads."""
        found = {}
        for key, output in self.template.get("Outputs", {}).items():
            if "Condition" not in output or self.resolver.condition(output["Condition"]):
                found[key] = str(self.resolver.resolve(output["Value"]))
        return {
            "outputs": found,
            "region": self.resolver.PSEUDO["AWS::Region"],
            "awsEndpointUrl": self.aws_url,
            "tweakwiseApiUrl": self.tweakwise.url,
        }

    # -- what the user sees first ----------------------------------------------------------------------

    def signing_secret(self) -> str | None:
        """The webhook's signing key, generated for this run."""
        logical = variable_target(self.template, WebhookSettings.variable("signing_secret_id"), self.resolver)
        return self.resolver.resources.get(logical, {}).get("Value", {}).get("signing_secret")

    def banner(self) -> str:
        api = f"http://127.0.0.1:{self.api_port}"
        secret = self.signing_secret()
        lines = [f"Tweakwise bundle running locally ({self.mode} mode). Ctrl-C stops it.", ""]
        for route in self.routes:
            lines.append(f"  api        {route.method} {api}{route.path} -> {route.function.logical_id}")
        if self.sandbox:
            lines.append(
                f"  tweakwise  {self.tweakwise.url} (sandbox; instance key {self.sandbox.instance_key}, "
                f"token {self.sandbox.access_token}; faults: {self.faults})"
            )
        else:
            lines.append(f"  tweakwise  {self.tweakwise.url} (live: your instance)")
        lines.append(
            f"  aws        {self.aws_url} (moto; e.g. aws --endpoint-url {self.aws_url} sqs list-queues)"
        )
        for source in self.sources:
            queue = source.queue_arn.rsplit(":", 1)[1]
            lines.append(
                f"  queue      {queue} -> {source.function.logical_id} (batches of {source.batch_size})"
            )
        for name, schedule in self.schedules.items():
            every = f"every {schedule.period} s" if schedule.period else "cron: on demand"
            lines.append(
                f"  schedule   {name} ({every}, first in 2 s; now: "
                f"curl -X POST {api}/_local/schedules/{name})"
            )
        lines.append(f"  status     curl {api}/_local/status")
        if secret:
            lines += [f"  signing    {secret} (local, new each run)", ""]
            lines += ["Send a signed webhook (paste into a shell):", "", *_signed_curl(api, secret, UPSERT)]
            lines += [
                "",
                "Then change its stock alone (an item.patch):",
                "",
                *_signed_curl(api, secret, PATCH),
            ]
        for bus in self.bus.source_buses:
            command = eventbridge.example_command(api, bus)
            if command:
                lines += [
                    "",
                    f"Put a {bus.split('/')[1]} event on {bus} (EventBridge, locally):",
                    "",
                    f"  {command}",
                ]
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import faulthandler

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>`: where every thread is
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("API_PORT") or runs.DEFAULT_PORT))
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
    try:
        faults = Faults.parse(args.faults)
    except ValueError as exc:
        print(f"SANDBOX_FAULTS: {exc}", file=sys.stderr)
        return 2
    runner = Runner(args.api_port, faults, args.fail_tasks)
    try:
        runner.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        free = runs.free_port(args.api_port)
        hint = f"; port {free} is free: make run API_PORT={free}" if free else ""
        print(f"Cannot start: port {args.api_port} is in use ({exc.strerror}){hint}")
        return 1
    registered = runs.register(runner.api_port)
    try:
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):  # before "ready": a Ctrl-C right after it stops cleanly
            signal.signal(sig, lambda *_: stop.set())
        print(runner.banner(), file=sys.__stdout__, flush=True)
        print("ready", file=sys.__stdout__, flush=True)
        # Woken twice a second: a signal the kernel hands to another thread only runs its handler once the
        # main thread wakes, and a wait without a timeout may never wake.
        while not stop.wait(0.5):
            pass
        say("run", "stopping")
        with contextlib.suppress(Exception):
            runner.stop()
    finally:
        runs.unregister(registered)
    return 0


# The banner's examples: an event's JSON in a shell variable, a fresh id and occurredAt at each paste.
_EVENT = (
    '{"events":[{"id":"evt-\'"$(date +%s%N)"\'","type":"@TYPE@",'
    '"occurredAt":"\'"$(date -u +%Y-%m-%dT%H:%M:%SZ)"\'","item":@ITEM@}]}'
)
UPSERT = _EVENT.replace("@TYPE@", "item.upsert").replace(
    "@ITEM@", '{"id":"SKU-1","name":"Trail runner","price":89.95,"stock":12}'
)
PATCH = _EVENT.replace("@TYPE@", "item.patch").replace("@ITEM@", '{"id":"SKU-1","stock":3}')


def _signed_curl(api: str, secret: str, body: str) -> list[str]:
    """Shell lines that sign `body` as a sender does and POST it to the local webhook."""
    return [
        f"  BODY='{body}'",
        "  TS=$(date +%s)",
        f"  SIG=$(printf '%s.%s' \"$TS\" \"$BODY\" | openssl dgst -sha256 -hmac '{secret}' | sed 's/^.* //')",
        f"  curl -sS -X POST {api}/webhooks/catalog -H 'Content-Type: application/json' \\",
        '    -H "X-Signature-Timestamp: $TS" -H "X-Signature: sha256=$SIG" -d "$BODY"',
    ]


if __name__ == "__main__":
    sys.exit(main())
