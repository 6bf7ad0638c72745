"""The worker's side of publish after sync: the mark that says the instance changed (`state.SyncState`
holds it; `publish` reads it)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from .state import SyncState


class PublishMark:
    """The worker's mark for publish after sync: written once per batch, as soon as the batch's first
    write to Tweakwise starts, on a thread of its own so the mark's write overlaps that request and the
    rest of the batch instead of following them. (Not at the batch's start: a batch that sends nothing,
    all unchanged or stale, must not cause a publish; a write that then fails costs one publish.) The
    mark carries the batch's deadline, not the time of the write: a publish that starts while the
    batch's later changes are still being applied is followed by another one. Reused across
    invocations."""

    def __init__(self, state: SyncState):
        self.state = state
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._future: Future[bool] | None = None
        self._until = 0.0

    def begin(self, until: float) -> None:
        """A new batch, whose changes all land before `until` (epoch seconds: its deadline)."""
        with self._lock:
            self._future, self._until = None, until

    def sending(self) -> None:
        """A write of the batch goes to Tweakwise: the first call starts the mark's write."""
        with self._lock:
            if self._future is None:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="publish-mark")
                self._future = self._pool.submit(self.state.mark_changed, self._until, first=time.time())

    def wait(self) -> bool:
        """True when the mark was written, or when nothing was applied (nothing to mark)."""
        with self._lock:
            future = self._future
        return True if future is None else future.result()
