"""The local API Gateway: every HttpApi route of template.yaml, served by calling the route's
function with an HTTP API payload 2.0 event, behind the JWT authorizer's checks.

Besides the template's routes it serves ``/.well-known/jwks.json`` (the local signing key),
``/docs`` (Swagger UI, with the assets bundled in aws-lambda-powertools, for ``/v1/openapi.json``)
and ``/app/`` (the reference web page, local/web/: static files, on the API's own origin because the
deployed HTTP API has no CorsConfiguration, so no CORS header is added here either).
"""

from __future__ import annotations

import base64
import json
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.wrappers import Request, Response

from local.auth import InvalidToken, SigningKey, authorizer_context, bearer_token, verify
from local.template import HttpRoute

Invoke = Callable[[str, dict[str, Any]], Any]

_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/problem+json",
    "application/xml",
    "application/x-www-form-urlencoded",
    "application/javascript",
    "+json",
    "+xml",
)


@dataclass(frozen=True)
class _CompiledRoute:
    function: str
    route: HttpRoute
    pattern: re.Pattern[str] | None  # None for $default
    params: tuple[str, ...]
    literal_chars: int  # more literal text = more specific


def _compile(function: str, route: HttpRoute) -> _CompiledRoute:
    if route.path == "$default":
        return _CompiledRoute(function, route, None, (), -1)
    regex, params, literal = "", [], 0
    for part in re.split(r"(\{[^}]+\})", route.path):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            if name.endswith("+"):
                params.append(name[:-1])
                regex += f"(?P<{_group(name[:-1])}>.+)"
            else:
                params.append(name)
                regex += f"(?P<{_group(name)}>[^/]+)"
        else:
            regex += re.escape(part)
            literal += len(part)
    return _CompiledRoute(function, route, re.compile(f"^{regex}$"), tuple(params), literal)


def _group(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


def _json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, headers={"content-type": "application/json", **(headers or {})}
    )


def _is_text(content_type: str) -> bool:
    ct = content_type.lower()
    return not ct or any(t in ct for t in _TEXT_TYPES)


class LocalApi:
    def __init__(
        self,
        routes: Iterable[tuple[str, HttpRoute]],
        invoke: Invoke,
        key: SigningKey,
        issuer: str,
        audience: str | list[str],
        *,
        openapi_path: str = "/v1/openapi.json",
        clock: Callable[[], float] = time.time,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._routes = sorted(
            (_compile(fn, r) for fn, r in routes),
            key=lambda c: (
                c.pattern is None,
                c.route.path.endswith("+}"),
                -c.literal_chars,
                c.route.method == "ANY",
            ),
        )
        self._invoke = invoke
        self._key = key
        self._issuer = issuer
        self._audience = audience
        self._openapi_path = openapi_path
        self._clock = clock
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))

    # ---------------------------------------------------------------- WSGI
    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        started = time.monotonic()
        response = self.handle(request)
        ms = (time.monotonic() - started) * 1000
        self._log(
            f"api  {request.method} {request.full_path.rstrip('?')} -> {response.status_code} ({ms:.0f} ms)"
        )
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        path = request.path
        if request.method == "GET" and path == "/.well-known/jwks.json":
            return _json_response(200, self._key.jwks())
        if request.method == "GET" and path in ("/docs", "/docs/"):
            return Response(
                _swagger_html(self._openapi_path), status=200, content_type="text/html; charset=utf-8"
            )
        if request.method == "GET" and path.startswith("/docs/assets/"):
            return _swagger_asset(path.rsplit("/", 1)[1])
        if request.method == "GET" and (path == "/app" or path.startswith("/app/")):
            return _web_page(path)
        if request.method == "OPTIONS" and "access-control-request-method" in request.headers:
            return Response(status=204)
        match = self._match(request.method, path)
        if match is None:
            return _json_response(404, {"message": "Not Found"})
        compiled, path_params = match
        authorizer = None
        if compiled.route.auth:
            try:
                claims = verify(
                    bearer_token(request.headers.get("authorization")),
                    self._key,
                    issuer=self._issuer,
                    audience=self._audience,
                    now=self._clock(),
                )
            except InvalidToken as exc:
                self._log(f"api  401 {request.method} {path}: {exc}")
                return _json_response(
                    401, {"message": "Unauthorized"}, {"www-authenticate": 'Bearer error="invalid_token"'}
                )
            authorizer = authorizer_context(claims)
        event = self.event(request, compiled.route, path_params, authorizer)
        try:
            result = self._invoke(compiled.function, event)
        except Exception:  # the function failed: API Gateway answers 500 (the traceback was printed)
            return _json_response(500, {"message": "Internal Server Error"})
        return self._response(result)

    def _match(self, method: str, path: str) -> tuple[_CompiledRoute, dict[str, str]] | None:
        for compiled in self._routes:
            if compiled.route.method not in ("ANY", method):
                continue
            if compiled.pattern is None:
                return compiled, {}
            m = compiled.pattern.match(path)
            if m:
                return compiled, {name: m.group(_group(name)) for name in compiled.params}
        return None

    # ---------------------------------------------------------------- payload 2.0
    def event(
        self,
        request: Request,
        route: HttpRoute,
        path_params: Mapping[str, str],
        authorizer: dict[str, Any] | None,
    ) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            if key == "cookie":
                continue
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        raw_query = request.query_string.decode("latin-1")
        query: dict[str, str] = {}
        for k, v in parse_qsl(raw_query, keep_blank_values=True):
            query[k] = f"{query[k]},{v}" if k in query else v
        now = self._clock()
        source_ip = request.remote_addr or "127.0.0.1"
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": request.path,
            "rawQueryString": raw_query,
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "local",
                "domainName": request.host,
                "domainPrefix": request.host.split(".", 1)[0],
                "http": {
                    "method": request.method,
                    "path": request.path,
                    "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                    "sourceIp": source_ip,
                    "userAgent": request.headers.get("user-agent", ""),
                },
                "requestId": uuid.uuid4().hex[:16] + "=",
                "routeKey": route.route_key,
                "stage": "$default",
                "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now * 1000),
            },
            "isBase64Encoded": False,
        }
        cookies = request.headers.get("cookie")
        if cookies:
            event["cookies"] = [c.strip() for c in cookies.split(";") if c.strip()]
        if query:
            event["queryStringParameters"] = query
        if path_params:
            event["pathParameters"] = dict(path_params)
        if authorizer is not None:
            event["requestContext"]["authorizer"] = authorizer
        body = request.get_data()
        if body:
            if _is_text(request.headers.get("content-type", "")):
                try:
                    event["body"] = body.decode("utf-8")
                except UnicodeDecodeError:
                    event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
            else:
                event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        return event

    @staticmethod
    def _response(result: Any) -> Response:
        """Lambda's answer to HTTP, as API Gateway's payload 2.0 integration reads it."""
        if not (isinstance(result, dict) and "statusCode" in result):
            # no statusCode: API Gateway treats the whole result as a JSON body with status 200
            return _json_response(200, result)
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
        response = Response(raw, status=int(result["statusCode"]))
        response.headers.pop("content-type", None)
        for name, value in (result.get("headers") or {}).items():
            response.headers[name] = str(value)
        for name, values in (result.get("multiValueHeaders") or {}).items():
            for value in values:
                response.headers.add(name, str(value))
        for cookie in result.get("cookies") or []:
            response.headers.add("set-cookie", cookie)
        if "content-type" not in response.headers:
            response.headers["content-type"] = "application/json"
        return response


