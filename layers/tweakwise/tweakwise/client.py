"""Tweakwise backend API client: credentials on every request, typed errors, endpoint methods."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from urllib3.exceptions import ReadTimeoutError

from .credentials import Credentials, SecretCredentials
from .errors import (
    ConnectionFailedError,
    NotFoundError,
    PathParameterError,
    RejectedError,
    RequestTimeoutError,
    UnexpectedResponseError,
)
from .responses import REFUSED, error_of, parse_count
from .settings import DEFAULT_API_URL, ClientSettings
from .transport import RETRY_METHODS, RETRY_STATUSES, Deadline, DeadlineRetry, build_session

logger = logging.getLogger("tweakwise")

# Time kept back from the Lambda deadline so the handler can still log, flush metrics and answer.
DEADLINE_MARGIN = 1.0
# Path parameters that are secrets: error messages and logs show their names, not their values.
SECRET_PATH_PARAMS = frozenset({"instance_key", "task_guid"})


def render_path(template: str, **params: Any) -> tuple[str, str]:
    """Fill a path template with URL-encoded values; return (path, path safe to log).

    Every value becomes exactly one segment ("/" is encoded). "." and ".." cannot: HTTP clients and
    servers collapse them into another path (/item/.. is /), so they are refused."""
    for name, value in params.items():
        if str(value) in (".", "..", ""):
            raise PathParameterError(f"{name} {str(value)!r} cannot be sent as a path segment of {template}")
    path = template.format(**{k: quote(str(v), safe="") for k, v in params.items()})
    shown = template.format(
        **{
            k: ("{" + k + "}" if k in SECRET_PATH_PARAMS else quote(str(v), safe=""))
            for k, v in params.items()
        }
    )
    return path, shown


class TweakwiseClient:
    """One per container: holds the pooled session and the credentials cache. Thread-safe."""

    def __init__(
        self,
        credentials: SecretCredentials,
        base_url: str = DEFAULT_API_URL,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 20.0,
        max_retries: int = 3,
        backoff_factor: float = 0.5,
        backoff_jitter: float = 0.25,
        max_retry_after: float = 30.0,
        tracer: Any = None,
        pool_size: int = 10,
        proxy_url: str = "",
    ):
        self.credentials = credentials
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.deadline = Deadline()
        self.tracer = tracer  # Powertools Tracer: one subsegment per call, showing only the safe path
        retry = DeadlineRetry(
            total=max_retries,
            connect=max_retries,
            read=max_retries,
            status=max_retries,
            other=0,
            redirect=0,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=RETRY_METHODS,
            backoff_factor=backoff_factor,
            backoff_jitter=backoff_jitter,
            backoff_max=10.0,
            respect_retry_after_header=True,
            raise_on_status=False,
            raise_on_redirect=False,
            deadline=self.deadline,
            attempt_seconds=connect_timeout + read_timeout,
            max_wait=max_retry_after,
        )
        self.session = build_session(retry, pool_size, proxy_url)

    @classmethod
    def from_settings(
        cls, settings: ClientSettings, tracer: Any = None, pool_size: int = 10
    ) -> TweakwiseClient:
        """Reads no secret and makes no call. `pool_size`: the threads that call Tweakwise at once."""
        return cls(
            SecretCredentials(settings.secret_id, settings.secret_max_age),
            settings.api_url,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            max_retries=settings.max_retries,
            tracer=tracer,
            pool_size=pool_size,
            proxy_url=settings.proxy_url,
        )

    @classmethod
    def from_env(cls, tracer: Any = None, pool_size: int = 10) -> TweakwiseClient:
        """Build from the environment (ClientSettings). Reads no secret and makes no call."""
        return cls.from_settings(ClientSettings.from_env(), tracer, pool_size)

    def set_deadline(self, context: Any) -> None:
        """Bound every call of this invocation by the Lambda context's remaining time."""
        remaining_ms = context.get_remaining_time_in_millis() if context is not None else None
        if remaining_ms is None:
            self.deadline.at = None
        else:
            self.deadline.at = time.monotonic() + remaining_ms / 1000.0 - DEADLINE_MARGIN

    # -- the one request path -------------------------------------------------------------------

    def request(
        self,
        method: str,
        template: str,
        *,
        body: Any = None,
        query: dict[str, Any] | None = None,
        **params: Any,
    ) -> Any:
        path, shown = render_path(template, **params)
        creds = self.credentials.get()
        response = self._send(method, path, shown, creds, body=body, query=query)
        if response.status_code in REFUSED:
            # The token may have been rotated: re-read the secret once and try again.
            logger.warning(
                "Tweakwise %s %s answered %s; re-reading secret %s and retrying once",
                method,
                shown,
                response.status_code,
                self.credentials.secret_id,
            )
            creds = self.credentials.get(force=True)
            response = self._send(method, path, shown, creds, body=body, query=query)
        return self._result(method, shown, response)

    def _timeout(self, method: str, shown: str) -> tuple[float, float]:
        remaining = self.deadline.remaining()
        if remaining is None:
            return (self.connect_timeout, self.read_timeout)
        if remaining <= 0.05:
            raise RequestTimeoutError(method, shown, None, "no time left before the function's deadline")
        return (min(self.connect_timeout, remaining), min(self.read_timeout, remaining))

    def _subsegment(self) -> Any:
        if self.tracer is None or self.tracer.disabled:
            return contextlib.nullcontext(None)
        return self.tracer.provider.in_subsegment(name=urlsplit(self.base_url).netloc, namespace="remote")

    def _send(self, method, path, shown, creds: Credentials, *, body, query) -> requests.Response:
        with self._subsegment() as subsegment:
            if subsegment is not None:
                subsegment.put_http_meta("method", method)
                subsegment.put_http_meta("url", self.base_url + shown)
            response = self._send_untraced(method, path, shown, creds, body=body, query=query)
            if subsegment is not None:
                subsegment.put_http_meta("status", response.status_code)
            return response

    def _send_untraced(self, method, path, shown, creds: Credentials, *, body, query) -> requests.Response:
        started = time.perf_counter()
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                headers=creds.headers(),
                json=body,
                params=query,
                timeout=self._timeout(method, shown),
                allow_redirects=False,
            )
        except requests.Timeout:
            raise RequestTimeoutError(method, shown, None, "timed out") from None
        except requests.ConnectionError as exc:
            reason = getattr(exc.args[0] if exc.args else None, "reason", None)
            if isinstance(reason, ReadTimeoutError):
                raise RequestTimeoutError(method, shown, None, "timed out") from None
            raise ConnectionFailedError(method, shown, None, type(reason or exc).__name__) from None
        except requests.RequestException as exc:
            raise ConnectionFailedError(method, shown, None, type(exc).__name__) from None
        logger.debug(
            "Tweakwise %s %s -> %s in %.0f ms",
            method,
            shown,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    def _result(self, method: str, shown: str, response: requests.Response) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                return response.text
        raise error_of(method, shown, response)

    # -- stats --------------------------------------------------------------------------------------

    def total_products(self) -> int:
        return self._count("/stats/totalproducts")

    def total_categories(self) -> int:
        return self._count("/stats/totalcategories")

    def _count(self, template: str) -> int:
        payload = self.request("GET", template)
        try:
            return parse_count(payload)
        except ValueError as exc:
            raise UnexpectedResponseError("GET", template, 200, str(exc)) from None

    # -- items ----------------------------------------------------------------------------------------

    def create_item(self, item: dict[str, Any]) -> Any:
        return self.request("POST", "/item", body=item)

    def get_item(self, item_id: str) -> Any:
        return self.request("GET", "/item/{item_id}", item_id=item_id)

    def patch_item(self, item_id: str, changes: dict[str, Any]) -> Any:
        return self.request("PATCH", "/item/{item_id}", body=changes, item_id=item_id)

    def delete_item(self, item_id: str) -> Any:
        return self.request("DELETE", "/item/{item_id}", item_id=item_id)

    def create_or_patch_item(self, item_id: str, fields: dict[str, Any]) -> str:
        """POST a new item: one request. Tweakwise refuses a POST of an item it has (400; undocumented,
        API-NOTES, open questions): then PATCH it once. Returns "created" or "updated"."""
        try:
            self.create_item({"ArticleNumber": item_id, **fields})
        except RejectedError as refused:
            try:
                self.patch_item(item_id, fields)
            except NotFoundError:
                raise refused from None  # not there either: the refusal was about the body
            return "updated"
        return "created"

    def upsert_item(self, item_id: str, fields: dict[str, Any]) -> str:
        """PATCH the item; when it does not exist yet, POST it. Returns "updated" or "created"."""
        return _upsert(
            lambda: self.patch_item(item_id, fields),
            lambda: self.create_item({"ArticleNumber": item_id, **fields}),
        )

    # -- categories -----------------------------------------------------------------------------------

    def get_category_by_key(self, key: str) -> dict[str, Any]:
        return self.request("GET", "/category/getbykey/{key}", key=key)

    def list_categories(self) -> list[dict[str, Any]]:
        """Every category, in one answer (the 2022 spec pages nothing)."""
        payload = self.request("GET", "/category")
        if not isinstance(payload, list):
            raise UnexpectedResponseError("GET", "/category", 200, f"a {type(payload).__name__}, not a list")
        return [category for category in payload if isinstance(category, dict)]

    def create_category(self, category: dict[str, Any]) -> Any:
        return self.request("POST", "/category", body=category)

    def patch_category(self, category_id: int, changes: dict[str, Any]) -> Any:
        return self.request("PATCH", "/category/{category_id}", body=changes, category_id=category_id)

    def delete_category(self, category_id: int) -> Any:
        return self.request("DELETE", "/category/{category_id}", category_id=category_id)

    def upsert_category(self, category_id: int, fields: dict[str, Any]) -> str:
        """PATCH the category; when it does not exist yet, POST it. Returns "updated" or "created"."""
        return _upsert(
            lambda: self.patch_category(category_id, fields),
            lambda: self.create_category({"CategoryId": category_id, **fields}),
        )

    # -- tasks -----------------------------------------------------------------------

    def trigger_task(self, task_guid: str) -> Any:
        instance_key = self.credentials.get().instance_key
        return self.request(
            "GET", "/task/trigger/{instance_key}/{task_guid}", instance_key=instance_key, task_guid=task_guid
        )

    def task_status(self, task_guid: str) -> Any:
        instance_key = self.credentials.get().instance_key
        return self.request(
            "GET", "/task/status/{instance_key}/{task_guid}", instance_key=instance_key, task_guid=task_guid
        )


def _upsert(patch: Any, create: Any) -> str:
    # PATCH first: it is idempotent and retried; POST (not retried) only when Tweakwise says 404.
    try:
        patch()
    except NotFoundError:
        try:
            create()
        except RejectedError as refused:
            # Another writer (a snapshot batch, the same event delivered twice) may have created it
            # between our PATCH and POST: PATCH again. Still not there: the refusal was about our body.
            try:
                patch()
            except NotFoundError:
                raise refused from None
            return "updated"
        return "created"
    return "updated"
