"""The worker's SQS FIFO batch processor: the entities of one batch in parallel, each entity in order.

Imported before anything imports pydantic (the worker's handler imports it first): Powertools' batch
module loads its pydantic parser models, 70-100 ms of a cold start, when pydantic is loaded already, and
this processor uses none of them. A test keeps the worker's cold start free of them.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from concurrent.futures import ThreadPoolExecutor

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from . import secrecy
from .errors import GroupSkippedError

logger = logging.getLogger("tweakwise")


class ConcurrentFifoProcessor(BatchProcessor):
    """An SQS FIFO batch processor: the message groups of one batch run in parallel (at most
    `max_workers`), each group's records in order. After a record fails, the later records of its group
    are reported failed unprocessed, so they cannot overtake it; other groups go on. Every failure is
    reported (never the whole batch raised). Built on BatchProcessor's public API: `process()`, and the
    success and failure handlers that feed `response()`. Its threads are made once, on the first batch
    with more than one group, and reused by every later invocation of the container."""

    def __init__(self, max_workers: int = 10):
        super().__init__(EventType.SQS, raise_on_entire_batch_failure=False)
        self.max_workers = max(1, max_workers)
        self._pool: ThreadPoolExecutor | None = None

    def process(self) -> list[tuple]:
        groups: dict[str, list[dict]] = {}
        for record in self.records:
            group = record.get("attributes", {}).get("MessageGroupId") or record.get("messageId")
            groups.setdefault(str(group), []).append(record)
        if len(groups) == 1 or self.max_workers == 1:
            return [result for records in groups.values() for result in self._process_group(records)]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="fifo-group")
        # Each group runs in a copy of the invocation's context (what the caller set stays visible).
        futures = [
            self._pool.submit(contextvars.copy_context().run, self._process_group, records)
            for records in groups.values()
        ]
        return [result for future in futures for result in future.result()]

    def _process_group(self, records: list[dict]) -> list[tuple]:
        results: list[tuple] = []
        failed: SQSRecord | None = None
        for raw in records:
            record = SQSRecord(raw)
            if failed is not None:
                skipped = GroupSkippedError(
                    f"not processed: message {failed.message_id} of its group failed before it"
                )
                results.append(self.failure_handler(record, (type(skipped), skipped, None)))
                continue
            try:
                result = self.handler(record)
            except Exception as exc:
                failed = record
                reason = secrecy.scrub(f"{type(exc).__name__}: {exc}")
                later = len(records) - len(results) - 1
                logger.warning(
                    "Message %s failed; SQS delivers it again%s: %s",
                    record.message_id,
                    f" (and the {later} after it in its group)" if later else "",
                    reason,
                    extra={"message_id": record.message_id, "reason": reason},
                )
                results.append(self.failure_handler(record, sys.exc_info()))
            else:
                results.append(self.success_handler(record, result))
        return results
