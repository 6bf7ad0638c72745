"""The handlers' Powertools Logger and Tracer, set up one way for every function."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from .secrecy import TRACER_PATCH_MODULES


def logger_and_tracer() -> tuple[Logger, Tracer]:
    """A Logger that the package's "tweakwise" logger writes through (same JSON, same Lambda context),
    and a Tracer that patches botocore only (see secrecy.TRACER_PATCH_MODULES)."""
    logger = Logger()
    copy_config_to_registered_loggers(source_logger=logger, include={"tweakwise"})
    return logger, Tracer(patch_modules=TRACER_PATCH_MODULES)
