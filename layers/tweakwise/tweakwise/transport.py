"""HTTP plumbing: one pooled requests.Session per container and urllib3 retries bounded by a deadline."""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader, MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from . import __version__

RETRY_STATUSES = frozenset(
    {
        HTTPStatus.TOO_MANY_REQUESTS,
        HTTPStatus.INTERNAL_SERVER_ERROR,
        HTTPStatus.BAD_GATEWAY,
        HTTPStatus.SERVICE_UNAVAILABLE,
        HTTPStatus.GATEWAY_TIMEOUT,
    }
)
# POST is left out on purpose: a create that timed out or got a 5xx may have been applied. urllib3 still
# retries it when the connection could not be made (nothing was sent), and DeadlineRetry on 429.
RETRY_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Statuses answered before anything was done: any request, a create included, can be sent again.
NOT_APPLIED_STATUSES = frozenset({HTTPStatus.TOO_MANY_REQUESTS})
USER_AGENT = f"tweakwise-serverless/{__version__} (+aws-lambda) python-requests/{requests.__version__}"


class Deadline:
    """The monotonic time by which every call must have ended (the Lambda deadline, less a margin)."""

    def __init__(self) -> None:
        self.at: float | None = None

    def remaining(self) -> float | None:
        return None if self.at is None else self.at - time.monotonic()


class DeadlineRetry(Retry):
    """urllib3 Retry that also stops when the next wait plus one full attempt would pass the deadline,
    or when the server asks for a longer wait than `max_wait` (Retry-After)."""

    def __init__(
        self,
        *args: Any,
        deadline: Deadline | None = None,
        attempt_seconds: float = 0.0,
        max_wait: float = 30.0,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.deadline = deadline
        self.attempt_seconds = attempt_seconds
        self.max_wait = max_wait

    def new(self, **kw: Any) -> DeadlineRetry:
        new = super().new(**kw)
        new.deadline, new.attempt_seconds, new.max_wait = self.deadline, self.attempt_seconds, self.max_wait
        return new

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if status_code in NOT_APPLIED_STATUSES and status_code in (self.status_forcelist or ()):
            return True
        return super().is_retry(method, status_code, has_retry_after)

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        wait = None
        if response is not None and self.respect_retry_after_header:
            try:
                wait = new.get_retry_after(response)
            except InvalidHeader:
                wait = None
        if not wait:
            wait = new.get_backoff_time()
        remaining = self.deadline.remaining() if self.deadline else None
        if wait > self.max_wait or (remaining is not None and remaining - wait < self.attempt_seconds):
            reason = error or ResponseError(f"no time left to retry after {wait:.1f} s")
            raise MaxRetryError(_pool, url, reason) from reason
        return new


def build_session(retry: Retry, pool_size: int = 10, proxy_url: str = "") -> requests.Session:
    """`pool_size` connections kept per host: as many as the threads that call at once (more are
    opened and thrown away). The environment is not read on every request (requests' proxy and netrc
    lookups cost about 30 % of a request's CPU): a proxy is used only when `proxy_url` names one."""
    session = requests.Session()
    session.trust_env = False
    if proxy_url:
        session.proxies = {"http": proxy_url, "https": proxy_url}
    adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    return session
