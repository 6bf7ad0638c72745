"""`make run` as a child process: started, read until "ready", driven from outside, stopped with Ctrl-C.
Used by the tests of the runner and by the webhook fuzz (scripts/fuzz_webhook.py)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tweakwise_local.template import ROOT

# The runner decides its own credentials and endpoints: nothing of the caller's AWS or Tweakwise setup.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("TWEAKWISE_", "AWS_", "POWERTOOLS_"))}


def run_module(module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120):
    """`python -m <module> <args>` from the repository, in the clean environment, to its end: its exit
    code and what it printed (the one-shot commands: make invoke, make snapshot, a refused make run)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**CLEAN_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Child:
    """A started runner: its process and, once it stopped, what it printed after the banner."""

    def __init__(self, process: subprocess.Popen[str]):
        self.process = process
        self.rest = ""

    @property
    def returncode(self) -> int | None:
        return self.process.returncode


@contextmanager
def running(command: list[str], env: dict[str, str] | None = None) -> Iterator[tuple[Child, str]]:
    """Start the runner, wait for "ready", yield (child, banner); stop it with Ctrl-C. Its later output
    is read all along (a full pipe would stall it) and is `child.rest` once it stopped."""
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**CLEAN_ENV, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    if process.stdout is None:
        raise RuntimeError("no output pipe")
    stdout = process.stdout
    child = Child(process)
    banner: list[str] = []
    rest: list[str] = []
    reader = threading.Thread(target=lambda: rest.extend(stdout), daemon=True)
    deadline = time.monotonic() + 120
    try:
        for line in stdout:
            banner.append(line)
            if line.strip() == "ready" or time.monotonic() > deadline:
                break
        if not banner or banner[-1].strip() != "ready":
            raise RuntimeError("the local bundle did not start:\n" + "".join(banner))
        reader.start()
        yield child, "".join(banner)
    finally:
        # Ctrl-C for the runner itself (under make: make's child), as a terminal would deliver it to it.
        children = subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        target = int(children[0]) if command[0] == "make" and children else process.pid
        os.kill(target, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired as exc:
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGUSR1)  # the runner prints every thread's stack: why it hangs
                time.sleep(1)
            os.killpg(process.pid, signal.SIGKILL)
            reader.join(timeout=5)
            raise RuntimeError(
                "the local bundle did not stop within 20 s of Ctrl-C; its last output:\n"
                + "".join(rest)[-6000:]
            ) from exc
        finally:
            if reader.is_alive() or reader.ident:
                reader.join(timeout=5)
            else:
                rest.extend(stdout)
            child.rest = "".join(rest)


def _found(pattern: str, banner: str) -> str:
    match = re.search(pattern, banner)
    if match is None:
        raise ValueError(f"the banner shows no {pattern!r}")
    return match[1]


def api_url(banner: str) -> str:
    return _found(r"POST (http://127\.0\.0\.1:\d+)/webhooks/catalog", banner)


def signing_secret(banner: str) -> str:
    return _found(r"signing\s+(\S+) \(local", banner)
