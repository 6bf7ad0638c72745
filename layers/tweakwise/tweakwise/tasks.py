"""Tweakwise app tasks (feed imports, publishes): their GUIDs from the secret, triggers and status.

The secret may hold "tasks": {"import": "<guid>", "publish": "<guid>"}. A task's trigger URL
(/task/trigger/{instance_key}/{guid}) starts it without further authentication, so GUIDs are secrets:
no message, log line or metric shows one.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from . import secrecy
from .errors import TaskConfigError

if TYPE_CHECKING:  # the publisher imports this module before it needs a client
    from .client import TweakwiseClient

logger = logging.getLogger("tweakwise")

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class TaskState(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    UNKNOWN = "unknown"  # the status answer says nothing this module can read


_WORDS = {
    TaskState.FINISHED: {
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
    TaskState.FAILED: {
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
    TaskState.RUNNING: {
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


def task_guid(credentials: Any, name: str, secret_id: str) -> str:
    """The GUID of a named task; errors name the task and the configured names, never a GUID."""
    tasks = credentials.extra.get("tasks") or {}
    if not isinstance(tasks, dict):
        raise TaskConfigError(f"Secret {secret_id!r} key 'tasks' must be an object of task name to task GUID")
    names = ", ".join(sorted(map(str, tasks))) or "none"
    if name not in tasks:
        raise TaskConfigError(
            f"Task {name!r} is not configured in secret {secret_id!r} (configured: {names}); add its GUID "
            "under 'tasks' (docs/tasks.md)"
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
    """A Tweakwise task's state, with its raw answer."""

    state: TaskState
    raw: Any

    def shown(self) -> str:
        """The raw answer for a log line: scrubbed of secret values (it may echo the GUID), and short."""
        return secrecy.clip(json.dumps(self.raw, default=str), 300)


def parse_task_status(payload: Any) -> TaskStatus:
    """Read Tweakwise's undocumented task status tolerantly: a word, or an object with a status-like field
    (any case), or boolean flags such as IsRunning / IsFinished / HasFailed."""
    if isinstance(payload, str):
        return TaskStatus(_word(payload), payload)
    if isinstance(payload, dict):
        lowered = {str(k).lower().replace("_", ""): v for k, v in payload.items()}
        for key in _STATE_KEYS:
            value = lowered.get(key)
            if isinstance(value, str) and _word(value) != TaskState.UNKNOWN:
                return TaskStatus(_word(value), payload)
            if isinstance(value, dict):
                inner = parse_task_status(value)
                if inner.state != TaskState.UNKNOWN:
                    return TaskStatus(inner.state, payload)
        for flag, state in (
            ("hasfailed", TaskState.FAILED),
            ("isfailed", TaskState.FAILED),
            ("isrunning", TaskState.RUNNING),
            ("isfinished", TaskState.FINISHED),
            ("iscompleted", TaskState.FINISHED),
        ):
            if lowered.get(flag) is True:
                return TaskStatus(state, payload)
        if lowered.get("isrunning") is False:
            return TaskStatus(TaskState.FINISHED, payload)
    return TaskStatus(TaskState.UNKNOWN, payload)


def _word(text: str) -> TaskState:
    word = re.sub(r"[\s_-]", "", text.strip().lower())
    for state, words in _WORDS.items():
        if word in words:
            return state
    return TaskState.UNKNOWN


@dataclass(frozen=True)
class TaskTriggered:
    """A task this bundle started."""

    task: str
    triggered: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TaskProgress:
    """What the task state machine's loop reads: the state, and whether following it took too long."""

    task: str
    state: TaskState
    timed_out: bool

    def as_dict(self) -> dict[str, Any]:
        return {"task": self.task, "state": str(self.state), "timedOut": self.timed_out}


def trigger(client: TweakwiseClient, name: str) -> TaskTriggered:
    guid = task_guid(client.credentials.get(), name, client.credentials.secret_id)
    client.trigger_task(guid)
    logger.info("Triggered Tweakwise task %r", name)
    return TaskTriggered(name)


def status(
    client: TweakwiseClient,
    name: str,
    started_at: str | None = None,
    timeout_seconds: float | None = None,
    now: datetime | None = None,
) -> TaskProgress:
    """The task's state, and whether following it has taken longer than `timeout_seconds`."""
    guid = task_guid(client.credentials.get(), name, client.credentials.secret_id)
    found = parse_task_status(client.task_status(guid))
    logger.info("Tweakwise task %r is %s (status answer %s)", name, found.state, found.shown())
    timed_out = False
    if started_at and timeout_seconds is not None:
        start = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
        current = now or datetime.now(start.tzinfo)
        timed_out = (
            found.state not in (TaskState.FINISHED, TaskState.FAILED)
            and (current - start).total_seconds() > timeout_seconds
        )
    return TaskProgress(name, found.state, timed_out)
