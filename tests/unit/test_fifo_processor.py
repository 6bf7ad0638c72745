"""The FIFO batch processor on its own: groups in parallel, each in order, a failed group's later records
reported failed and never tried, every failure reported (the whole batch never raised)."""

from __future__ import annotations

import threading

from tweakwise.fifo import ConcurrentFifoProcessor


def _record(message_id: str, group: str | None) -> dict:
    attributes = {"MessageGroupId": group} if group else {}
    return {"messageId": message_id, "body": message_id, "attributes": attributes, "eventSource": "aws:sqs"}


def test_later_records_of_a_failed_group_are_reported_failed_and_never_tried(tweakwise_log):
    tried = []

    def handler(record):
        tried.append(record["messageId"])
        if record["messageId"] == "a1":
            raise ValueError("Tweakwise said no")
        return f"done {record['messageId']}"

    records = [_record("a1", "A"), _record("a2", "A"), _record("b1", "B"), _record("a3", "A")]
    batch = ConcurrentFifoProcessor(max_workers=2).process(records, handler)
    assert sorted(tried) == ["a1", "b1"]
    assert batch.results == {"b1": "done b1"}
    assert batch.response() == {"batchItemFailures": [{"itemIdentifier": m} for m in ("a1", "a2", "a3")]}
    assert tweakwise_log == [
        "Message a1 failed; SQS delivers it again (and the 2 after it in its group): "
        "ValueError: Tweakwise said no"
    ]


def test_a_batch_that_fails_whole_is_reported_not_raised():
    def handler(record):
        raise RuntimeError("down")

    batch = ConcurrentFifoProcessor().process([_record("x", "X"), _record("y", "Y")], handler)
    assert batch.response() == {"batchItemFailures": [{"itemIdentifier": "x"}, {"itemIdentifier": "y"}]}


def test_groups_run_in_parallel_up_to_max_workers_and_records_without_a_group_stand_alone():
    both_in = threading.Barrier(2, timeout=5)

    def handler(record):
        both_in.wait()  # returns only while the other group's record runs too
        return record["messageId"]

    batch = ConcurrentFifoProcessor(max_workers=2).process([_record("p", None), _record("q", None)], handler)
    assert batch.results == {"p": "p", "q": "q"} and batch.response() == {"batchItemFailures": []}
    assert ConcurrentFifoProcessor(max_workers=0).max_workers == 1


def test_one_worker_runs_the_groups_one_after_the_other():
    order = []
    records = [_record("a1", "A"), _record("b1", "B"), _record("a2", "A")]
    batch = ConcurrentFifoProcessor(max_workers=1).process(records, lambda r: order.append(r["messageId"]))
    assert order == ["a1", "a2", "b1"]  # grouped, groups in order of arrival
    assert list(batch.results) == ["a1", "b1", "a2"]  # the batch's own order


def test_threads_are_made_once_and_reused_by_later_batches_in_the_callers_context():
    import contextvars

    request = contextvars.ContextVar("request", default="none")
    seen: list[tuple[str, str]] = []
    processor = ConcurrentFifoProcessor(max_workers=3)
    for batch in ("first", "second", "third"):
        request.set(batch)
        records = [_record(f"{batch}-{group}", group) for group in "ABCD"]
        processor.process(records, lambda r: seen.append((threading.current_thread().name, request.get())))
    names = {name for name, _ in seen}
    assert len(seen) == 12 and len(names) <= 3  # three threads served all three batches
    assert all(name.startswith("fifo-group") for name in names)
    assert [value for _, value in seen] == ["first"] * 4 + ["second"] * 4 + ["third"] * 4
