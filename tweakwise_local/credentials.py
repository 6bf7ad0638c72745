"""Which Tweakwise a local run talks to, by one rule for `make run` and `make invoke`:

- live (the real API, your credentials) when TWEAKWISE_MODE=live, or when TWEAKWISE_INSTANCE_KEY and
  TWEAKWISE_ACCESS_TOKEN are both set. Credentials come from those two variables, else from
  .tweakwise.local.json (git-ignored); the URL from TWEAKWISE_API_URL, the file's "api_url", or the
  default. Nothing of them is printed or written.
- the in-memory sandbox otherwise.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from tweakwise.settings import DEFAULT_API_URL, ClientSettings
from tweakwise_local.sandbox import Faults, Sandbox
from tweakwise_local.template import ROOT

LIVE_FILE = ROOT / ".tweakwise.local.json"  # {"instance_key", "access_token", "api_url"?}
MODES = ("sandbox", "live")


@dataclass
class LocalTweakwise:
    url: str
    credentials: dict[str, str]
    sandbox: Sandbox | None = None  # None: live

    def stop(self) -> None:
        if self.sandbox:
            self.sandbox.stop()


def mode() -> str:
    """ "live" or "sandbox", by the rule above; SystemExit for an unknown TWEAKWISE_MODE."""
    chosen = os.environ.get("TWEAKWISE_MODE", "").lower()
    if chosen and chosen not in MODES:
        raise SystemExit(f"TWEAKWISE_MODE must be sandbox or live, not {chosen!r}")
    if not chosen:
        given = os.environ.get("TWEAKWISE_INSTANCE_KEY") and os.environ.get("TWEAKWISE_ACCESS_TOKEN")
        chosen = "live" if given else "sandbox"
    return chosen


def _read_live_file() -> tuple[str, str, str | None]:
    """(instance key, access token, api url) from .tweakwise.local.json; SystemExit with one line naming
    what is wrong (never a value from the file)."""
    shape = '{"instance_key": "...", "access_token": "...", "api_url": "..." (optional)}'
    try:
        data = json.loads(LIVE_FILE.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise SystemExit(f"{LIVE_FILE.name} is not valid JSON{where}; it must be {shape}") from None
    if not isinstance(data, dict):
        raise SystemExit(f"{LIVE_FILE.name} must hold a JSON object: {shape}")
    for name in ("instance_key", "access_token"):
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise SystemExit(f"{LIVE_FILE.name} has no {name!r} (a non-empty string); it must be {shape}")
    url = data.get("api_url")
    if url is not None and not (isinstance(url, str) and url.startswith(("https://", "http://"))):
        raise SystemExit(f"{LIVE_FILE.name}: 'api_url' must be an http(s) URL when given")
    return data["instance_key"], data["access_token"], url


def _live() -> LocalTweakwise:
    key, token = os.environ.get("TWEAKWISE_INSTANCE_KEY"), os.environ.get("TWEAKWISE_ACCESS_TOKEN")
    file_url = None
    if not (key and token) and LIVE_FILE.is_file():
        key, token, file_url = _read_live_file()
    if not (key and token):
        raise SystemExit(
            "Live mode needs credentials: export TWEAKWISE_INSTANCE_KEY and TWEAKWISE_ACCESS_TOKEN, or write "
            f'them to {LIVE_FILE.name} as {{"instance_key": "...", "access_token": "..."}} (git ignores it).'
        )
    url = os.environ.get(ClientSettings.variable("api_url")) or file_url or DEFAULT_API_URL
    return LocalTweakwise(url, {"instance_key": key, "access_token": token})


def local_tweakwise(
    faults: Faults | None = None, fail_tasks: bool = False, demo: bool = False
) -> LocalTweakwise:
    """The Tweakwise to use, started (a sandbox listens on a free port). `demo` fills the sandbox with a
    few items and a category, so a single invocation has something to count and update."""
    if mode() == "live":
        return _live()
    sandbox = Sandbox(faults=faults or Faults())
    sandbox.fail_tasks = fail_tasks
    if demo:
        for number in range(1, 4):
            sandbox.items[f"DEMO-{number}"] = {
                "ArticleNumber": f"DEMO-{number}",
                "Name": f"Demo item {number}",
            }
        sandbox.categories[100] = {"CategoryId": 100, "Name": "Shoes"}
    return LocalTweakwise(sandbox.start(), sandbox.secret(), sandbox)
