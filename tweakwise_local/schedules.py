"""The template's schedules (AWS::Scheduler::Schedule resources and ScheduleV2 function events), locally:
each fires once shortly after start, then at its rate; a cron() schedule fires on demand only."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tweakwise_local.template import Resolver

RATE = re.compile(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)")
SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Schedule:
    name: str  # the resource's logical id, or "<function>/<event>"
    target: str  # the logical id of the function or state machine it starts
    payload: dict[str, Any]
    period: float | None  # seconds between runs; None: cron, on demand only


def _schedule(name: str, props: dict, target: str, payload: Any, resolver: Resolver) -> Schedule | None:
    if resolver.resolve(props.get("State", "ENABLED")) != "ENABLED":
        return None
    expression = str(resolver.resolve(props["ScheduleExpression"]))
    match = RATE.fullmatch(expression)
    period = int(match[1]) * SECONDS[match[2].rstrip("s")] if match else None
    return Schedule(name, target, json.loads(resolver.resolve(payload)), period)


def schedules(template: dict[str, Any], resolver: Resolver) -> list[Schedule]:
    """Every enabled schedule, its target named by logical id (resolver.resources knows every ARN)."""
    by_arn: dict[str, str] = {}
    for logical, attrs in resolver.resources.items():
        for key in ("Arn", "Ref"):
            if key in attrs:
                by_arn.setdefault(attrs[key], logical)
    found = []
    for logical, resource in template["Resources"].items():
        active = "Condition" not in resource or resolver.condition(resource["Condition"])
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Scheduler::Schedule" and active:
            target = by_arn[resolver.resolve(props["Target"]["Arn"])]
            found.append(_schedule(logical, props, target, props["Target"].get("Input", "{}"), resolver))
        elif resource["Type"] == "AWS::Serverless::Function":
            for event_name, event in props.get("Events", {}).items():
                if event["Type"] == "ScheduleV2":
                    options = event.get("Properties", {})
                    name = f"{logical}/{event_name}"
                    found.append(_schedule(name, options, logical, options.get("Input", "{}"), resolver))
    return [s for s in found if s is not None]
