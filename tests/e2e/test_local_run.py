"""`make run`: the whole bundle in one process, driven from outside with a real HTTP client."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import hmac
import json
import re
import socket
import subprocess
import sys
import time

import pytest
import requests

from conftest import ROOT
from tweakwise_local.process import api_url, run_module, running, signing_secret


def _api(banner: str) -> str:
    return api_url(banner)


def _signed_post(api: str, secret: str, events: list[dict]) -> requests.Response:
    body = json.dumps({"events": events}).encode()
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Signature-Timestamp": stamp,
        "X-Signature": f"sha256={digest}",
    }
    return requests.post(f"{api}/webhooks/catalog", data=body, headers=headers, timeout=30)


def _wait_for(api: str, check, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = requests.get(f"{api}/_local/status", timeout=10).json()
        if check(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


def test_a_signed_webhook_reaches_the_sandbox_end_to_end():
    with running([sys.executable, "-m", "tweakwise_local.run", "--api-port", "0"]) as (_process, banner):
        api = _api(banner)
        secret = signing_secret(banner)
        assert "openssl dgst -sha256 -hmac" in banner and "/_local/status" in banner
        event = {
            "id": "e2e-1",
            "type": "item.upsert",
            "occurredAt": "2026-11-28T07:00:00Z",
            "item": {"id": "E2E/1 ü", "name": "End to end", "price": 1.5, "stock": 3},
        }
        answer = _signed_post(api, secret, [event])
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"accepted": 1}
        status = _wait_for(api, lambda s: s["sandbox"]["items"] == 1)
        assert status["sandbox"]["item_ids"] == ["E2E/1 ü"]
        assert status["queues"]["CatalogQueue"]["ApproximateNumberOfMessages"] == 0
        # bad requests are answered as the deployed API would
        assert _signed_post(api, "not-the-secret-0000", [event]).status_code == 401
        assert requests.post(f"{api}/webhooks/catalog", data=b"{}", timeout=10).status_code == 401
        assert requests.get(f"{api}/nowhere", timeout=10).status_code == 404
        # schedules fire on demand, and the monitor sees the new item
        monitor = requests.post(f"{api}/_local/schedules/CatalogMonitorFunction/Schedule", timeout=30)
        assert monitor.json() == {"total_products": 1, "total_categories": 0}
        # the synced change is published by the publisher, once
        publish = requests.post(f"{api}/_local/schedules/PublisherFunction/Schedule", timeout=30).json()
        assert publish["published"] is True
        # a task schedule drives the state machine to the task's end in the sandbox
        tracked = requests.post(f"{api}/_local/schedules/ImportTaskSchedule", timeout=60).json()
        assert tracked["status"] == {"state": "finished", "timedOut": False}
        assert tracked["trigger"] == {"triggered": True}


def test_injected_faults_are_retried_until_every_event_is_applied():
    # Deletes: retried by the client (a POST that failed is only retried by SQS redelivery).
    command = [sys.executable, "-m", "tweakwise_local.run", "--api-port", "0", "--faults", "5xx=0.5,seed=3"]
    with running(command) as (_process, banner):
        api = _api(banner)
        secret = signing_secret(banner)
        events = [{"id": f"f-{i}", "type": "item.delete", "itemId": f"F{i}"} for i in range(5)]
        assert _signed_post(api, secret, events).status_code == 202

        def drained(status):
            queues = status["queues"]
            depth = queues["CatalogQueue"]
            return depth["ApproximateNumberOfMessages"] + depth["ApproximateNumberOfMessagesNotVisible"] == 0

        status = _wait_for(api, drained, timeout=60)
        assert drained(status)
        assert status["queues"]["CatalogDeadLetterQueue"]["ApproximateNumberOfMessages"] == 0
        assert status["sandbox"]["requests"] > 5  # some answers were injected 503s, and retried


def test_a_failing_task_shows_the_alarm_path():
    command = [sys.executable, "-m", "tweakwise_local.run", "--api-port", "0", "--fail-tasks"]
    with running(command) as (process, banner):
        result = requests.post(f"{_api(banner)}/_local/schedules/PublishTaskSchedule", timeout=60).json()
        assert result == {"failed": "TaskDidNotFinish"}
    assert "TaskFailures=1" in process.rest
    assert "SNS: Tweakwise task did not finish: Tweakwise task publish failed" in process.rest


def test_make_run_starts_takes_one_webhook_and_stops():
    with running(["make", "--no-print-directory", "run", "API_PORT=0"]) as (process, banner):
        api = _api(banner)
        secret = signing_secret(banner)
        event = {"id": "smoke", "type": "item.delete", "itemId": "nothing-here"}
        assert _signed_post(api, secret, [event]).status_code == 202
        _wait_for(api, lambda s: s["queues"]["CatalogQueue"]["ApproximateNumberOfMessages"] == 0)
    assert "stopping" in process.rest
    assert "Traceback" not in process.rest
    assert process.returncode == 0


def test_live_mode_talks_to_the_given_api_with_the_given_credentials(tweakwise):
    tweakwise.expect_request(
        "/stats/totalproducts", headers={"TWN-InstanceKey": "live-key", "TWN-Authentication": "live-token"}
    ).respond_with_json(42)
    tweakwise.expect_request("/stats/totalcategories").respond_with_json(7)
    env = {
        "TWEAKWISE_MODE": "live",
        "TWEAKWISE_INSTANCE_KEY": "live-key",
        "TWEAKWISE_ACCESS_TOKEN": "live-token",
        "TWEAKWISE_API_URL": tweakwise.url_for("/").rstrip("/"),
    }
    with running([sys.executable, "-m", "tweakwise_local.run", "--api-port", "0"], env) as (_process, banner):
        assert "live: your instance" in banner and "live-token" not in banner
        monitor = requests.post(
            f"{_api(banner)}/_local/schedules/CatalogMonitorFunction/Schedule", timeout=30
        )
        assert monitor.json() == {"total_products": 42, "total_categories": 7}


def test_bad_sandbox_faults_stop_make_run_with_one_line():
    run = run_module("tweakwise_local.run", "--api-port", "0", "--faults", "429=2", timeout=60)
    assert run.returncode == 2
    assert run.stderr.strip() == "SANDBOX_FAULTS: fault 429 is a probability from 0 to 1, got '2'"
    assert "Traceback" not in run.stdout + run.stderr


def test_a_wrong_method_is_405_with_allow_while_the_worker_is_busy():
    faults = "latency=3"  # every Tweakwise answer takes 3 s: the worker stays busy
    with running(["make", "--no-print-directory", "run", "API_PORT=0", f"SANDBOX_FAULTS={faults}"]) as (
        _p,
        banner,
    ):
        api = _api(banner)
        event = {"id": "busy", "type": "item.delete", "itemId": "slow"}
        assert _signed_post(api, signing_secret(banner), [event]).status_code == 202
        _wait_for(api, lambda s: s["queues"]["CatalogQueue"]["ApproximateNumberOfMessagesNotVisible"] == 1)
        started = time.monotonic()
        answer = requests.get(f"{api}/webhooks/catalog", timeout=30)
        assert (answer.status_code, answer.headers["Allow"]) == (405, "POST")
        accepted = _signed_post(api, signing_secret(banner), [{**event, "id": "second"}])
        assert accepted.status_code == 202
        assert time.monotonic() - started < 2  # the webhook did not wait for the worker's invocation


def test_live_mode_without_credentials_says_what_to_do():
    run = run_module("tweakwise_local.run", "--api-port", "0", env={"TWEAKWISE_MODE": "live"}, timeout=60)
    assert run.returncode != 0
    assert "export TWEAKWISE_INSTANCE_KEY and TWEAKWISE_ACCESS_TOKEN" in run.stdout + run.stderr


@pytest.mark.parametrize("path", [".tweakwise.local.json", ".env"])
def test_local_credential_files_are_git_ignored(path):
    ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False)  # noqa: S603, S607
    assert ignored.returncode == 0


def _snapshot(port: str | None, path, *extra: str, env=None) -> subprocess.CompletedProcess:
    where = ("--api-port", port) if port else ()
    return run_module("tweakwise_local.snapshots", str(path), *where, *extra, env=env, timeout=300)


def test_make_snapshot_applies_a_snapshot_through_make_run(tmp_path):
    example = ROOT / "events" / "catalog_snapshot.jsonl"
    runs = {"RUNS_DIR": str(tmp_path / "runs")}  # this test's runners only, not a developer's own
    command = [sys.executable, "-m", "tweakwise_local.run", "--api-port", "0"]
    with running(command, runs) as (_process, banner):
        api = _api(banner)
        port = api.rsplit(":", 1)[1]
        applied = _snapshot(None, example, env=runs)  # found without its port: the one that runs
        assert applied.returncode == 0, applied.stdout + applied.stderr
        report = json.loads(applied.stdout)
        assert report["outcome"] == "applied" and report["items"]["created"] == 3
        assert report["categories"]["created"] == 3
        assert applied.stderr.strip() == "snapshot applied: snapshots/catalog_snapshot.jsonl"
        status = requests.get(f"{api}/_local/status", timeout=10).json()["sandbox"]
        assert status["items"] == 3 and status["categories"] == 3
        writes = status["writes"]
        assert writes == 3 + 3  # categories created; each new item one POST

        again = _snapshot(port, example)
        assert again.returncode == 0 and json.loads(again.stdout)["items"]["unchanged"] == 3
        assert requests.get(f"{api}/_local/status", timeout=10).json()["sandbox"]["writes"] == writes

        broken = tmp_path / "broken.jsonl"
        broken.write_text(example.read_text() + '{"type": "item", "item": {"id": "X"}}\n')
        refused = _snapshot(port, broken)
        assert refused.returncode == 1
        assert refused.stderr.strip().startswith("snapshot refused: 1 of 8 lines are invalid (12.5 %)")
        assert json.loads(refused.stdout)["invalidLines"][0]["line"] == 8

        cut = tmp_path / "cut.jsonl.gz"
        whole = gzip.compress(example.read_bytes() * 2000)
        cut.write_bytes(whole[: len(whole) // 2])
        unreadable = _snapshot(port, cut)
        assert unreadable.returncode == 1
        reason = unreadable.stderr.strip()
        assert reason.startswith("snapshot refused: the gzip stream ends before its end after line "), reason
        assert json.loads(unreadable.stdout)["outcome"] == "refused"  # its report, not null


def test_a_port_in_use_gets_a_free_one_suggested():
    taken = [socket.create_server(("127.0.0.1", 0))]
    port = taken[0].getsockname()[1]
    with contextlib.suppress(OSError):  # the next one taken too, when it can be: the hint skips it
        taken.append(socket.create_server(("127.0.0.1", port + 1)))
    busy = [server.getsockname()[1] for server in taken]
    try:
        run = run_module("tweakwise_local.run", "--api-port", str(port), timeout=60)
    finally:
        for server in taken:
            server.close()
    assert run.returncode == 1 and "Traceback" not in run.stdout + run.stderr
    found = re.search(
        rf"Cannot start: port {port} is in use \(.+\); port (\d+) is free: make run API_PORT=\1", run.stdout
    )
    assert found, run.stdout + run.stderr
    suggested = int(found.group(1))
    assert suggested > port and suggested not in busy


def test_make_snapshot_says_when_make_run_is_not_running():
    missing = _snapshot("9", ROOT / "events" / "catalog_snapshot.jsonl")
    assert missing.returncode == 2 and "start `make run` first (or say its API_PORT)" in missing.stderr
    nofile = _snapshot("9", ROOT / "no-such.jsonl")
    assert nofile.returncode == 2 and "no file" in nofile.stderr


def _paste(snippet: str) -> subprocess.CompletedProcess:
    """A banner's snippet run as a user pastes it into a shell."""
    return subprocess.run(  # noqa: S603 - the banner's own snippet, as pasted
        ["bash", "-c", snippet],  # noqa: S607 - the user's shell
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_the_banners_upsert_and_stock_patch_work_as_pasted():
    with running([sys.executable, "-m", "tweakwise_local.run", "--api-port", "0"]) as (_process, banner):
        api = _api(banner)
        upsert, patch = re.findall(r"  BODY=.*?-d \"\$BODY\"", banner, re.DOTALL)
        assert '"type":"item.patch"' in patch and '"stock":3}' in patch
        for snippet in (upsert, patch):
            pasted = _paste(snippet)
            assert json.loads(pasted.stdout) == {"accepted": 1}, pasted
            time.sleep(1.1)  # the next paste's occurredAt is a later second
        status = _wait_for(api, lambda s: any(w["body"] == {"Stock": 3} for w in s["sandbox"]["last_writes"]))
        writes = status["sandbox"]["last_writes"]
        assert [(w["method"], w["path"]) for w in writes] == [("POST", "/item"), ("PATCH", "/item/SKU-1")]
        assert writes[-1]["body"] == {"Stock": 3}  # the patch sends its one field


def test_the_banners_source_events_work_as_pasted():
    with running([sys.executable, "-m", "tweakwise_local.run", "--api-port", "0"]) as (_process, banner):
        api = _api(banner)
        commands = re.findall(r"^  (curl -sS -X POST \S+/_local/events .*)$", banner, re.MULTILINE)
        assert len(commands) == 2 and "commercetools.com" in commands[0] and "shopify.com" in commands[1]
        for command in commands:
            answer = json.loads(_paste(command).stdout)
            assert answer["FailedEntryCount"] == 0
            [delivery] = answer["Deliveries"]
            assert delivery["target"] == "CatalogSourceFunction" and json.loads(delivery["result"])["queued"]
        status = _wait_for(api, lambda s: {"CT-SKU-1", "7001"} <= set(s["sandbox"]["item_ids"]))
        assert {"CT-SKU-1", "7001"} <= set(status["sandbox"]["item_ids"])


def test_the_readmes_operator_commands_answer_from_make_run():
    with running([sys.executable, "-m", "tweakwise_local.run", "--api-port", "0"]) as (_process, banner):
        api = _api(banner)
        assert _signed_post(api, signing_secret(banner), [_upsert_event("e-ops", "SKU-1")]).status_code == 202
        _wait_for(api, lambda s: "SKU-1" in s["sandbox"]["item_ids"])
        port = api.rsplit(":", 1)[1]
        for args, expected in (
            ("trace SKU-1", ["SKU-1 (item#SKU-1)", "  tweakwise   holds it", "  dead letter none"]),
            (
                "status",
                ["queue          0 waiting, 0 being applied", "dead letters   0", "sync lag       no data"],
            ),
            (
                "redrive --reason 503 --dry-run",
                ["0 matched, would move 0, 0 stayed in the dead-letter queue"],
            ),
        ):
            ran = subprocess.run(  # noqa: S603 - the README's command
                ["make", "--no-print-directory", "-s", "ops", f"ARGS={args}", f"API_PORT={port}"],  # noqa: S607
                cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert ran.returncode == 0, ran.stderr
            for line in expected:
                assert line in ran.stdout.splitlines(), ran.stdout


def _upsert_event(event_id: str, item_id: str) -> dict:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    item = {"id": item_id, "name": "Trail runner", "price": 89.95, "stock": 12}
    return {"id": event_id, "type": "item.upsert", "occurredAt": now, "item": item}
