"""Tweakwise app tasks (feed imports, publishes): their GUIDs from the secret, triggers and status.

The secret may hold "tasks": {"import": "<guid>", "publish": "<guid>"}. A task's trigger URL
(/task/trigger/{instance_key}/{guid}) starts it without further authentication, so GUIDs are secrets:
no message, log line or metric shows one.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import secrecy
from .client import TweakwiseClient
from .errors import ConfigurationError

logger = logging.getLogger("tweakwise")

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
RUNNING, FINISHED, FAILED, UNKNOWN = "running", "finished", "failed", "unknown"
_WORDS = {
    FINISHED: {
        "finished",
        "done",
        "completed",
        "complete",
        "success",
        "succeeded",
        "successful",
        "ok",
        "ready",
    },
    FAILED: {
        "failed",
        "failure",
        "error",
        "errored",
        "faulted",
        "aborted",
        "cancelled",
        "canceled",
        "timeout",
    },
    RUNNING: {
        "running",
        "busy",
        "started",
        "starting",
        "inprogress",
        "processing",
        "queued",
        "pending",
        "scheduled",
        "waiting",
        "importing",
        "publishing",
    },
}
_STATE_KEYS = ("status", "state", "taskstatus", "taskstate", "result")


class TaskConfigError(ConfigurationError):
    pass


def task_guid(credentials: Any, name: str, secret_id: str) -> str:
    """The GUID of a named task; errors name the task and the configured names, never a GUID."""
    tasks = credentials.extra.get("tasks") or {}
    if not isinstance(tasks, dict):
        raise TaskConfigError(f"Secret {secret_id!r} key 'tasks' must be an object of task name to task GUID")
    names = ", ".join(sorted(map(str, tasks))) or "none"
    if name not in tasks:
        raise TaskConfigError(
            f"Task {name!r} is not configured in secret {secret_id!r} (configured: {names}); add its GUID "
            "under 'tasks' (README: Tweakwise tasks)"
        )
    guid = tasks[name]
    if not isinstance(guid, str) or not GUID.fullmatch(guid.strip()):
        raise TaskConfigError(
            f"Task {name!r} in secret {secret_id!r} is not a GUID; copy it from the task's API tab in the "
            f"Tweakwise app (configured: {names})"
        )
    return guid.strip()


@dataclass(frozen=True)
class TaskStatus:
    state: str  # running, finished, failed or unknown
    raw: Any

    def shown(self) -> str:
        """The raw answer for a log line: scrubbed of secret values (it may echo the GUID), and short."""
        return secrecy.scrub(json.dumps(self.raw, default=str))[:300]


def parse_task_status(payload: Any) -> TaskStatus:
    """Read Tweakwise's undocumented task status tolerantly: a word, or an object with a status-like field
    (any case), or boolean flags such as IsRunning / IsFinished / HasFailed."""
    if isinstance(payload, str):
        return TaskStatus(_word(payload), payload)
    if isinstance(payload, dict):
        lowered = {str(k).lower().replace("_", ""): v for k, v in payload.items()}
        for key in _STATE_KEYS:
            value = lowered.get(key)
            if isinstance(value, str) and _word(value) != UNKNOWN:
                return TaskStatus(_word(value), payload)
            if isinstance(value, dict):
                inner = parse_task_status(value)
                if inner.state != UNKNOWN:
                    return TaskStatus(inner.state, payload)
        for flag, state in (
            ("hasfailed", FAILED),
            ("isfailed", FAILED),
            ("isrunning", RUNNING),
            ("isfinished", FINISHED),
            ("iscompleted", FINISHED),
        ):
            if lowered.get(flag) is True:
                return TaskStatus(state, payload)
        if lowered.get("isrunning") is False:
            return TaskStatus(FINISHED, payload)
    return TaskStatus(UNKNOWN, payload)


def _word(text: str) -> str:
    word = re.sub(r"[\s_-]", "", text.strip().lower())
    for state, words in _WORDS.items():
        if word in words:
            return state
    return UNKNOWN


def trigger(client: TweakwiseClient, name: str) -> dict[str, Any]:
    guid = task_guid(client.credentials.get(), name, client.credentials.secret_id)
    client.trigger_task(guid)
    logger.info("Triggered Tweakwise task %r", name)
    return {"task": name, "triggered": True}


def status(
    client: TweakwiseClient,
    name: str,
    started_at: str | None = None,
    timeout_seconds: float | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The task's state, and whether following it has taken longer than `timeout_seconds`."""
    guid = task_guid(client.credentials.get(), name, client.credentials.secret_id)
    found = parse_task_status(client.task_status(guid))
    logger.info("Tweakwise task %r is %s (status answer %s)", name, found.state, found.shown())
    timed_out = False
    if started_at and timeout_seconds is not None:
        start = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
        current = now or datetime.now(start.tzinfo)
        timed_out = (
            found.state not in (FINISHED, FAILED) and (current - start).total_seconds() > timeout_seconds
        )
    return {"task": name, "state": found.state, "timedOut": timed_out}
