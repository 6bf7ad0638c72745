"""Typed errors. Messages name the resource (secret id, method and path, field) and never a secret value."""

from __future__ import annotations

from http import HTTPStatus

from .secrecy import scrub


class TweakwiseError(Exception):
    """Base of every error this package raises."""


class CredentialsError(TweakwiseError):
    """The Tweakwise secret could not be read, or does not hold usable credentials."""

    def __init__(self, message: str, *, secret_id: str | None = None):
        super().__init__(message)
        self.secret_id = secret_id


class ConfigurationError(TweakwiseError):
    """An environment variable or setting of this bundle is missing or invalid."""


class TaskConfigError(ConfigurationError):
    """A task named by the schedule or state machine has no valid GUID in the Tweakwise secret."""


class PathParameterError(TweakwiseError, ValueError):
    """A value that cannot address a resource in a URL path ("", "." or ".."); nothing was sent."""


class UnknownCategoryError(TweakwiseError):
    """A category key that Tweakwise does not know (yet): retried, as its upsert may still be on its way."""


class EntityBusyError(TweakwiseError):
    """Another writer holds the entity's lease (its request may still reach Tweakwise): this change is
    tried again later, so the two writes reach Tweakwise in the order they were claimed."""


class QueueError(TweakwiseError):
    """SQS did not take every message; the sender retries the same request (it is deduplicated)."""


class SnapshotBatchError(TweakwiseError):
    """Some items of a snapshot batch failed for a reason retrying may fix (Tweakwise 429/5xx, timeouts):
    the Distributed Map retries the batch; what it applied already is unchanged the next time."""


class SnapshotReadError(TweakwiseError):
    """A snapshot object that cannot be read to its end (a gzip stream cut short or corrupt)."""


class SnapshotInputError(TweakwiseError, ValueError):
    """A snapshot execution started with an input that names no snapshot object of the stack's bucket."""


class SignatureError(TweakwiseError):
    """A webhook request that is not proven authentic (401). The message says why, and holds no key."""


class MissingSignatureError(SignatureError):
    pass


class TimestampError(SignatureError):
    """The signature timestamp is not whole unix seconds, or too far from now (a replay)."""


class MalformedSignatureError(SignatureError):
    pass


class SignatureMismatchError(SignatureError):
    """Well formed, but made with none of the known keys: the secret may have been rotated."""


class BodyEncodingError(TweakwiseError, ValueError):
    """The request body is not what its transport says it is (invalid base64)."""


class SourcePayloadError(TweakwiseError, ValueError):
    """A platform's event (commercetools, Shopify) lacks a field its mapping needs, or maps to an event the
    catalog contract refuses: dead-lettered once, with the field named (retrying cannot fix it)."""


class ApiError(TweakwiseError):
    """A request to the Tweakwise API failed. `path` never holds the instance key or a task GUID, and
    `detail` (often Tweakwise's own text, which may echo the request) is scrubbed of every secret value."""

    hint = ""

    def __init__(self, method: str, path: str, status: int | None, detail: str = ""):
        self.method = method
        self.path = path
        self.status = _http_status(status)
        self.detail = detail = scrub(detail)
        where = f"{method} {path}" + (f" answered {status}" if status is not None else "")
        text = f"Tweakwise {where}"
        if detail:
            text += f": {detail}"
        if self.hint:
            text += f". {self.hint}"
        super().__init__(text)


class AuthenticationError(ApiError):
    hint = (
        "The instance key or access token was refused, also after re-reading the secret. "
        "Create a new token in the Tweakwise app (Security > Access Token) and put it in the secret"
    )


class NotFoundError(ApiError):
    pass


class RejectedError(ApiError):
    """Tweakwise rejected the request body (400). `errors` holds Tweakwise's own error strings."""

    def __init__(self, method: str, path: str, status: int, message: str, errors: list[str]):
        self.message = message = scrub(message)
        self.errors = errors = [scrub(e) for e in errors]
        detail = "; ".join([m for m in [message, *errors] if m]) or "bad request"
        super().__init__(method, path, status, detail)


class RateLimitedError(ApiError):
    hint = "Retries ran out or the wait would pass the function's deadline; try again later"

    def __init__(self, method: str, path: str, status: int, retry_after: float | None):
        self.retry_after = retry_after
        detail = f"retry after {retry_after:g} s" if retry_after is not None else ""
        super().__init__(method, path, status, detail)


class ServerError(ApiError):
    hint = "Tweakwise had a server error and retries ran out; try again later"


class RequestTimeoutError(ApiError):
    hint = "No answer in time; check TWEAKWISE_API_URL and the Tweakwise status page"


class ConnectionFailedError(ApiError):
    hint = "Could not connect; check TWEAKWISE_API_URL and the function's network access"


class UnexpectedResponseError(ApiError):
    """Any other status, or a success body this package cannot read."""


def _http_status(status: int | None) -> HTTPStatus | int | None:
    """An HTTPStatus where the code has one; Tweakwise may answer any other number."""
    if status is None:
        return None
    try:
        return HTTPStatus(status)
    except ValueError:
        return status
