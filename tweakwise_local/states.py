"""The template's state machines, run by moto's own Step Functions interpreter (an ASL engine ported from a
mature emulator), with every Lambda task routed to the function running in this process.

moto executes a state machine when `execute_state_machine` is on; its Lambda tasks call lambda:Invoke
through botocore, and a `before-call` hook answers that call with the local function's result, as
Lambda would (a raised exception becomes an `Unhandled` function error the definition's Catch sees).
Other service integrations (CloudWatch, SNS, S3) go to moto itself.

moto runs a Distributed Map's item reader and result writer (the writer's manifest lists no result files)
but has no ItemBatcher: `batch_items_one_by_one` gives each child the shape a batch has in AWS,
{"Items": [one item], "BatchInput": {...}}, so the same handler runs (docs/snapshots.md).
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import unquote

from tweakwise_local.template import Resolver, state_machine_definition

REGION = "eu-west-1"
INVOKE_EVENT = "before-call.lambda.Invoke"


def substitute(definition: Any, values: dict[str, Any]) -> Any:
    """Apply DefinitionSubstitutions: "${Name}" becomes the value (a number stays a number)."""
    text = json.dumps(definition)
    for name, value in values.items():
        text = text.replace(f'"${{{name}}}"', json.dumps(value)).replace(f"${{{name}}}", str(value))
    return json.loads(text)


def batch_items_one_by_one(definition: dict[str, Any]) -> dict[str, Any]:
    """A definition moto can run: every Map's ItemBatcher becomes an ItemSelector that wraps each item in
    a batch of one, with the same BatchInput."""
    for state in definition.get("States", {}).values():
        if state.get("Type") != "Map":
            continue
        batcher = state.pop("ItemBatcher", None)
        if batcher is not None:
            state["ItemSelector"] = {
                "Items.$": "States.Array($$.Map.Item.Value)",
                "BatchInput": batcher.get("BatchInput", {}),
            }
        batch_items_one_by_one(state.get("ItemProcessor", state.get("Iterator", {})))
    return definition


def enable_execution() -> None:
    """Have moto run state machines (in this process, whether moto is mocked or served)."""
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"] = {"execute_state_machine": True}


class _Answer:
    """The HTTP side of an answered call: botocore reads only its status."""

    status_code = 200
    headers: dict[str, str] = {}  # noqa: RUF012 - read only


_targets: list[Callable[[str, dict], Any]] = []  # the one `invoke` Lambda tasks go to, once routed


def _answer_invoke(params: dict[str, Any], **_kwargs: Any) -> tuple[Any, dict] | None:
    """botocore `before-call` hook: a lambda:Invoke answered by the routed function, as Lambda would."""
    from botocore.response import StreamingBody

    if not _targets:
        return None  # not routed: the call goes on as usual
    arn = unquote(params["url_path"].split("/functions/", 1)[1].removesuffix("/invocations"))
    payload = json.loads(params.get("body") or b"{}")
    answer: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
    try:
        result = _targets[0](arn.rsplit(":", 1)[-1], payload)
    except Exception as exc:  # what Lambda reports for an unhandled error
        result = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        answer["FunctionError"] = "Unhandled"
    body = json.dumps(result, default=str).encode()
    answer["Payload"] = StreamingBody(io.BytesIO(body), len(body))
    return _Answer(), answer


def route_lambda(invoke: Callable[[str, dict], Any]) -> None:
    """From now on, lambda:Invoke calls of new boto3 clients run `invoke(function name, payload)`."""
    import boto3
    import botocore.handlers

    _targets[:] = [invoke]
    if (INVOKE_EVENT, _answer_invoke) not in botocore.handlers.BUILTIN_HANDLERS:
        botocore.handlers.BUILTIN_HANDLERS.append((INVOKE_EVENT, _answer_invoke))  # sessions made later
    if boto3.DEFAULT_SESSION is not None:  # the session that exists already copied the list before
        # botocore's stubs type handlers as returning None; a before-call handler may return the answer.
        handler = cast(Callable[..., None], _answer_invoke)
        boto3.DEFAULT_SESSION.events.register(INVOKE_EVENT, handler, unique_id=INVOKE_EVENT)


@dataclass
class Execution:
    arn: str
    status: str  # SUCCEEDED, FAILED, TIMED_OUT, ABORTED
    output: Any = None
    error: str | None = None
    cause: str | None = None
    states: list[str] = field(default_factory=list)  # the states entered, in order
    events: list[Any] = field(default_factory=list)  # the execution history

    def inputs(self, state: str) -> list[Any]:
        """The input of each entry into `state`."""
        return [
            json.loads(e["stateEnteredEventDetails"]["input"])
            for e in self.events
            if e.get("stateEnteredEventDetails", {}).get("name") == state
        ]

    def service_calls(self) -> list[tuple[str, dict]]:
        """(resource, parameters) of every service integration task other than Lambda."""
        return [
            (
                f"{e['taskScheduledEventDetails']['resourceType']}:{e['taskScheduledEventDetails']['resource']}",
                json.loads(e["taskScheduledEventDetails"]["parameters"]),
            )
            for e in self.events
            if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resourceType"] != "lambda"
        ]


class StateMachines:
    """The AWS::StepFunctions::StateMachine resources of a template, created in moto."""

    def __init__(self, template: dict[str, Any], resolver: Resolver, invoke: Callable[[str, dict], Any]):
        self.template = template
        self.resolver = resolver
        self.invoke = invoke
        self.arns: dict[str, str] = {}

    def create(self) -> None:
        """Create every state machine (after the resources its substitutions name exist), and route its
        Lambda tasks to `invoke`."""
        import boto3

        enable_execution()
        route_lambda(self.invoke)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        for logical, resource in self.template["Resources"].items():
            if resource["Type"] != "AWS::StepFunctions::StateMachine":
                continue
            props = resource["Properties"]
            values = self.resolver.resolve(props.get("DefinitionSubstitutions", {}))
            definition = state_machine_definition(self.template, logical)
            definition = batch_items_one_by_one(substitute(definition, values))
            arn = sfn.create_state_machine(
                name=logical,
                definition=json.dumps(definition),
                roleArn=f"arn:aws:iam::123456789012:role/{logical}",
            )["stateMachineArn"]
            self.arns[logical] = arn
            self.resolver.resources[logical] = {"Ref": arn, "Name": logical, "Arn": arn}

    def execute(self, logical: str, document: dict[str, Any], timeout: float = 120.0) -> Execution:
        """Start an execution and wait for its end."""
        import boto3

        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.start_execution(
            stateMachineArn=self.arns[logical], name=f"local-{uuid.uuid4()}", input=json.dumps(document)
        )["executionArn"]
        deadline = time.monotonic() + timeout
        while (found := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            if time.monotonic() > deadline:
                sfn.stop_execution(executionArn=arn, error="Local.Timeout")
            time.sleep(0.1)
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        return Execution(
            arn=arn,
            status=found["status"],
            output=json.loads(found["output"]) if found.get("output") else None,
            error=found.get("error"),
            cause=found.get("cause"),
            states=[e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e],
            events=events,
        )
