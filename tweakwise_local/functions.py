"""A function of template.yaml run in this process the way Lambda runs it: its environment from the
template, the layer on the path, a context with a deadline. Used by `make invoke` and `make run`."""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import io
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from tweakwise_local.invocations import LambdaContext
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


# The function whose invocation this thread (or a pool thread it started, through copy_context) runs.
CURRENT: contextvars.ContextVar[LocalFunction | None] = contextvars.ContextVar("local_function", default=None)
_CAPTURE: contextvars.ContextVar[io.StringIO | None] = contextvars.ContextVar("local_capture", default=None)


class _InvocationStdout(io.TextIOBase):
    """sys.stdout while functions run in this process: what an invocation prints (its EMF metrics, its
    log lines) goes to that invocation's buffer, so invocations running at once never mix their output."""

    def __init__(self, real: Any):
        self.real = real

    def write(self, text: str) -> int:
        target = _CAPTURE.get()
        return (target if target is not None else self.real).write(text)

    def flush(self) -> None:
        self.real.flush()

    def isatty(self) -> bool:
        return self.real.isatty()


class _FunctionLogs(logging.Handler):
    """The package's "tweakwise" logger is one per process, and each function's Logger copies its own
    handler onto it at init (observability.logger_and_tracer). Locally, where all functions share a
    process, this sends each record through the handler of the function that logged it."""

    def __init__(self) -> None:
        super().__init__()
        self.by_function: dict[str, list[logging.Handler]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        function = CURRENT.get()
        handlers = self.by_function.get(function.logical_id, []) if function else []
        for handler in handlers or [h for hs in self.by_function.values() for h in hs][-1:]:
            if record.levelno >= handler.level:
                handler.handle(record)


_ROUTER = _FunctionLogs()


class LocalFunction:
    """One function, as one Lambda instance: one invocation at a time; other functions run meanwhile."""

    # Functions share this process's os.environ: a cold start (which reads it) runs in its function's
    # environment, one at a time. Settings are read at init, so invocations need no environment swap.
    _loading = threading.Lock()

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
        self._lock = threading.Lock()

    def _load(self) -> Any:
        module_file, handler_name = self.handler_path.rsplit(".", 1)
        path = ROOT / self.props["CodeUri"] / f"{module_file}.py"
        spec = importlib.util.spec_from_file_location(f"local_{self.logical_id}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        package_logger = logging.getLogger("tweakwise")
        with LocalFunction._loading, environment(self.env):
            if not isinstance(sys.stdout, _InvocationStdout):
                sys.stdout = _InvocationStdout(sys.stdout)
            spec.loader.exec_module(module)
            # What this function's init put on the package logger becomes its own, routed by CURRENT.
            _ROUTER.by_function[self.logical_id] = [h for h in package_logger.handlers if h is not _ROUTER]
            package_logger.handlers = [_ROUTER]
        return getattr(module, handler_name)

    def invoke(self, event: dict[str, Any], capture: bool = False) -> tuple[Any, str]:
        """Run the handler; with capture, what it printed (EMF metrics, log lines) is returned, not shown."""
        with self._lock:
            if self._handler is None:
                self._handler = self._load()  # a cold start
            handler = self._handler
            context = LambdaContext(self.logical_id, self.memory, self.timeout)
            buffer = io.StringIO() if capture else None
            function_token, capture_token = CURRENT.set(self), _CAPTURE.set(buffer)
            try:
                return handler(event, context), buffer.getvalue() if buffer is not None else ""
            except BaseException:
                if buffer is not None:  # what a failed invocation logged is shown, not lost
                    print(buffer.getvalue(), end="", file=sys.__stdout__, flush=True)
                raise
            finally:
                CURRENT.reset(function_token)
                _CAPTURE.reset(capture_token)


@contextlib.contextmanager
def local_functions() -> Iterator[Callable[[str], LocalFunction]]:
    """moto and the sandbox provisioned from the template; yields a maker of the template's functions.
    The caller sets LOCAL_AWS_ENVIRONMENT."""
    from moto import mock_aws

    from tweakwise.settings import ClientSettings
    from tweakwise_local.credentials import local_tweakwise
    from tweakwise_local.provision import provision
    from tweakwise_local.template import load_template, variable_target

    with mock_aws():
        template = load_template()
        resolver = Resolver(template)
        tweakwise = local_tweakwise(demo=True)
        secret = variable_target(template, ClientSettings.variable("secret_id"), resolver)
        provision(template, resolver, {secret: tweakwise.credentials})
        extra = {ClientSettings.variable("api_url"): tweakwise.url, "POWERTOOLS_LOG_LEVEL": "DEBUG"}
        yield lambda logical: LocalFunction(template, logical, resolver, extra)
        tweakwise.stop()
