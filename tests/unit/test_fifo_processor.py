"""The FIFO batch processor on its own: groups in parallel, each in order, a failed group's later records
reported failed and never tried, every failure reported (the whole batch never raised)."""

from __future__ import annotations

import threading

from conftest import LambdaContext
from tweakwise.fifo import ConcurrentFifoProcessor


def _record(message_id: str, group: str | None) -> dict:
    attributes = {"MessageGroupId": group} if group else {}
    return {"messageId": message_id, "body": message_id, "attributes": attributes, "eventSource": "aws:sqs"}


def _run(processor, records, handler):
    with processor(records=records, handler=handler, lambda_context=LambdaContext()):
        results = processor.process()
    return results, processor.response()


def test_later_records_of_a_failed_group_are_reported_failed_and_never_tried():
    tried = []

    def handler(record):
        tried.append(record.message_id)
        if record.message_id == "a1":
            raise ValueError("Tweakwise said no")
        return f"done {record.message_id}"

    records = [_record("a1", "A"), _record("a2", "A"), _record("b1", "B"), _record("a3", "A")]
    results, response = _run(ConcurrentFifoProcessor(max_workers=2), records, handler)
    assert sorted(tried) == ["a1", "b1"]
    outcome = {record.message_id: (status, detail) for status, detail, record in results}
    skipped = (
        "<class 'tweakwise.errors.GroupSkippedError'>:not processed: message a1 of its group failed before it"
    )
    assert outcome == {
        "a1": ("fail", "<class 'ValueError'>:Tweakwise said no"),
        "a2": ("fail", skipped),
        "a3": ("fail", skipped),
        "b1": ("success", "done b1"),
    }
    assert response == {"batchItemFailures": [{"itemIdentifier": m} for m in ("a1", "a2", "a3")]}


def test_a_batch_that_fails_whole_is_reported_not_raised():
    def handler(record):
        raise RuntimeError("down")

    _results, response = _run(ConcurrentFifoProcessor(), [_record("x", "X"), _record("y", "Y")], handler)
    assert response == {"batchItemFailures": [{"itemIdentifier": "x"}, {"itemIdentifier": "y"}]}


def test_groups_run_in_parallel_up_to_max_workers_and_records_without_a_group_stand_alone():
    both_in = threading.Barrier(2, timeout=5)

    def handler(record):
        both_in.wait()  # returns only while the other group's record runs too
        return record.message_id

    results, response = _run(
        ConcurrentFifoProcessor(max_workers=2), [_record("p", None), _record("q", None)], handler
    )
    assert [r[0] for r in results] == ["success", "success"] and response == {"batchItemFailures": []}
    assert ConcurrentFifoProcessor(max_workers=0).max_workers == 1


def test_one_worker_runs_the_groups_one_after_the_other():
    order = []
    records = [_record("a1", "A"), _record("b1", "B"), _record("a2", "A")]
    results, _ = _run(ConcurrentFifoProcessor(max_workers=1), records, lambda r: order.append(r.message_id))
    assert order == ["a1", "a2", "b1"]  # grouped, groups in order of arrival
    assert [r[2].message_id for r in results] == ["a1", "a2", "b1"]


def test_threads_are_made_once_and_reused_by_later_batches_in_the_callers_context():
    import contextvars

    request = contextvars.ContextVar("request", default="none")
    seen: list[tuple[str, str]] = []
    processor = ConcurrentFifoProcessor(max_workers=3)
    for batch in ("first", "second", "third"):
        request.set(batch)
        records = [_record(f"{batch}-{group}", group) for group in "ABCD"]
        _run(processor, records, lambda r: seen.append((threading.current_thread().name, request.get())))
    names = {name for name, _ in seen}
    assert len(seen) == 12 and len(names) <= 3  # three threads served all three batches
    assert all(name.startswith("fifo-group") for name in names)
    assert [value for _, value in seen] == ["first"] * 4 + ["second"] * 4 + ["third"] * 4