# ---------------------------------------------------------------------------- the web page

WEB_DIR = Path(__file__).resolve().parent / "web"
_WEB_FILES = {
    "": ("index.html", "text/html; charset=utf-8"),
    "index.html": ("index.html", "text/html; charset=utf-8"),
    "app.js": ("app.js", "text/javascript"),
}
# the page talks to this origin (the API) and to the live channel's socket, nothing else
_WEB_CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; img-src 'self'"


def _web_page(path: str) -> Response:
    if path == "/app":  # relative URLs of the page (app.js) need the trailing slash
        return Response(status=308, headers={"location": "/app/"})
    name = path.removeprefix("/app/")
    if name not in _WEB_FILES:
        return _json_response(404, {"message": "Not Found"})
    file, content_type = _WEB_FILES[name]
    return Response(
        (WEB_DIR / file).read_bytes(),
        status=200,
        content_type=content_type,
        headers={"content-security-policy": _WEB_CSP, "cache-control": "no-cache"},
    )


# ---------------------------------------------------------------------------- Swagger UI


def _swagger_dir() -> Path:
    import aws_lambda_powertools.event_handler as eh

    return Path(eh.__file__).parent / "openapi" / "swagger_ui"


def _swagger_html(openapi_path: str) -> str:
    return f"""<!DOCTYPE html>
<html>
<head>
  <meta charset="UTF-8">
  <title>calsync API (local)</title>
  <link rel="stylesheet" type="text/css" href="/docs/assets/swagger-ui.min.css">
</head>
<body>
  <div id="swagger-ui">Loading…</div>
  <script src="/docs/assets/swagger-ui-bundle.min.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{openapi_path}",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
      requestInterceptor: function (req) {{
        var token = window.localStorage.getItem("calsyncToken");
        if (token && !req.headers.Authorization) {{ req.headers.Authorization = "Bearer " + token; }}
        return req;
      }},
    }});
  </script>
  <p style="font-family:sans-serif;margin:1em">
    Token: run <code>calsync-local token --user alice --location hq</code>, then in the browser console
    <code>localStorage.setItem("calsyncToken", "&lt;token&gt;")</code> (or use "Authorize" if the document
    declares a security scheme).
  </p>
</body>
</html>"""


def _swagger_asset(name: str) -> Response:
    types = {"swagger-ui-bundle.min.js": "application/javascript", "swagger-ui.min.css": "text/css"}
    if name not in types:
        return _json_response(404, {"message": "Not Found"})
    return Response((_swagger_dir() / name).read_bytes(), status=200, content_type=types[name])
