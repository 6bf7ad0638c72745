"""Which `make run` processes are running from this checkout: while it runs, each keeps a file
build/run/<pid>.json naming its API port, so `make snapshot` finds the one that runs without API_PORT
said again, and `make run` can suggest a port that is free."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path

from tweakwise_local.template import ROOT

DEFAULT_PORT = 3000


def folder() -> Path:
    """build/run, or RUNS_DIR (the tests' own, so a developer's `make run` is not counted)."""
    return Path(os.environ.get("RUNS_DIR") or ROOT / "build" / "run")


def register(port: int) -> Path:
    """This process serves the API on `port`; returns the file to remove when it stops."""
    path = folder() / f"{os.getpid()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": os.getpid(), "port": port}), encoding="utf-8")
    return path


def unregister(path: Path) -> None:
    path.unlink(missing_ok=True)


def running_ports() -> list[int]:
    """The API ports of the runners alive now (a file left by one that was killed is removed)."""
    ports = []
    for path in sorted(folder().glob("*.json")):
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            os.kill(int(entry["pid"]), 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
            continue
        except PermissionError:
            pass  # alive, another user's
        except (OSError, ValueError, KeyError, TypeError):
            continue
        ports.append(int(entry["port"]))
    return ports


def free_port(after: int, tries: int = 100) -> int | None:
    """The first port above `after` that nothing listens on."""
    for port in range(after + 1, min(after + 1 + tries, 65536)):
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return None
