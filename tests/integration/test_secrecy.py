"""No secret value in any log line, metric, trace document, error or queued message, whatever Tweakwise
answers: every function runs cold in a fresh interpreter (tracing on, root logger at DEBUG) against a
Tweakwise that echoes the request back, resets connections, or stalls; a UDP listener stands in for the
X-Ray daemon and records every document the SDK sends."""

from __future__ import annotations

import json
import os
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ACCESS_TOKEN, INSTANCE_KEY, ROOT, SIGNING_SECRET, TASKS
from tweakwise import secrecy

# The function role's credentials, as Lambda puts them in the environment: botocore signs every AWS call
# with them, and its signer logs the canonical request (the session token among its headers) at DEBUG.
AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYLEAKTESTKEY"
AWS_SESSION_TOKEN = "IQoJb3JpZ2luX2VjLEAKTEST-session-token-0123456789abcdef"
SECRETS = {"access token": ACCESS_TOKEN, "instance key": INSTANCE_KEY, "signing secret": SIGNING_SECRET}
SECRETS.update({f"task GUID {name}": guid for name, guid in TASKS.items()})
SECRETS.update({"AWS secret access key": AWS_SECRET_ACCESS_KEY, "AWS session token": AWS_SESSION_TOKEN})


class EchoHandler(BaseHTTPRequestHandler):
    """Answers every request with its own request line and headers (the token among them) in every
    field Tweakwise uses for errors, with a status that depends on the path."""

    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode(errors="replace") if length else ""
        echo = f"{self.command} {self.path} {dict(self.headers)} {body}"
        if self.path.startswith("/task/status"):
            status, payload = 200, {"Status": f"weird {echo}", "Task": echo}
        elif self.path.startswith("/task/trigger"):
            status, payload = 500, {"Message": echo}
        elif self.path.startswith("/stats"):
            status, payload = 404, {"Message": echo}
        else:
            status, payload = 400, {"Message": echo, "Errors": [{"Error": echo}, echo]}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Echo", self.path)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, *args) -> None:
        pass


class ResetHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(65536)
        # SO_LINGER 0: close with a TCP reset, as a broken load balancer would.
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.request.close()


class StallHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(65536)
        time.sleep(1.0)  # past the driver's read timeout


class XrayDaemon:
    """Records every UDP datagram the X-Ray SDK sends."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.documents: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            self.documents.append(data.decode("utf-8", "replace"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def _serve(kind: str):
    if kind == "echo":
        server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    else:
        handler = ResetHandler if kind == "reset" else StallHandler
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _run_driver(api_url: str, daemon: XrayDaemon) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "TWEAKWISE_"))}
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(map(str, (ROOT / "layers" / "tweakwise", ROOT / "tests", ROOT))),
            # What Lambda sets: tracing is on, and X-Ray documents go to the daemon's UDP address.
            "LAMBDA_TASK_ROOT": str(ROOT),
            "AWS_LAMBDA_FUNCTION_NAME": "leak-test",
            "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            "AWS_XRAY_DAEMON_ADDRESS": daemon.address,
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "POWERTOOLS_LOG_LEVEL": "DEBUG",
            "POWERTOOLS_SERVICE_NAME": "leak-test",
            "POWERTOOLS_METRICS_NAMESPACE": "LeakTest",
            "POWERTOOLS_TRACER_CAPTURE_ERROR": "true",
            "TWEAKWISE_READ_TIMEOUT": "0.3",
            "TWEAKWISE_CONNECT_TIMEOUT": "0.3",
            "TWEAKWISE_MAX_RETRIES": "2",
            "AWS_ACCESS_KEY_ID": "ASIALEAKTESTKEYID0001",
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET_ACCESS_KEY,
            "AWS_SESSION_TOKEN": AWS_SESSION_TOKEN,
        }
    )
    done = subprocess.run(  # noqa: S603 - our own driver
        [sys.executable, str(ROOT / "tests" / "leak_driver.py"), api_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def _leaks(text: str) -> dict[str, int]:
    return {name: text.count(value) for name, value in SECRETS.items() if value in text}


@pytest.mark.parametrize("kind", ["echo", "reset", "stall"])
def test_no_secret_in_logs_metrics_traces_or_dead_letters(kind):
    server = _serve(kind)
    daemon = XrayDaemon()
    try:
        output = _run_driver(f"http://127.0.0.1:{server.server_address[1]}", daemon)
        time.sleep(0.3)  # the last datagrams
    finally:
        server.shutdown()
        server.server_close()
        daemon.close()
    traces = "\n".join(daemon.documents)
    # The run did happen, with debug logs, failures, traces of Tweakwise calls and a dead letter.
    assert "DEBUG" in output
    assert "botocore.hooks DEBUG" in output  # botocore logged at DEBUG: its quiet loggers were tried
    assert '"itemsKey": "runs/c-' in output  # the snapshot function ran too (six functions)
    assert "ERROR" in output
    assert '"namespace": "remote"' in traces or '"namespace":"remote"' in traces
    assert "/task/trigger/{instance_key}/{task_guid}" in traces
    if kind == "echo":
        assert "DEAD-LETTER" in output
        assert "weird" in output  # the status answer was logged, scrubbed
    print(f"leak scan ({kind}): {len(output.splitlines())} lines, {len(daemon.documents)} X-Ray documents")
    assert _leaks(output) == {}, "secret values in logs, metrics, errors or dead letters"
    assert _leaks(traces) == {}, "secret values in X-Ray documents"


def test_scrub_masks_known_values_their_encoded_form_and_any_guid():
    secrecy.remember("key with/slash", "abc", None)
    text = "a key with/slash, key%20with%2Fslash, abc and 0f8fad5b-d9cb-469f-a165-70867728950e"
    assert secrecy.scrub(text) == "a ***, ***, abc and ***"  # values under 4 characters are left
