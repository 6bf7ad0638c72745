"""Nothing lost under faults: webhook -> SQS FIFO -> worker -> a Tweakwise answering 429 and 503 at random
(benchmarks/fault_run.py; `make faults` runs 1,000 items)."""

from __future__ import annotations

from benchmarks.fault_run import run


def test_every_item_arrives_correct_under_429_and_503_and_nothing_is_dead_lettered():
    result = run(items=150, faults="429=0.3,5xx=0.1,retry-after=0", seed=7, containers=6)
    assert result["webhookAnswers"] == {202: 2}
    assert result["tweakwiseAnswers"][429] > 0 and result["tweakwiseAnswers"][503] > 0  # faults did happen
    assert result["recordsRetriedBySqs"] > 0
    assert result["deadLettered"] == 0
    assert result["itemsInTweakwise"] == 150
    assert result["itemsWrong"] == 0
