"""The template's HTTP API routes, locally: a threaded HTTP server that turns each request into API
Gateway's payload 2.0 event, runs the route's function and answers with what it returned. Paths under
/_local/ are the runner's own (status, schedules fired on demand)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, cast
from urllib.parse import parse_qs, urlsplit

from tweakwise_local.functions import LocalFunction
from tweakwise_local.invocations import http_api_event

ADMIN_PREFIX = "/_local/"


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    path: str
    function: LocalFunction


def routes(functions: dict[str, LocalFunction]) -> list[Route]:
    found = []
    for function in functions.values():
        for event in function.events.values():
            if event["Type"] == "HttpApi":
                props = event.get("Properties", {})
                method = props.get("Method", "ANY").upper()
                pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", props["Path"]) + "$")
                found.append(Route(method, pattern, props["Path"], function))
    return found


class Admin:
    """What /_local/ answers: supplied by the runner."""

    def __init__(
        self,
        status: Callable[[], dict[str, Any]],
        fire: Callable[[str], Any],
        schedule_names: Callable[[], list[str]],
        *,
        snapshot: Callable[[str, bytes, bool, bool], dict[str, Any]] | None = None,
        events: Callable[[Any], dict[str, Any]] | None = None,
        outputs: Callable[[], dict[str, Any]] | None = None,
    ):
        self.status, self.fire, self.schedule_names = status, fire, schedule_names
        self.snapshot, self.events, self.outputs = snapshot, events, outputs


class ApiHandler(BaseHTTPRequestHandler):
    """One request: a route's function, the runner's /_local/ paths, or 404. `serve` sets the class
    attributes on a subclass of its own."""

    protocol_version = "HTTP/1.1"
    routes: ClassVar[list[Route]] = []
    admin: ClassVar[Admin]
    run: ClassVar[Callable[[LocalFunction, dict, str], Any]]
    say: ClassVar[Callable[[str, str], None]]

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {"Content-Type": "application/json"}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        if path.startswith(ADMIN_PREFIX):
            return self._admin(path, body)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():  # API Gateway v2: lower case, repeats joined
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        allowed = []
        for route in self.routes:
            if not route.pattern.match(path):
                continue
            allowed.append(route.method)
            if route.method in (self.command, "ANY"):
                host = f"127.0.0.1:{cast(ThreadingHTTPServer, self.server).server_port}"
                event = http_api_event(self.command, self.path, headers, body, route=route.path, host=host)
                result = type(self).run(route.function, event, "api")
                if result is None:
                    return self._reply(500, b'{"message":"Internal Server Error"}')
                return self._answer(route.function, result)
        if allowed:  # the path is routed, for other methods
            message = json.dumps({"message": f"Method Not Allowed; use {', '.join(allowed)}"}).encode()
            return self._reply(
                405, message, {"Content-Type": "application/json", "Allow": ", ".join(allowed)}
            )
        return self._reply(404, b'{"message":"Not Found"}')

    def _answer(self, function: LocalFunction, result: dict) -> None:
        raw = result.get("body") or ""
        data = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        status = int(result.get("statusCode", 200))
        path = urlsplit(self.path).path
        type(self).say("api", f"{self.command} {path} -> {function.logical_id} -> {status} {raw[:160]}")
        self._reply(status, data, result.get("headers") or {"Content-Type": "application/json"})

    def _admin(self, path: str, body: bytes) -> None:
        if path == f"{ADMIN_PREFIX}status" and self.command == "GET":
            return self._reply(200, json.dumps(self.admin.status()).encode())
        if path == f"{ADMIN_PREFIX}outputs" and self.command == "GET" and self.admin.outputs:
            return self._reply(200, json.dumps(self.admin.outputs()).encode())
        if path == f"{ADMIN_PREFIX}snapshots" and self.command == "POST" and self.admin.snapshot:
            query = parse_qs(urlsplit(self.path).query)
            name = query.get("name", ["catalog.jsonl"])[0]
            allow, dry = (
                query.get(flag, ["0"])[0] in ("1", "true") for flag in ("allowMassDelete", "dryRun")
            )
            answer = self.admin.snapshot(name, body, allow, dry)
            return self._reply(200, json.dumps(answer, default=str).encode())
        if path == f"{ADMIN_PREFIX}events" and self.command == "POST" and self.admin.events:
            return self._events(self.admin.events, body)
        name = path.removeprefix(f"{ADMIN_PREFIX}schedules/")
        if self.command == "POST" and name in self.admin.schedule_names():
            return self._reply(200, json.dumps(self.admin.fire(name), default=str).encode())
        known = ", ".join(f"{ADMIN_PREFIX}schedules/{n}" for n in self.admin.schedule_names())
        posts = ", ".join(f"POST {ADMIN_PREFIX}{name}" for name in ("snapshots", "events"))
        message = f"GET {ADMIN_PREFIX}status, GET {ADMIN_PREFIX}outputs, {posts} or POST {known}"
        return self._reply(404, json.dumps({"message": message}).encode())

    def _events(self, put: Callable[[Any], dict[str, Any]], body: bytes) -> None:
        """A PutEvents body, delivered to the template's rules (tweakwise_local.eventbridge)."""
        from tweakwise_local.eventbridge import EntryError

        try:
            answer = put(json.loads(body or b"null"))
        except (ValueError, EntryError) as exc:  # JSONDecodeError is a ValueError
            return self._reply(400, json.dumps({"message": str(exc)}).encode())
        return self._reply(200, json.dumps(answer, default=str).encode())

    def __getattr__(self, name: str) -> Any:
        # API Gateway answers any method (QUERY, TRACE...): an unrouted one is a 404, never a 501.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, *args: Any) -> None:
        pass


def serve(
    port: int,
    api_routes: list[Route],
    run: Callable[[LocalFunction, dict, str], Any],
    admin: Admin,
    say: Callable[[str, str], None],
) -> ThreadingHTTPServer:
    """A server ready to serve_forever; port 0 picks a free one."""
    attributes = {"routes": api_routes, "run": staticmethod(run), "admin": admin, "say": staticmethod(say)}
    server = ThreadingHTTPServer(("127.0.0.1", port), type("Handler", (ApiHandler,), attributes))
    server.daemon_threads = True
    return server
