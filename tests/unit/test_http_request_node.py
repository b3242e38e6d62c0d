"""HTTPRequestNode against a real local HTTP server (127.0.0.1, a port the test picks)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nexus_ray.workflow import WorkflowBuilder

from .helpers import run


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/text"):
            self._send(200, b"plain", "text/plain")
        else:
            self._send(
                200, json.dumps({"path": self.path, "auth": self.headers.get("x-token")}).encode(), "application/json"
            )

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self._send(201, json.dumps({"echo": body}).encode(), "application/json")

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def http_workflow() -> object:
    return WorkflowBuilder().add_node("HTTPRequestNode", "call").build()


def test_get_json_with_params_and_headers(server: str) -> None:
    out = run(http_workflow(), {"url": f"{server}/items", "params": {"q": "a"}, "headers": {"x-token": "t"}})
    result = out.outputs["call"]
    assert result["status"] == 200
    assert result["body"] == {"path": "/items?q=a", "auth": "t"}
    assert result["headers"]["content-type"] == "application/json"


def test_post_json_data(server: str) -> None:
    out = run(http_workflow(), {"url": server, "method": "post", "json_data": {"n": 1}})
    assert out.outputs["call"]["status"] == 201
    assert out.outputs["call"]["body"] == {"echo": {"n": 1}}


def test_text_body(server: str) -> None:
    out = run(http_workflow(), {"url": f"{server}/text"})
    assert out.outputs["call"]["body"] == "plain"


def test_connection_refused_after_retries_fails_the_node() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = run(http_workflow(), {"url": f"http://127.0.0.1:{port}/", "retries": 2, "timeout": 1})
    assert out.status == "failed"
    assert out.error["node"] == "call" and out.error["type"] == "ConnectError"


def test_unsupported_method() -> None:
    out = run(http_workflow(), {"url": "http://127.0.0.1:1/", "method": "BREW"})
    assert out.error["type"] == "ValueError" and "BREW" in out.error["message"]
