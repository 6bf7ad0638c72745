"""The developer's commands as the README names them: make help, make snapshot's choice of `make run`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT
from tweakwise_local import runs, snapshots


def _help() -> str:
    make = shutil.which("make") or "make"
    return subprocess.run(  # noqa: S603 - make, our own Makefile
        [make, "--no-print-directory", "-s", "-C", str(ROOT), "help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_make_help_lists_every_target_the_readme_names_and_every_documented_one():
    listed = set(re.findall(r"^  make (\S+)", _help(), re.MULTILINE))
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    readme = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    named = set(re.findall(r"`make ([a-z0-9-]+)", readme)) | set(
        re.findall(r"^make ([a-z0-9-]+)", readme, re.MULTILINE)
    )
    documented = set(re.findall(r"^([a-z0-9-]+):[^\n]*## ", (ROOT / "Makefile").read_text(), re.MULTILINE))
    assert "e2e" in documented and "e2e" in named
    assert named - listed == set()
    assert documented == listed


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNS_DIR", str(tmp_path))
    monkeypatch.delenv("API_PORT", raising=False)
    return tmp_path


def _runner(folder, pid: int, port: int) -> None:
    (folder / f"{pid}.json").write_text(json.dumps({"pid": pid, "port": port}))


def test_make_snapshot_takes_the_one_make_run_that_runs(runs_dir, monkeypatch):
    _runner(runs_dir, os.getpid(), 3007)
    _runner(runs_dir, 2**22 + 17, 3008)  # a runner that was killed: no such process
    asked = []
    monkeypatch.setattr(
        snapshots, "_post", lambda url, body, timeout: asked.append(url) or {"outcome": "applied"}
    )
    assert snapshots.main([str(ROOT / "events" / "catalog_snapshot.jsonl")]) == 0
    assert asked[0].startswith("http://127.0.0.1:3007/_local/snapshots?")
    assert runs.running_ports() == [3007] and not (runs_dir / f"{2**22 + 17}.json").exists()


def test_make_snapshot_asks_which_when_several_run(runs_dir, capsys):
    _runner(runs_dir, os.getpid(), 3007)
    _runner(runs_dir, os.getppid(), 3009)
    assert snapshots.main([str(ROOT / "events" / "catalog_snapshot.jsonl")]) == 2
    error = capsys.readouterr().err
    assert "2 `make run` are running (API ports " in error and "say which: make snapshot API_PORT=" in error


def test_a_runner_registers_its_port_while_it_runs(runs_dir):
    path = runs.register(3011)
    assert runs.running_ports() == [3011]
    runs.unregister(path)
    assert runs.running_ports() == []
