"""A stand-in for a Qdrant 1.10.0 server's REST API: it judges every request by 1.10.0's own OpenAPI description.

No Qdrant server runs here, and the 1.0.1 addon deploys 1.10.0 while ApeRAG's lock has qdrant-client 1.13. This
stand-in listens on loopback, answers `GET /` with version 1.10.0 (what the client's compatibility check reads),
and validates each request against `data/qdrant-1.10.0-openapi-requests.json`: the request side of the real 1.10.0
`docs/redoc/master/openapi.json` (qdrant/qdrant, tag v1.10.0) for the paths the client uses. A request whose path,
query parameters or JSON body that API does not describe is answered `400 Format error`, as the server answers a
body it cannot deserialise. Valid requests get minimal well-formed answers: it stores nothing and searches nothing,
so it proves the requests' shape, never their effect.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import jsonschema
from referencing import Registry
from referencing.jsonschema import DRAFT7

SPEC_PATH = Path(__file__).with_name("data") / "qdrant-1.10.0-openapi-requests.json"
SPEC_URI = "urn:qdrant-1.10.0-openapi"
SERVER_VERSION = "1.10.0"


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0's `nullable` in JSON Schema terms (`{"nullable": true}` alone would accept anything)."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        elif not converted:
            converted = {"type": "null"}
        else:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


@dataclass(frozen=True)
class Judged:
    method: str
    path: str
    operation: str | None
    problem: str | None
    body: Any


@dataclass
class Api:
    spec: dict[str, Any] = field(default_factory=lambda: _json_schema(json.loads(SPEC_PATH.read_text())))

    def __post_init__(self) -> None:
        self.registry: Registry[Any] = Registry().with_resource(SPEC_URI, DRAFT7.create_resource(self.spec))
        self.routes = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"), template)
            for template in self.spec["paths"]
        ]

    def judge(self, method: str, target: str, body: Any) -> Judged:
        parts = urlsplit(target)
        template = next((t for pattern, t in self.routes if pattern.match(parts.path)), None)
        operation = self.spec["paths"].get(template, {}).get(method.lower()) if template else None
        if operation is None:
            return Judged(method, parts.path, None, f"{method} {parts.path} is not in the 1.10.0 API", body)
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        unknown = sorted(set(parse_qs(parts.query)) - declared)
        if unknown:
            return Judged(method, parts.path, operation["operationId"], f"query parameters {unknown} unknown", body)
        schema_ref = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        problem = None
        if schema_ref is not None:
            validator = jsonschema.Draft7Validator({"$ref": SPEC_URI + schema_ref["$ref"]}, registry=self.registry)
            error = jsonschema.exceptions.best_match(validator.iter_errors(body))
            if error is not None:
                problem = f"Format error in JSON body: {error.message}"
        return Judged(method, parts.path, operation["operationId"], problem, body)


UPDATE_RESULT = {"operation_id": 1, "status": "completed"}
ANSWERS: dict[str, Any] = {
    "get_collections": {"collections": []},
    "collection_exists": {"exists": False},
    "create_collection": True,
    "delete_collection": True,
    "create_field_index": UPDATE_RESULT,
    "upsert_points": UPDATE_RESULT,
    "delete_points": UPDATE_RESULT,
    "query_points": {"points": []},
    "count_points": {"count": 0},
    "get_points": [],
}


class Qdrant110(ThreadingHTTPServer):
    """`with Qdrant110() as server:` serves on 127.0.0.1:server.port; `server.requests` lists what it judged."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api = Api()
        self.requests: list[Judged] = []
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: Qdrant110

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        if urlsplit(self.path).path == "/":
            self._answer(200, {"title": "qdrant - vector search engine", "version": SERVER_VERSION})
            return
        judged = self.server.api.judge(self.command, self.path, body)
        self.server.requests.append(judged)
        if judged.problem is not None:
            self._answer(400, {"status": {"error": judged.problem}, "time": 0.0})
            return
        self._answer(200, {"result": ANSWERS.get(judged.operation or "", True), "status": "ok", "time": 0.0})

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _handle
