"""One source for each pin: the layer's requirements.txt (what Lambda gets) and the dev lock never drift
apart, and the lock satisfies pyproject.toml's dev list."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tweakwise_local.template import ROOT


def _pins(path) -> dict[str, str]:
    pins = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name.split("[")[0])] = version.strip()
    return pins


LAYER = _pins(ROOT / "layers" / "tweakwise" / "requirements.txt")
LOCK = _pins(ROOT / "requirements-dev.lock")


def test_the_dev_lock_has_the_layers_versions():
    drift = {name: (version, LOCK.get(name)) for name, version in LAYER.items() if LOCK.get(name) != version}
    assert drift == {}, "layer pin vs lock (run `make lock`)"


def test_the_dev_lock_satisfies_the_dev_list():
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    for text in dev:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in LOCK, f"{name} is not in requirements-dev.lock (run `make lock`)"
        assert requirement.specifier.contains(LOCK[name], prereleases=True), (text, LOCK[name])


def test_runtime_versions_are_pinned_in_one_place():
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    pinned_twice = [
        text for text in dev if canonicalize_name(Requirement(text).name) in LAYER and "=" in text
    ]
    assert pinned_twice == []
