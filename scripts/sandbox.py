"""A small in-memory stand-in for the Tweakwise backend API, for running functions locally.

It checks both TWN-* headers (401 otherwise), keeps items and categories in memory, and answers the
stats, attribute and task endpoints this bundle uses. HTTP/1.1 with keep-alive, on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

SANDBOX_INSTANCE_KEY = "sandbox-instance"
SANDBOX_ACCESS_TOKEN = "sandbox-token"  # noqa: S105 - a local stand-in's fixed credential


class Sandbox:
    def __init__(self, instance_key: str = SANDBOX_INSTANCE_KEY, access_token: str = SANDBOX_ACCESS_TOKEN):
        self.instance_key = instance_key
        self.access_token = access_token
        self.items: dict[str, dict[str, Any]] = {}
        self.categories: dict[int, dict[str, Any]] = {}
        self.task_triggers: list[str] = []
        self.requests: list[tuple[str, str, Any]] = []  # (method, path, body) as received
        self.latency = 0.0  # seconds to wait before every answer (benchmarks, timeouts)
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- routing -------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        if self.latency:
            time.sleep(self.latency)
        with self.lock:
            self.requests.append((method, path, body))
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:2] == ["task", "trigger"] and len(parts) == 4:  # the spec lists no auth here
            return self._task(parts, trigger=True)
        if headers.get("twn-instancekey") != self.instance_key or (
            headers.get("twn-authentication") != self.access_token
        ):
            return 401, {"Message": "Authorization has been denied for this request."}
        with self.lock:
            return self._route(method, parts, body)

    def _route(self, method: str, parts: list[str], body: Any) -> tuple[int, Any]:  # noqa: PLR0911
        match (method, parts):
            case ("GET", ["stats", "totalproducts"]):
                return 200, len(self.items)
            case ("GET", ["stats", "totalcategories"]):
                return 200, len(self.categories)
            case ("GET", ["attribute"]):
                return 200, {"Records": []}
            case ("GET", ["item", item_id]):
                return (
                    (200, self.items[item_id]) if item_id in self.items else (404, {"Message": "Not found"})
                )
            case ("POST", ["item"]):
                item_id = str((body or {}).get("ArticleNumber") or (body or {}).get("articleNumber") or "")
                if not item_id:
                    return 400, {"Message": "The request is invalid.", "Errors": [{"Error": "ArticleNumber"}]}
                if item_id in self.items:
                    return 400, {"Message": "Item already exists", "Errors": []}
                self.items[item_id] = dict(body)
                return 200, {}
            case ("PATCH", ["item", item_id]):
                if item_id not in self.items:
                    return 404, {"Message": "Not found"}
                self.items[item_id].update(body or {})
                return 200, {}
            case ("DELETE", ["item", item_id]):
                return (
                    (204, None)
                    if self.items.pop(item_id, None) is not None
                    else (404, {"Message": "Not found"})
                )
            case ("GET", ["category", "getbykey", key]):
                found = [c for c in self.categories.values() if str(c.get("Key", c["CategoryId"])) == key]
                return (200, found[0]) if found else (404, {"Message": "Category not found"})
            case ("GET", ["category"]):
                return 200, list(self.categories.values())
            case ("POST" | "PUT", ["category"]):
                return self._save_category(body, create=method == "POST")
            case ("GET" | "PATCH" | "DELETE", ["category", raw]) if re.fullmatch(r"\d+", raw):
                return self._category(method, int(raw), body)
            case ("GET", ["task", "status", _key, _guid]):
                return self._task(parts, trigger=False)
        return 404, {"Message": f"No route for {method} /{'/'.join(parts)}"}

    def _save_category(self, body: Any, create: bool) -> tuple[int, Any]:
        body = dict(body or {})
        if "CategoryId" not in body and isinstance(body.get("Key"), str) and create:
            # Alphanumeric ids: Tweakwise assigns the numeric id (here from a range shops do not use).
            body["CategoryId"] = max([900000, *self.categories]) + 1
        category_id = body.get("CategoryId")
        if not isinstance(category_id, int):
            return 400, {
                "Message": "The request is invalid.",
                "Errors": [{"Error": "CategoryId is required"}],
            }
        if create and category_id in self.categories:
            return 400, {"Message": "Category already exists", "Errors": []}
        self.categories[category_id] = dict(body)
        return 200, {}

    def _category(self, method: str, category_id: int, body: Any) -> tuple[int, Any]:
        if category_id not in self.categories:
            return 404, {"Message": "Category not found"}
        if method == "GET":
            return 200, self.categories[category_id]
        if method == "PATCH":
            self.categories[category_id].update(body or {})
            return 200, {}
        del self.categories[category_id]
        return 200, {}

    def _task(self, parts: list[str], trigger: bool) -> tuple[int, Any]:
        if parts[2] != self.instance_key:
            return 404, {"Message": "Unknown instance"}
        if trigger:
            self.task_triggers.append(parts[3])
            return 200, {}
        return 200, {"Status": "Finished" if parts[3] in self.task_triggers else "Idle"}

    # -- serving -------------------------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, as a real server's do

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    status, payload = 400, {"Message": "The request body is not valid JSON."}
                else:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    status, payload = sandbox.handle(self.command, urlsplit(self.path).path, headers, body)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
