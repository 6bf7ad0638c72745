"""The handlers' Powertools Logger and Tracer, set up one way for every function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from .secrecy import TRACER_PATCH_MODULES
from .settings import ObservabilitySettings


class Untraced:
    """What a handler gets for a tracer when TRACE_CALLS is off: its decorator changes nothing and the
    X-Ray SDK is never imported. Lambda's active tracing still records every invocation."""

    disabled = True

    def capture_lambda_handler(self, lambda_handler: Callable | None = None, **_options: Any) -> Any:
        return lambda_handler if lambda_handler is not None else (lambda handler: handler)


def logger_and_tracer() -> tuple[Logger, Any]:
    """A Logger that the package's "tweakwise" logger writes through (same JSON, same Lambda context),
    and, with TRACE_CALLS, a Tracer that patches botocore only (see secrecy.TRACER_PATCH_MODULES)."""
    logger = Logger()
    copy_config_to_registered_loggers(source_logger=logger, include={"tweakwise"})
    if not ObservabilitySettings.from_env().trace_calls:
        return logger, Untraced()
    from aws_lambda_powertools import Tracer

    return logger, Tracer(patch_modules=TRACER_PATCH_MODULES)
