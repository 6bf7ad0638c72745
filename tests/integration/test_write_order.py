"""Writes of one entity reach Tweakwise in the order they were claimed, whatever their retries and
latencies: two writers (a snapshot batch and the webhook worker, each its own container with its own
client) over the sandbox on real sockets and one sync state table and ledger in moto. Each test makes an
older write's request land late (a 429 retried, a slow DELETE, a request never answered) while a newer
write of the same entity comes in, and checks that Tweakwise and the ledger agree on the newer one."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from conftest import REGION, SECRET_ID
from tweakwise.catalog import EVENT_ADAPTER
from tweakwise.client import TweakwiseClient
from tweakwise.credentials import SecretCredentials
from tweakwise.entity import EntityKey
from tweakwise.errors import RequestTimeoutError
from tweakwise.ledger import Ledger, field_digests
from tweakwise.state import SyncState
from tweakwise.sync import CatalogSync, Outcome
from tweakwise_local.provision import create_table

T0 = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def writer(secrets, sandbox):
    """A writer: one container's client, over the shared tables."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    create_table(dynamodb, "sync-state", "SYNC_STATE_TABLE")
    create_table(dynamodb, "ledger", "LEDGER_TABLE")

    def make(**client_options) -> CatalogSync:
        options = {"backoff_factor": 0.01, "backoff_jitter": 0.0, "read_timeout": 5.0, **client_options}
        client = TweakwiseClient(SecretCredentials(SECRET_ID, 300), sandbox.url, **options)
        return CatalogSync(client, SyncState(dynamodb, "sync-state"), ledger=Ledger(dynamodb, "ledger"))

    return make


def upsert(event_id: str, minutes: int, price: float) -> object:
    return EVENT_ADAPTER.validate_python(
        {
            "id": event_id,
            "type": "item.upsert",
            "occurredAt": (T0 + timedelta(minutes=minutes)).isoformat(),
            "item": {"id": "SKU-1", "name": f"Price {price}", "price": price, "stock": 1},
        }
    )


def delete(event_id: str, minutes: int) -> object:
    at = (T0 + timedelta(minutes=minutes)).isoformat()
    return EVENT_ADAPTER.validate_python(
        {"id": event_id, "type": "item.delete", "occurredAt": at, "itemId": "SKU-1"}
    )


def apply(sync: CatalogSync, event: object, snapshot: str = "") -> Outcome:
    return sync.apply_change(sync.prepare(event), snapshot)


def landed(sandbox) -> list[tuple[str, object]]:
    """The writes of SKU-1 Tweakwise processed, in order: (method, price or None)."""
    return [
        (method, (body or {}).get("Price"))
        for method, path, body in sandbox.requests
        if path.endswith(("/item/SKU-1", "/item")) and method != "GET"
    ]


def assert_agree(sandbox, sync: CatalogSync, price: float) -> None:
    """Tweakwise holds the newest write, and the ledger says so."""
    assert sandbox.items["SKU-1"]["Price"] == price
    entry = sync.ledger.get_many([EntityKey.item("SKU-1")])[EntityKey.item("SKU-1")]
    change = sync.prepare(upsert("any", 0, price))
    held = {name: entry.fields.get(name) for name in change.body or {}}
    assert held == field_digests(change.body or {}), "the ledger believes another body than Tweakwise holds"


def in_thread(target) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(target()))
    thread.start()
    return thread, out


def test_a_429_retried_after_a_newer_write_was_claimed_lands_before_it(writer, sandbox):
    snapshot, worker = writer(), writer()
    assert apply(worker, upsert("evt-0", 0, 1.0)).applied
    answer, started = sandbox.answer, []

    def hook(method, path, headers, body):
        if method == "PATCH" and (body or {}).get("Price") == 7.0 and not started:
            # The snapshot's PATCH is throttled; while its client waits to retry, a newer change comes in.
            started.append(in_thread(lambda: apply(worker, upsert("evt-2", 20, 42.0))))
            time.sleep(0.2)  # the worker's claim is in before the snapshot's retry
            return 429, {"Message": "Too many requests"}, {"Retry-After": "1"}
        return answer(method, path, headers, body)

    sandbox.answer = hook
    assert apply(snapshot, upsert("snapshot:s", 10, 7.0), "s").applied
    [(thread, out)] = started
    thread.join(30)
    assert [outcome.applied for outcome in out] == [True]
    assert landed(sandbox)[-2:] == [("PATCH", 7.0), ("PATCH", 42.0)]  # the retry, then the newer write
    assert_agree(sandbox, worker, 42.0)


def test_a_slow_delete_lands_before_a_newer_upsert(writer, sandbox):
    snapshot, worker = writer(), writer()
    assert apply(worker, upsert("evt-0", 0, 1.0)).applied
    answer, started = sandbox.answer, []

    def hook(method, path, headers, body):
        if method == "DELETE" and not started:
            # The orphan DELETE is slow to land; meanwhile the shop sends the item again.
            started.append(in_thread(lambda: apply(worker, upsert("evt-2", 20, 42.0))))
            time.sleep(1.0)
        return answer(method, path, headers, body)

    sandbox.answer = hook
    assert apply(snapshot, delete("snapshot:s", 10), "s").applied
    [(thread, out)] = started
    thread.join(30)
    assert [outcome.applied for outcome in out] == [True]
    assert landed(sandbox)[-2:] == [("DELETE", None), ("POST", 42.0)]  # gone, then made again: one POST
    assert_agree(sandbox, worker, 42.0)


def test_a_request_tweakwise_never_answered_holds_its_entity_a_while_longer(writer, sandbox):
    # The snapshot's client stops waiting after 0.5 s; Tweakwise applies the request at 1 s anyway.
    snapshot = writer(connect_timeout=0.5, read_timeout=0.5, max_retries=0)
    worker = writer()
    assert apply(worker, upsert("evt-0", 0, 1.0)).applied
    answer = sandbox.answer

    def hook(method, path, headers, body):
        if method == "PATCH" and (body or {}).get("Price") == 7.0:
            time.sleep(1.0)
        return answer(method, path, headers, body)

    sandbox.answer = hook
    with pytest.raises(RequestTimeoutError):
        apply(snapshot, upsert("snapshot:s", 10, 7.0), "s")
    failed_at = time.monotonic()
    assert apply(worker, upsert("evt-2", 20, 42.0)).applied  # waits out the unanswered request
    assert time.monotonic() - failed_at >= 0.5
    assert landed(sandbox)[-2:] == [("PATCH", 7.0), ("PATCH", 42.0)]
    assert_agree(sandbox, worker, 42.0)


def test_a_batch_run_twice_beside_a_newer_write_ends_with_the_newer_one(writer, sandbox):
    first, again, worker = writer(), writer(), writer()
    assert apply(worker, upsert("evt-0", 0, 1.0)).applied
    sandbox.latency = 0.2  # every request takes a while: the three writers overlap
    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = [
            pool.submit(apply, first, upsert("snapshot:s", 10, 7.0), "s"),
            pool.submit(apply, again, upsert("snapshot:s", 10, 7.0), "s"),  # the same batch, its answer lost
            pool.submit(apply, worker, upsert("evt-2", 20, 42.0)),
        ]
        outcomes = [run.result() for run in runs]
    assert outcomes[2].applied  # the newer write
    assert {outcomes[0], outcomes[1]} & {Outcome.UPDATED, Outcome.UNCHANGED, Outcome.STALE}  # the batch ran
    assert_agree(sandbox, worker, 42.0)
