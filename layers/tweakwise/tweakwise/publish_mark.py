"""The worker's side of publish after sync: the mark that says the instance changed (`state.SyncState`
holds it; `publish` reads it)."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from .entity import EntityKey
from .state import SyncState

logger = logging.getLogger("tweakwise")
SAMPLED_PER_BATCH = 3  # items of a batch offered to the publish sample
FULL_BACKOFF = 60.0  # seconds a container stops offering once the sample was full


class PublishMark:
    """The worker's mark for publish after sync: written once per batch, as soon as the batch's first
    write to Tweakwise starts, on a thread of its own so the mark's write overlaps that request and the
    rest of the batch instead of following them. (Not at the batch's start: a batch that sends nothing,
    all unchanged or stale, must not cause a publish; a write that then fails costs one publish.) The
    mark carries the batch's deadline, not the time of the write: a publish that starts while the
    batch's later changes are still being applied is followed by another one. Reused across
    invocations.

    It also offers a few of the batch's items to the publish sample (`sample` of them in all, 0: none),
    which the publisher verifies on the shopper-facing API after the next publish: one more write per
    batch, none while the sample is full."""

    def __init__(self, state: SyncState, sample: int = 0):
        self.state = state
        self.sample = sample
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._future: Future[bool] | None = None
        self._until = 0.0
        self._items: list[str] = []
        self._full_until = 0.0

    def begin(self, until: float) -> None:
        """A new batch, whose changes all land before `until` (epoch seconds: its deadline)."""
        with self._lock:
            self._future, self._until, self._items = None, until, []

    def sending(self, entity: EntityKey | None = None) -> None:
        """A write of the batch goes to Tweakwise: the first call starts the mark's write."""
        with self._lock:
            if entity is not None and entity.kind == "item" and len(self._items) < SAMPLED_PER_BATCH:
                self._items.append(entity.ref)
            if self._future is None:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="publish-mark")
                self._future = self._pool.submit(self.state.mark_changed, self._until, first=time.time())

    def wait(self) -> bool:
        """True when the mark was written, or when nothing was applied (nothing to mark)."""
        with self._lock:
            future, items = self._future, self._items
        marked = True if future is None else future.result()
        if marked and items and self.sample and time.time() >= self._full_until:
            try:
                if not self.state.sample_changed(sorted(set(items)), self.sample):
                    self._full_until = time.time() + FULL_BACKOFF
            except Exception as exc:  # a sample is worth no failed batch
                logger.warning("Could not offer items to the publish sample: %s", type(exc).__name__)
        return marked
