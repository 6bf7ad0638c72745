"""Run a state machine of template.yaml locally, state by state, as Step Functions would.

Covers what this bundle's definitions use: Task (lambda:invoke, aws-sdk cloudwatch:putMetricData,
sns:publish), Wait, Choice (StringEquals, BooleanEquals, NumericGreaterThan...), Pass, Succeed, Fail;
Parameters with ".$" paths and States.Format, ResultSelector, ResultPath, Catch. Waits are shortened
(`max_wait`) so a local run does not take the deployed poll interval.
"""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


class ExecutionFailed(Exception):
    def __init__(self, error: str, cause: str):
        super().__init__(f"{error}: {cause}")
        self.error, self.cause = error, cause


def substitute(definition: Any, values: dict[str, Any]) -> Any:
    """Apply DefinitionSubstitutions: "${Name}" becomes the value (a number stays a number)."""
    text = json.dumps(definition)
    for name, value in values.items():
        text = text.replace(f'"${{{name}}}"', json.dumps(value)).replace(f"${{{name}}}", str(value))
    return json.loads(text)


def _path(document: Any, context: dict[str, Any], path: str) -> Any:
    root, rest = (context, path[2:]) if path.startswith("$$") else (document, path[1:])
    value = root
    for part in filter(None, rest.split(".")):
        value = value[part]
    return value


def _format(template: str, args: list[Any]) -> str:
    pieces = template.split("{}")
    return "".join(
        p + (str(a) if i < len(args) else "")
        for i, (p, a) in enumerate(zip(pieces, [*args, ""], strict=False))
    )


def _intrinsic(expression: str, document: Any, context: dict[str, Any]) -> Any:
    match = re.fullmatch(r"States\.Format\('((?:[^']|\\')*)',\s*(.*)\)", expression)
    if not match:
        return _path(document, context, expression)
    args = [_path(document, context, a.strip()) for a in match[2].split(",")]
    return _format(match[1], args)


def resolve(template: Any, document: Any, context: dict[str, Any]) -> Any:
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = _intrinsic(value, document, context)
            else:
                out[key] = resolve(value, document, context)
        return out
    if isinstance(template, list):
        return [resolve(v, document, context) for v in template]
    return template


def _set(document: Any, result_path: str | None, result: Any) -> Any:
    if result_path is None:
        return document
    if result_path == "$":
        return result
    updated = copy.deepcopy(document)
    target = updated
    parts = result_path[2:].split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = result
    return updated


def _matches(rule: dict[str, Any], document: Any) -> bool:
    value = _path(document, {}, rule["Variable"])
    for op, test in rule.items():
        if op == "StringEquals":
            return value == test
        if op == "BooleanEquals":
            return value is test
        if op == "NumericGreaterThan":
            return value > test
        if op == "NumericEquals":
            return value == test
    raise ValueError(f"unsupported Choice rule {rule}")


class LocalStateMachine:
    def __init__(
        self,
        definition: dict[str, Any],
        invoke: Callable[[str, dict], Any],
        sdk: Callable[[str, dict], Any] | None = None,
        max_wait: float = 1.0,
        on_state: Callable[[str, Any], None] | None = None,
    ):
        self.definition = definition
        self.invoke = invoke  # (function ARN or name, payload) -> the function's result
        self.sdk = sdk or (lambda resource, params: {})  # other service integrations
        self.max_wait = max_wait
        self.on_state = on_state or (lambda name, document: None)
        self.visited: list[str] = []

    def run(self, document: dict[str, Any]) -> Any:
        context = {
            "Execution": {
                "Id": f"arn:aws:states:eu-west-1:123456789012:execution:local:{uuid.uuid4()}",
                "StartTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            }
        }
        name = self.definition["StartAt"]
        while True:
            state = self.definition["States"][name]
            self.visited.append(name)
            self.on_state(name, document)
            kind = state["Type"]
            if kind == "Succeed":
                return document
            if kind == "Fail":
                raise ExecutionFailed(state.get("Error", "States.Fail"), state.get("Cause", ""))
            if kind == "Pass":
                result = (
                    resolve(state["Parameters"], document, context)
                    if "Parameters" in state
                    else state.get("Result", document)
                )
                document = _set(document, state.get("ResultPath", "$"), result)
            elif kind == "Wait":
                seconds = (
                    _path(document, context, state["SecondsPath"])
                    if "SecondsPath" in state
                    else state.get("Seconds", 0)
                )
                time.sleep(min(float(seconds), self.max_wait))
            elif kind == "Choice":
                name = next(
                    (r["Next"] for r in state["Choices"] if _matches(r, document)), state.get("Default")
                )
                if name is None:
                    raise ExecutionFailed(
                        "States.NoChoiceMatched", f"no choice matched in {self.visited[-1]}"
                    )
                continue
            elif kind == "Task":
                try:
                    result = self._task(state, document, context)
                except (
                    Exception
                ) as exc:  # Catch, as Step Functions would (Retry is for AWS's transient errors)
                    catcher = next(
                        (c for c in state.get("Catch", []) if "States.ALL" in c["ErrorEquals"]), None
                    )
                    if catcher is None:
                        raise
                    error = {"Error": type(exc).__name__, "Cause": str(exc)}
                    document = _set(document, catcher.get("ResultPath", "$"), error)
                    name = catcher["Next"]
                    continue
                document = _set(document, state.get("ResultPath", "$"), result)
            else:
                raise ValueError(f"unsupported state type {kind}")
            if state.get("End"):
                return document
            name = state["Next"]

    def _task(self, state: dict[str, Any], document: Any, context: dict[str, Any]) -> Any:
        params = resolve(state.get("Parameters", {}), document, context)
        if state["Resource"] == "arn:aws:states:::lambda:invoke":
            result = {
                "Payload": self.invoke(params["FunctionName"], params.get("Payload", {})),
                "StatusCode": 200,
            }
        else:
            result = self.sdk(state["Resource"], params)
        if "ResultSelector" in state:
            result = resolve(state["ResultSelector"], result, context)
        return result
