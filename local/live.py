"""The local live channel: an emulation of AWS AppSync Events (docs/adr/0015) on 127.0.0.1, close
enough to the documented protocol that the same client code works against AWS:

- WebSocket ``/event/realtime`` with the subprotocols ``aws-appsync-event-ws`` and
  ``header-<base64url JSON {"host", "Authorization"}>``; ``connection_init`` → ``connection_ack``
  (``connectionTimeoutMs``), ``ka`` keep-alives, ``subscribe`` (``id``, ``channel``,
  ``authorization``) → ``subscribe_success`` / ``subscribe_error``, ``data`` (``id``, ``event``: a
  JSON string), ``unsubscribe`` → ``unsubscribe_success``
  (https://docs.aws.amazon.com/appsync/latest/eventapi/event-api-websocket-protocol.html);
- HTTP ``POST /event`` ``{"channel", "events": [JSON strings]}`` → ``{"successful", "failed"}``
  (https://docs.aws.amazon.com/appsync/latest/eventapi/publish-http.html).

Authorization as the deployed API's: the socket and each subscription carry the person's JWT
(checked like the HTTP API's authorizer, local/auth.py), the channel is checked against its claims
(``calsync.live.may_subscribe``: the onSubscribe handler's rule); publishing takes the backend's API
key (in AWS: IAM). Clients never publish. Delivery is to the subscribers connected at the time, as
AppSync Events does: nothing is kept for a client that is away (it refetches on reconnect).
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import WSMsgType, web

from calsync.live import may_subscribe

PROTOCOL = "aws-appsync-event-ws"
CONNECTION_TIMEOUT_MS = 300_000
Verify = Callable[[str], Mapping[str, Any]]  # a token -> its claims, or raises


def header_subprotocol(token: str, host: str) -> str:
    """The ``header-…`` subprotocol a client sends: its authorization, base64url without padding."""
    raw = json.dumps({"host": host, "Authorization": token}).encode()
    return "header-" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _header_claims(protocols: str, verify: Verify) -> Mapping[str, Any]:
    for item in (p.strip() for p in protocols.split(",")):
        if item.startswith("header-"):
            encoded = item.removeprefix("header-")
            header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
            return verify(str(header.get("Authorization", "")))
    raise PermissionError("no authorization header subprotocol")


def _locations(claims: Mapping[str, Any]) -> list[str]:
    value = claims.get("locations") or []
    return [str(v) for v in value] if isinstance(value, list) else str(value).strip("[]").split()


class LiveServer:
    """The emulation, in a thread of its own with its own event loop."""

    name = "live channel (AppSync Events emulation)"

    def __init__(self, host: str, port: int, verify: Verify, api_key: str, ka_seconds: float = 60.0) -> None:
        self.host, self.port = host, port
        self._verify, self.api_key, self._ka = verify, api_key, ka_seconds
        self._subscriptions: dict[str, tuple[web.WebSocketResponse, str]] = {}  # (ws, channel) by id
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="calsync-live", daemon=True)
        self.delivered = 0  # messages sent to subscribers (the cost model counts them)
        self.published = 0

    @property
    def publish_url(self) -> str:
        return f"http://{self.host}:{self.port}/event"

    @property
    def realtime_url(self) -> str:
        return f"ws://{self.host}:{self.port}/event/realtime"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/event", self._publish)
        app.router.add_get("/event/realtime", self._socket)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    # ---- publish (the backend) ------------------------------------------------------------------
    async def _publish(self, request: web.Request) -> web.Response:
        if request.headers.get("x-api-key") != self.api_key:
            return web.json_response({"errors": [{"errorType": "UnauthorizedException"}]}, status=401)
        body = await request.json()
        channel, events = str(body.get("channel", "")), body.get("events") or []
        successful = []
        for index, event in enumerate(events):
            self.published += 1
            for sub_id, (ws, pattern) in list(self._subscriptions.items()):
                if _matches(pattern, channel) and not ws.closed:
                    await ws.send_json({"type": "data", "id": sub_id, "event": event})
                    self.delivered += 1
            successful.append({"identifier": uuid.uuid4().hex, "index": index})
        return web.json_response({"successful": successful, "failed": []})

    # ---- the socket (clients) -------------------------------------------------------------------
    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=(PROTOCOL,), heartbeat=None)
        await ws.prepare(request)
        try:
            claims = _header_claims(request.headers.get("Sec-WebSocket-Protocol", ""), self._verify)
        except Exception as exc:  # an invalid or missing token: refused, as AppSync does
            await ws.send_json(
                {
                    "type": "connection_error",
                    "errors": [{"errorType": "UnauthorizedException", "message": str(exc)}],
                }
            )
            await ws.close()
            return ws
        keep_alive: asyncio.Task[None] | None = None
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                kind = frame.get("type")
                if kind == "connection_init":
                    await ws.send_json(
                        {"type": "connection_ack", "connectionTimeoutMs": CONNECTION_TIMEOUT_MS}
                    )
                    keep_alive = asyncio.ensure_future(self._keep_alive(ws))
                elif kind == "subscribe":
                    await self._subscribe(ws, frame, claims)
                elif kind == "unsubscribe":
                    self._subscriptions.pop(str(frame.get("id")), None)
                    await ws.send_json({"type": "unsubscribe_success", "id": frame.get("id")})
                elif kind == "publish":  # publishing is the backend's (IAM in AWS)
                    await ws.send_json(
                        {
                            "type": "publish_error",
                            "id": frame.get("id"),
                            "errors": [{"errorType": "UnauthorizedException"}],
                        }
                    )
                else:
                    await ws.send_json({"type": "error", "errors": [{"errorType": "UnsupportedOperation"}]})
        finally:
            if keep_alive is not None:
                keep_alive.cancel()
            for sub_id in [s for s, (w, _) in self._subscriptions.items() if w is ws]:
                self._subscriptions.pop(sub_id, None)
        return ws

    async def _subscribe(
        self, ws: web.WebSocketResponse, frame: Mapping[str, Any], claims: Mapping[str, Any]
    ) -> None:
        sub_id, channel = str(frame.get("id", "")), str(frame.get("channel", ""))
        try:
            token = (frame.get("authorization") or {}).get("Authorization")
            who = self._verify(str(token)) if token else claims
            allowed = may_subscribe(channel, str(who.get("sub", "")), _locations(who))
        except Exception:  # an invalid token on the subscription
            allowed = False
        if not sub_id or not allowed:
            await ws.send_json(
                {"type": "subscribe_error", "id": sub_id, "errors": [{"errorType": "UnauthorizedException"}]}
            )
            return
        self._subscriptions[sub_id] = (ws, channel)
        await ws.send_json({"type": "subscribe_success", "id": sub_id})

    async def _keep_alive(self, ws: web.WebSocketResponse) -> None:
        while not ws.closed:
            await asyncio.sleep(self._ka)
            if not ws.closed:
                await ws.send_json({"type": "ka"})


def _matches(pattern: str, channel: str) -> bool:
    """A subscription's channel: exact, or ending in ``/*`` for every channel one segment below."""
    if pattern.endswith("/*"):
        prefix = pattern[:-1]
        return channel.startswith(prefix) and "/" not in channel[len(prefix) :]
    return pattern == channel
