"""calsync.live.HttpPublisher in AWS: no API key, the publish is signed with SigV4 for ``appsync``
with the credentials of the function's boto3 session (docs/adr/0015, docs/adr/0022)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import boto3
import pytest

from calsync import live


@pytest.fixture
def endpoint() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            seen.append({"headers": dict(self.headers.items()), "body": json.loads(body)})
            answer = b'{"successful": [], "failed": []}'
            self.send_response(200)
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/event", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("default_session", [False, True], ids=["no-client-yet", "after-a-client"])
def test_a_publish_without_api_key_is_signed_for_appsync(
    endpoint: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch, default_session: bool
) -> None:
    url, seen = endpoint
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    if default_session:
        boto3.client("dynamodb")  # what the function did before: its write made the default session
    assert live.HttpPublisher(url, region="eu-west-1").publish("/calsync/users/alice", [{"v": 1}]) is True
    (request,) = seen
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/eu-west-1/appsync/aws4_request" in headers["authorization"]
    assert "x-api-key" not in headers
    assert request["body"] == {"channel": "/calsync/users/alice", "events": ['{"v":1}']}
