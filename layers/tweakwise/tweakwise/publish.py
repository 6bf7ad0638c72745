"""Publish after sync: the worker marks the instance changed; a scheduled publisher starts the `publish`
task only if something changed since the last publish it started, and never while one is running.
The marks live in the sync state table (`state.SyncState`).

Most runs read the marks and find nothing to do: the Tweakwise client (and `requests` with it) is made on
the first run that calls Tweakwise, not at init."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import tasks
from .lazy import Lazy
from .settings import PublisherSettings
from .state import SyncState
from .tasks import TaskState

if TYPE_CHECKING:
    from .client import TweakwiseClient
    from .verify import Verification

logger = logging.getLogger("tweakwise")

PUBLISH_TASK = "publish"
UNKNOWN_GRACE = 300.0  # seconds a publish whose status cannot be read still counts as running


@dataclass(frozen=True)
class PublishOutcome:
    """What one publisher run did, and why."""

    published: bool
    reason: str
    last_publish: TaskState | None = None  # how the previous publish ended, when this run saw it end
    lag: float | None = None  # published: seconds from the oldest change it carries to its start
    verification: Verification | None = None  # the last publish ended now: what shoppers see of it

    def as_dict(self) -> dict[str, Any]:
        found = {"published": self.published, "reason": self.reason, "lastPublish": self.last_publish}
        if self.verification is not None:
            checked, mismatches = self.verification.checked, self.verification.mismatches
            found["verification"] = {"checked": checked, "mismatches": mismatches}
        return found


class Publisher:
    def __init__(
        self,
        client: Lazy[TweakwiseClient],
        state: SyncState,
        max_publish_seconds: float = PublisherSettings.default("max_publish_seconds"),
        verifier: Callable[[tuple[str, ...], Any], Verification] | None = None,
    ):
        """`verifier`: looks the items a finished publish carried up on the shopper-facing API."""
        self.client = client
        self.state = state
        self.max_publish_seconds = max_publish_seconds
        self.verifier = verifier

    def _tweakwise(self, context: Any) -> TweakwiseClient:
        client = self.client.get()
        client.set_deadline(context)
        return client

    def _last_publish(self, started_at: float, now: float, context: Any) -> TaskState | None:
        """How the running publish stands: None while it still runs, else its end state (now recorded)."""
        found = tasks.status(self._tweakwise(context), PUBLISH_TASK)  # logs the status answer
        age = now - started_at
        # An unreadable status right after a start (not triggered yet, or Tweakwise still catching up)
        # is taken as running for a while: finishing it early could start a second publish.
        running = found.state == TaskState.RUNNING or (
            found.state == TaskState.UNKNOWN and age < UNKNOWN_GRACE
        )
        if running and age < self.max_publish_seconds:
            return None
        self.state.finish_publish(started_at)
        if found.state == TaskState.FAILED:
            logger.error("The last Tweakwise publish failed")
        return found.state

    def run(self, now: float | None = None, context: Any = None) -> PublishOutcome:
        """One scheduled run; `context` (Lambda's) bounds its Tweakwise calls by the time left."""
        now = time.time() if now is None else now
        marks = self.state.publish_marks()
        last, verification = None, None
        if marks.running:
            last = self._last_publish(marks.started_at, now, context)
            if last is None:
                return PublishOutcome(False, "a publish is still running")
            if last == TaskState.FINISHED:
                verification = self._verify(marks.verify, now, context)
        if marks.changed_at <= marks.started_at:
            return PublishOutcome(False, "nothing changed since the last publish", last, None, verification)
        if not self.state.claim_publish(marks.started_at, now):
            return PublishOutcome(False, "another publisher started one", last, None, verification)
        try:
            tasks.trigger(self._tweakwise(context), PUBLISH_TASK)
        except Exception:
            self.state.finish_publish(now, restore_start=marks.started_at)  # let the next run try again
            raise
        self._carry_sample(now)
        lag = max(0.0, now - marks.first_changed_at) if marks.first_changed_at else None
        return PublishOutcome(True, "changes since the last publish", last, lag, verification)

    def _verify(self, item_ids: tuple[str, ...], now: float, context: Any) -> Verification | None:
        """What shoppers see of the items the finished publish carried; None without a verifier, or when
        it cannot be told (the shopper-facing API unreachable): the publish is over whatever this finds."""
        if self.verifier is None:
            return None
        from .errors import TweakwiseError
        from .verify import Verification

        try:  # no sample: nothing to look up, no secret or connection needed
            verification = self.verifier(item_ids, context) if item_ids else Verification()
        except TweakwiseError as exc:
            logger.warning("Could not check the publish on the shopper-facing API: %s", exc)
            return None
        self._keep(verification, now)
        return verification

    def _keep(self, verification: Verification, now: float) -> None:
        """What the check found, for the operator's status."""
        try:
            self.state.record_verification(verification.verified, len(verification.mismatches), now)
        except Exception as exc:  # the check's own outcome is reported anyway
            logger.warning("Could not keep the publish check's result: %s", type(exc).__name__)

    def _carry_sample(self, now: float) -> None:
        """The items sampled since the last publish: this one carries them (verified once it ends)."""
        try:
            self.state.carry_sample(now)
        except Exception as exc:  # the publish is triggered: losing its sample only skips a check
            logger.warning("Could not carry the publish sample: %s", type(exc).__name__)
