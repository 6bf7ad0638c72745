"""The snapshot benchmark's Distributed Map slots, each in a process of its own, as each slot is a Lambda
container of its own in AWS: the slots' CPU time is not one interpreter's (one GIL for 80 request threads),
and the harness (the orchestration, the DynamoDB stand-in, moto) is not theirs.

A slot makes its job as the snapshot function's init does (its own Tweakwise client and pool), reaches
DynamoDB through the benchmark's one stand-in (`scripts.standins.serve`: shared state, its latency) and S3
and Secrets Manager through the moto server named by AWS_ENDPOINT_URL, which it inherits.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from typing import Any

BUCKET = "bench-snapshots"


def snapshot_job(dynamodb: Any, concurrency: int) -> Any:
    """One Lambda container of the snapshot function: its own client, pool and job."""
    import boto3

    from tweakwise.client import TweakwiseClient
    from tweakwise.ledger import Ledger
    from tweakwise.settings import ClientSettings, SnapshotSettings
    from tweakwise.snapshot import SnapshotJob
    from tweakwise.state import SyncState
    from tweakwise.sync import CatalogSync

    client = TweakwiseClient.from_settings(ClientSettings.from_env())
    state, ledger = SyncState(dynamodb, "state"), Ledger(dynamodb, "ledger")
    settings = SnapshotSettings(
        bucket=BUCKET, sync_state_table="state", ledger_table="ledger", concurrency=concurrency
    )
    s3 = boto3.client("s3")
    return SnapshotJob(s3, CatalogSync(client, state, ledger=ledger), ledger, state, settings)


def _slot(pipe: Connection, dynamodb: tuple[tuple[str, int], bytes], concurrency: int) -> None:
    from scripts.standins import RemoteDynamoDB

    remote = RemoteDynamoDB(*dynamodb)
    job = None
    pipe.send("ready")
    while True:
        command, event = pipe.recv()
        if command == "stop":
            return
        if command == "new job":  # a fresh container for each run, as the benchmark's runs had
            job = snapshot_job(remote, concurrency)
            pipe.send(None)
            continue
        try:
            pipe.send((True, job.run(event)))  # type: ignore[union-attr]
        except Exception as exc:  # the Map retries the batch, as the state machine does
            pipe.send((False, f"{type(exc).__name__}: {exc}"))


class MapSlot:
    def __init__(self, dynamodb: tuple[tuple[str, int], bytes], concurrency: int):
        ours, theirs = multiprocessing.Pipe()
        self._pipe = ours
        self._process = multiprocessing.get_context("spawn").Process(
            target=_slot, args=(theirs, dynamodb, concurrency), daemon=True
        )
        self._process.start()
        ours.recv()

    def new_job(self) -> None:
        self._pipe.send(("new job", None))
        self._pipe.recv()

    def run(self, event: dict) -> Any:
        self._pipe.send(("run", event))
        ok, answer = self._pipe.recv()
        if not ok:
            raise RuntimeError(answer)
        return answer

    def stop(self) -> None:
        self._pipe.send(("stop", None))
        self._process.join(10)
