"""The Tweakwise sandbox in a process of its own, for the benchmarks: its HTTP serving, request validation
and bookkeeping then take no CPU time (and no GIL) from the process that runs the bundle's code, and it
runs outside `mock_aws`. The benchmark reads what it received through a pipe.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from typing import Any


def _serve(pipe: Connection, latency: float) -> None:
    from tweakwise_local.sandbox import Sandbox

    sandbox = Sandbox()
    sandbox.latency = latency
    pipe.send((sandbox.start(), sandbox.instance_key, sandbox.access_token))
    while True:
        command, argument = pipe.recv()
        if command == "stop":
            sandbox.stop()
            pipe.send(None)
            return
        with sandbox.lock:
            if command == "requests":  # those received since the index given
                pipe.send(sandbox.requests[argument:])
            elif command == "count":
                pipe.send(len(sandbox.requests))
            elif command == "clear":
                sandbox.items.clear()
                sandbox.categories.clear()
                pipe.send(None)
            elif command == "latency":
                sandbox.latency = argument
                pipe.send(None)


class SandboxProcess:
    """What the benchmarks use of a `Sandbox`, served by a child process."""

    def __init__(self, latency: float = 0.0):
        ours, theirs = multiprocessing.Pipe()
        self._pipe = ours
        self._process = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(theirs, latency), daemon=True
        )
        self._process.start()
        self.url, self.instance_key, self.access_token = ours.recv()

    def _ask(self, command: str, argument: Any = None) -> Any:
        self._pipe.send((command, argument))
        return self._pipe.recv()

    def requests_since(self, start: int) -> list[tuple[str, str, Any]]:
        return [tuple(request) for request in self._ask("requests", start)]  # type: ignore[misc]

    def request_count(self) -> int:
        return int(self._ask("count"))

    def writes_since(self, start: int) -> int:
        return sum(1 for method, _p, _b in self.requests_since(start) if method != "GET")

    def clear(self) -> None:
        self._ask("clear")

    def stop(self) -> None:
        self._ask("stop")
        self._process.join(10)
