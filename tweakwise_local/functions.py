"""A function of template.yaml run in this process the way Lambda runs it: its environment from the
template, the layer on the path, a context with a deadline. Used by `make invoke` and `make run`."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

from tweakwise_local.events import LambdaContext
from tweakwise_local.template import ROOT, Resolver, function_environment, function_setting


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class LocalFunction:
    # Functions share this process's os.environ: one invocation at a time, each in its own environment.
    _lock = threading.RLock()

    def __init__(
        self, template: dict[str, Any], logical_id: str, resolver: Resolver, extra_env: dict | None = None
    ):
        self.logical_id = logical_id
        self.props = template["Resources"][logical_id]["Properties"]
        self.env = {**function_environment(template, logical_id, resolver), **(extra_env or {})}
        self.timeout = float(function_setting(template, logical_id, "Timeout", 3))
        self.memory = int(function_setting(template, logical_id, "MemorySize", 128))
        self.handler_path = str(function_setting(template, logical_id, "Handler"))
        self.events = self.props.get("Events", {})
        self._handler: Callable[[dict, LambdaContext], Any] | None = None

    def _load(self) -> Any:
        module_file, handler_name = self.handler_path.rsplit(".", 1)
        path = ROOT / self.props["CodeUri"] / f"{module_file}.py"
        spec = importlib.util.spec_from_file_location(f"local_{self.logical_id}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, handler_name)

    def invoke(self, event: dict[str, Any], capture: bool = False) -> tuple[Any, str]:
        """Run the handler; with capture, what it printed (EMF metrics) is returned, not shown."""
        with self._lock, environment(self.env):
            if self._handler is None:
                self._handler = self._load()  # a cold start, outside any capture of stdout
            handler = self._handler
            context = LambdaContext(self.logical_id, self.memory, self.timeout)
            if not capture:
                return handler(event, context), ""
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                result = handler(event, context)
            return result, buffer.getvalue()
