"""The worker's SQS FIFO batch processor: the entities of one batch in parallel, each entity in order, and
Lambda's partial batch response (`{"batchItemFailures": [...]}`, ReportBatchItemFailures).

Not Powertools' BatchProcessor: importing its batch module loads asyncio and every event data class
(26 ms of the worker's 410 ms cold start, python3.13, measured with `make importtime`), and this
processor needs none of its async or parser support, only the response's shape, which is Lambda's.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from . import secrecy

logger = logging.getLogger("tweakwise")

Record = dict[str, Any]  # one record of Lambda's SQS event, as Lambda sends it


@dataclass
class BatchResult:
    """What became of a batch: each succeeded record's result (in the batch's order), and the response."""

    results: dict[str, Any] = field(default_factory=dict)  # message id -> the handler's result
    failed: list[str] = field(default_factory=list)  # message ids, in the batch's order

    def response(self) -> dict[str, list[dict[str, str]]]:
        """Lambda's partial batch response: SQS deletes the others and delivers these again."""
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in self.failed]}


class ConcurrentFifoProcessor:
    """The message groups of one batch run in parallel (at most `max_workers`), each group's records in
    order. After a record fails, the later records of its group are reported failed unprocessed, so they
    cannot overtake it; other groups go on. Every failure is reported, never the whole batch raised. Its
    threads are made once, on the first batch with more than one group, and reused while warm."""

    def __init__(self, max_workers: int = 10):
        self.max_workers = max(1, max_workers)
        self._pool: ThreadPoolExecutor | None = None

    def process(self, records: list[Record], handler: Callable[[Record], Any]) -> BatchResult:
        groups: dict[str, list[Record]] = {}
        for record in records:
            group = record.get("attributes", {}).get("MessageGroupId") or record.get("messageId")
            groups.setdefault(str(group), []).append(record)
        if len(groups) == 1 or self.max_workers == 1:
            done = [self._process_group(group, handler) for group in groups.values()]
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="fifo-group")
            # Each group runs in a copy of the invocation's context (what the caller set stays visible).
            futures = [
                self._pool.submit(contextvars.copy_context().run, self._process_group, group, handler)
                for group in groups.values()
            ]
            done = [future.result() for future in futures]
        outcome = {message_id: result for group in done for message_id, result in group}
        batch = BatchResult()
        for record in records:
            result = outcome[record["messageId"]]
            if isinstance(result, _Failed):
                batch.failed.append(record["messageId"])
            else:
                batch.results[record["messageId"]] = result
        return batch

    def _process_group(
        self, records: list[Record], handler: Callable[[Record], Any]
    ) -> list[tuple[str, Any]]:
        done: list[tuple[str, Any]] = []
        for index, record in enumerate(records):
            message_id = record["messageId"]
            try:
                done.append((message_id, handler(record)))
            except Exception as exc:
                reason = secrecy.scrub(f"{type(exc).__name__}: {exc}")
                later = len(records) - index - 1
                logger.warning(
                    "Message %s failed; SQS delivers it again%s: %s",
                    message_id,
                    f" (and the {later} after it in its group)" if later else "",
                    reason,
                    extra={"message_id": message_id, "reason": reason},
                )
                done.append((message_id, _Failed(reason)))
                # Not processed: an earlier message of their group failed, and they must not overtake it.
                done += [(r["messageId"], _Failed(f"after {message_id}")) for r in records[index + 1 :]]
                break
        return done


@dataclass(frozen=True)
class _Failed:
    """A record that failed, or was not processed after one of its group failed: why."""

    reason: str
