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
    batch, none while the sample is full. That write follows the mark's on the same thread, as soon as
    the batch has sent SAMPLED_PER_BATCH items (or at its end, when it sends fewer): it overlaps the
    batch's requests too, instead of adding a DynamoDB call to every batch's time."""

    def __init__(self, state: SyncState, sample: int = 0):
        self.state = state
        self.sample = sample
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._future: Future[bool] | None = None
        self._offered: Future[None] | None = None
        self._until = 0.0
        self._items: list[str] = []
        self._full_until = 0.0

    def begin(self, until: float) -> None:
        """A new batch, whose changes all land before `until` (epoch seconds: its deadline)."""
        with self._lock:
            self._future, self._offered, self._until, self._items = None, None, until, []

    def sending(self, entity: EntityKey | None = None) -> None:
        """A write of the batch goes to Tweakwise: the first call starts the mark's write."""
        with self._lock:
            if entity is not None and entity.kind == "item" and len(self._items) < SAMPLED_PER_BATCH:
                self._items.append(entity.ref)
            if self._future is None:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="publish-mark")
                self._future = self._pool.submit(self.state.mark_changed, self._until, first=time.time())
            if len(self._items) == SAMPLED_PER_BATCH:
                self._offer()

    def wait(self) -> bool:
        """True when the mark was written, or when nothing was applied (nothing to mark)."""
        with self._lock:
            self._offer()  # a batch that sent fewer items than SAMPLED_PER_BATCH: offered now
            future, offered = self._future, self._offered
        marked = True if future is None else future.result()
        if offered is not None:
            offered.result()
        return marked

    def _offer(self) -> None:
        """Queue the sample's write behind the mark's, once per batch (the lock is held)."""
        if self._pool is None or self._future is None or self._offered is not None:
            return  # nothing sent yet, or offered already
        if self._items and self.sample and time.time() >= self._full_until:
            self._offered = self._pool.submit(self._sample, self._future, sorted(set(self._items)))

    def _sample(self, mark: Future[bool], items: list[str]) -> None:
        try:
            if mark.result() and not self.state.sample_changed(items, self.sample):
                self._full_until = time.time() + FULL_BACKOFF
        except Exception as exc:  # a sample is worth no failed batch
            logger.warning("Could not offer items to the publish sample: %s", type(exc).__name__)
