"""An in-memory stand-in for the Tweakwise backend API, for running the bundle locally and in tests.

- Checks both TWN-* headers on every request (401 otherwise; the task trigger, like the real one, needs none).
- Validates request bodies against Tweakwise's own OpenAPI file (docs/tweakwise-backend-openapi-2022.yaml,
  `/product` read as `/item`), strictly: a field the file does not know is a 400, as is a wrong type.
- Keeps items and categories; answers stats, attributes, task triggers and status (a triggered task is
  "Running", then "Finished"; `fail_tasks` makes it "Failed").
- Injects faults on demand: 429 with Retry-After, 5xx, latency (`Faults`, or the SANDBOX_FAULTS variable).
HTTP/1.1 with keep-alive, on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

SPEC_FILE = Path(__file__).resolve().parent.parent / "docs" / "tweakwise-backend-openapi-2022.yaml"
# Fields sent by Tweakwise's own integrations that the 2022 file predates (API-NOTES: item Type from the
# Shopware plugin, category Url and Status from the Backend API guide).
DOCUMENTED_EXTRAS = {
    "ProductApiModel": {"Type"},
    "ProductDeltaApiModel": {"Type"},
    "CategoryApiModel": {"Url", "Status"},
    "CategoryDeltaApiModel": {"Url", "Status"},
}

SANDBOX_INSTANCE_KEY = "sandbox-instance"
SANDBOX_ACCESS_TOKEN = "sandbox-token"  # noqa: S105 - a local stand-in's fixed credential
SANDBOX_TASKS = {
    "import": "00000000-0000-4000-8000-00000000001a",
    "publish": "00000000-0000-4000-8000-00000000002b",
}


class _Server(ThreadingHTTPServer):
    # Tweakwise takes as many connections as its clients open at once (a snapshot's Map opens 80);
    # socketserver's backlog of 5 refused some of them.
    request_queue_size = 256


@dataclass
class Faults:
    """What share of requests fail, and how: `rate_limit` answers 429 with Retry-After, `server_error` 503."""

    rate_limit: float = 0.0
    server_error: float = 0.0
    latency: float = 0.0  # seconds added to every answer
    retry_after: int = 1
    # With a seed, each request's fault is drawn from the seed and the request itself (method, path, body,
    # and how often that same request came before): the same seed gives every request the same fate
    # whatever order concurrent callers send them in. Without one, faults are drawn at random.
    seed: int | None = None

    def __str__(self) -> str:
        parts = [
            f"429={self.rate_limit:g}" if self.rate_limit else "",
            f"5xx={self.server_error:g}" if self.server_error else "",
            f"latency={self.latency:g}" if self.latency else "",
        ]
        text = ",".join(p for p in parts if p)
        text = f"{text},retry-after={self.retry_after}" if self.rate_limit else (text or "none")
        return text if self.seed is None else f"{text},seed={self.seed}"

    @classmethod
    def parse(cls, text: str) -> Faults:
        """From "429=0.2,5xx=0.1,latency=0.2,retry-after=2,seed=7" (the SANDBOX_FAULTS variable)."""
        faults = cls()
        names = {
            "429": "rate_limit",
            "5xx": "server_error",
            "latency": "latency",
            "retry-after": "retry_after",
            "seed": "seed",
        }
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, raw = part.partition("=")
            name = name.strip()
            if name not in names:
                raise ValueError(f"unknown fault {name!r} in {text!r}; use {', '.join(names)} (e.g. 429=0.2)")
            field = names[name]
            whole = field in ("retry_after", "seed")
            try:
                value = int(raw) if whole else float(raw)
            except ValueError:
                wanted = "a whole number" if whole else "a number"
                raise ValueError(f"fault {name} must be {wanted}, got {raw.strip()!r}") from None
            if field in ("rate_limit", "server_error") and not 0 <= value <= 1:
                raise ValueError(f"fault {name} is a probability from 0 to 1, got {raw.strip()!r}")
            if field in ("latency", "retry_after") and value < 0:
                raise ValueError(f"fault {name} must not be negative, got {raw.strip()!r}")
            setattr(faults, field, value)
        if faults.rate_limit + faults.server_error > 1:
            raise ValueError(f"faults 429 and 5xx add up to more than 1 in {text!r}")
        return faults


class RequestValidator:
    """Request bodies checked against Tweakwise's OpenAPI file, with /product read as /item."""

    def __init__(self, spec_file: Path = SPEC_FILE):
        from openapi_schema_validator import OAS30Validator

        self.spec = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
        self.schemas = self.spec["components"]["schemas"]
        self.routes: list[tuple[str, re.Pattern[str], str]] = []
        for path, operations in self.spec["paths"].items():
            item_path = path.replace("/product", "/item").replace("{articleNumber}", "{itemId}")
            pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", item_path) + "$")
            for method, operation in operations.items():
                body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
                ref = body.get("schema", {}).get("$ref", "")
                if ref:
                    self.routes.append((method.upper(), pattern, ref.rsplit("/", 1)[1]))
        self._validator = OAS30Validator

    def schema_name(self, method: str, path: str) -> str | None:
        for route_method, pattern, name in self.routes:
            if route_method == method and pattern.match(path):
                return name
        return None

    def _strict(self, schema: Any, name: str | None = None) -> Any:
        if isinstance(schema, dict):
            if "$ref" in schema:
                ref = schema["$ref"].rsplit("/", 1)[1]
                return self._strict(self.schemas[ref], ref)
            out = {k: self._strict(v) for k, v in schema.items() if k != "example"}
            if schema.get("type") == "object" and "properties" in schema:
                extras = DOCUMENTED_EXTRAS.get(name or "", set())
                out["properties"] = {**out["properties"], **{e: {} for e in extras}}
                out["additionalProperties"] = False
            return out
        if isinstance(schema, list):
            return [self._strict(v) for v in schema]
        return schema

    def errors(self, method: str, path: str, body: Any) -> list[str]:
        name = self.schema_name(method, path)
        if name is None:
            return []
        validator = self._validator(self._strict({"$ref": f"#/components/schemas/{name}"}))
        found = []
        for error in validator.iter_errors(body):
            where = "/".join(str(p) for p in error.path) or "(body)"
            found.append(f"{where}: {error.message}")
        return sorted(found)


WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class Sandbox:
    def __init__(
        self,
        instance_key: str = SANDBOX_INSTANCE_KEY,
        access_token: str = SANDBOX_ACCESS_TOKEN,
        faults: Faults | None = None,
        validate: bool = True,
    ):
        self.instance_key = instance_key
        self.access_token = access_token
        self.items: dict[str, dict[str, Any]] = {}
        self.categories: dict[int, dict[str, Any]] = {}
        self.task_triggers: list[str] = []
        # What shoppers see: the items as the last publish found them (None: never published). Any task
        # but the import is taken as a publish, which copies the items at its trigger.
        self.published: dict[str, dict[str, Any]] | None = None
        self.requests: list[tuple[str, str, Any]] = []  # (method, path, body) as received
        self.answered: Counter[int] = Counter()  # status -> answers given
        self.latency = 0.0  # seconds to wait before every answer (benchmarks, timeouts)
        self.faults = faults or Faults()
        self._random = random.Random()  # noqa: S311 - fault injection, not security
        self._sent: Counter[str] = Counter()  # request identity -> times received (seeded faults)
        self.validator = RequestValidator() if validate else None
        self.task_polls: dict[str, int] = {}
        self.fail_tasks = False
        self.running_polls = 1  # status polls a triggered task answers "Running" before it ends
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    def secret(self) -> dict[str, Any]:
        """What the Tweakwise secret holds for this sandbox, tasks included."""
        return {
            "instance_key": self.instance_key,
            "access_token": self.access_token,
            "tasks": dict(SANDBOX_TASKS),
        }

    def writes(self) -> int:
        """Write requests received (POST, PATCH, PUT, DELETE): what a sync costs Tweakwise."""
        with self.lock:
            return sum(1 for method, _path, _body in self.requests if method in WRITE_METHODS)

    # -- routing -------------------------------------------------------------------------------------

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any, dict]:
        """(status, JSON payload, extra headers) for one request."""
        delay = self.latency + self.faults.latency
        if delay:
            time.sleep(delay)
        with self.lock:
            self.requests.append((method, path, body))
        roll = self._roll(method, path, body)
        if roll < self.faults.rate_limit:
            answer = 429, {"Message": "Too many requests"}, {"Retry-After": str(self.faults.retry_after)}
        elif roll < self.faults.rate_limit + self.faults.server_error:
            answer = 503, {"Message": "Service unavailable (injected)"}, {}
        else:
            answer = (*self._answer(method, path, headers, body), {})
        with self.lock:
            self.answered[answer[0]] += 1
        return answer

    def _roll(self, method: str, path: str, body: Any) -> float:
        """The draw that decides this request's fault (see Faults.seed)."""
        with self.lock:
            if self.faults.seed is None:
                return self._random.random()
            identity = f"{method} {path} {json.dumps(body, sort_keys=True)}"
            self._sent[identity] += 1
            draw = f"{self.faults.seed}|{identity}|{self._sent[identity]}"
        return random.Random(draw).random()  # noqa: S311 - fault injection, not security

    def _answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:2] == ["task", "trigger"] and len(parts) == 4:  # the spec lists no auth here
            return self._task(parts, trigger=True)
        if parts[0] == "products" and len(parts) == 3 and method == "GET":  # the shopper-facing API
            return self._shown(parts[1], parts[2])
        if headers.get("twn-instancekey") != self.instance_key or (
            headers.get("twn-authentication") != self.access_token
        ):
            return 401, {"Message": "Authorization has been denied for this request."}
        if self.validator and method in ("POST", "PUT", "PATCH"):
            problems = self.validator.errors(method, path, body)
            if problems:
                return 400, {"Message": "The request is invalid.", "Errors": [{"Error": p} for p in problems]}
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
        key, guid = parts[2], parts[3]
        if key != self.instance_key:
            return 404, {"Message": "Unknown instance"}
        if not re.fullmatch(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}", guid):
            return 400, {"Message": "The task key must be a GUID."}
        with self.lock:
            if trigger:
                self.task_triggers.append(guid)
                if guid != SANDBOX_TASKS["import"]:
                    self.published = {k: dict(v) for k, v in self.items.items()}
                self.task_polls[guid] = 0
                return 200, {}
            if guid not in self.task_polls:
                return 200, {"Status": "Idle"}
            self.task_polls[guid] += 1
            if self.task_polls[guid] <= self.running_polls:
                return 200, {"Status": "Running"}
            return 200, {"Status": "Failed" if self.fail_tasks else "Finished"}

    def _shown(self, instance_key: str, item_id: str) -> tuple[int, Any]:
        """The frontend's product, as Tweakwise's gateway names its fields (no stock: it shows none)."""
        with self.lock:
            if instance_key != self.instance_key or self.published is None:
                return 404, {"Message": "Instance key invalid, or never published"}
            item = self.published.get(item_id)
        if item is None:
            return 404, {"Message": "Not found"}
        names = {"title": "Name", "price": "Price", "brand": "Brand", "url": "Url", "image": "Image"}
        return 200, {"itemno": item_id, **{k: item[v] for k, v in names.items() if v in item}}

    # -- serving -------------------------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, as a real server's do

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                extra: dict[str, str] = {}
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    status, payload = 400, {"Message": "The request body is not valid JSON."}
                else:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    status, payload, extra = sandbox.answer(
                        self.command, urlsplit(self.path).path, headers, body
                    )
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
