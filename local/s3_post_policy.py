"""S3's POST policy checks, in front of moto's server.

S3 checks a browser-based (presigned POST) upload against the policy it was signed with: the
signature, the expiration and every condition (exact matches, ``starts-with``, and
``content-length-range`` on the file's size); each form field must be covered by a condition. moto
(5.2) stores whatever is posted, so the local stack and the tests put this WSGI middleware in front
of moto's server: an upload that ignores its conditions is refused with the answers S3 gives
(403 AccessDenied "Invalid according to Policy", 400 EntityTooLarge / EntityTooSmall). Everything
else (other requests, and uploads that pass) goes to moto unchanged.

Reference: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.formparser import parse_form_data

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]
_EXEMPT = {"policy", "x-amz-signature", "file"}  # fields no condition needs to cover


class PolicyError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def check_upload(
    bucket: str,
    fields: Mapping[str, str],
    size: int,
    secrets: Mapping[str, str],
    now: datetime,
) -> None:
    """``PolicyError`` unless the upload is one its signed policy allows (S3's checks)."""
    lower = {k.lower(): v for k, v in fields.items()}
    raw_policy = lower.get("policy")
    if not raw_policy:
        raise PolicyError(403, "AccessDenied", "Bucket POST must contain a policy")
    credential = lower.get("x-amz-credential", "")
    parts = credential.split("/")
    if lower.get("x-amz-algorithm") != "AWS4-HMAC-SHA256" or len(parts) != 5:
        raise PolicyError(400, "InvalidArgument", "Bucket POST must be signed with AWS4-HMAC-SHA256")
    key_id, date, region, service, _ = parts
    secret = secrets.get(key_id)
    if secret is None:
        raise PolicyError(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist")
    expected = hmac.new(
        _signing_key(secret, date, region, service), raw_policy.encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, lower.get("x-amz-signature", "")):
        raise PolicyError(403, "SignatureDoesNotMatch", "The request signature we calculated does not match")
    try:
        policy = json.loads(base64.b64decode(raw_policy))
        expiration = datetime.fromisoformat(str(policy["expiration"]).replace("Z", "+00:00"))
        conditions = list(policy["conditions"])
    except (ValueError, KeyError, TypeError) as exc:
        raise PolicyError(400, "InvalidPolicyDocument", "Invalid Policy: malformed") from exc
    if expiration <= now:
        raise PolicyError(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    values = {**lower, "bucket": bucket}
    covered: set[str] = set()
    for condition in conditions:
        _check(condition, values, size, covered)
    for name in lower:
        if name not in _EXEMPT and not name.startswith("x-ignore-") and name not in covered:
            raise PolicyError(
                403,
                "AccessDenied",
                f"Invalid according to Policy: Extra input fields: {name}",
            )


def _failed(condition: Any) -> PolicyError:
    return PolicyError(
        403,
        "AccessDenied",
        f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}",
    )


def _check(condition: Any, values: Mapping[str, str], size: int, covered: set[str]) -> None:
    if isinstance(condition, dict):
        for name, want in condition.items():
            covered.add(name.lower())
            if values.get(name.lower()) != str(want):
                raise _failed(condition)
        return
    if not isinstance(condition, list) or len(condition) != 3:
        raise PolicyError(400, "InvalidPolicyDocument", "Invalid Policy: Invalid Condition")
    op = str(condition[0]).lower()
    if op == "content-length-range":
        low, high = int(condition[1]), int(condition[2])
        if size > high:
            raise PolicyError(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
        if size < low:
            raise PolicyError(
                400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size"
            )
        return
    name = str(condition[1]).lstrip("$").lower()
    covered.add(name)
    got = values.get(name)
    if got is None:
        raise _failed(condition)
    if (op == "eq" and got != str(condition[2])) or (
        op == "starts-with" and not got.startswith(str(condition[2]))
    ):
        raise _failed(condition)
    if op not in ("eq", "starts-with"):
        raise PolicyError(400, "InvalidPolicyDocument", "Invalid Policy: Invalid Condition")


def _bucket_of(environ: Mapping[str, Any]) -> str | None:
    """The bucket of a POST to a bucket: path style (/bucket) or virtual-hosted (bucket.s3….)."""
    segments = [s for s in str(environ.get("PATH_INFO", "")).split("/") if s]
    host = str(environ.get("HTTP_HOST", "")).rsplit(":", 1)[0]
    try:
        ipaddress.ip_address(host)
        is_ip = True
    except ValueError:
        is_ip = host == "localhost"
    if not is_ip and ".s3" in host:
        return host.split(".s3", 1)[0] if not segments else None
    return segments[0] if len(segments) == 1 else None


class PostPolicyMiddleware:
    """WSGI: checks multipart POST uploads to a bucket, then hands every request to ``app``."""

    def __init__(
        self,
        app: WsgiApp,
        secrets: Mapping[str, str],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._app = app
        self._secrets = dict(secrets)
        self._clock = clock

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or not str(environ.get("CONTENT_TYPE", "")).startswith(
            "multipart/form-data"
        ):
            return self._app(environ, start_response)
        bucket = _bucket_of(environ)
        if bucket is None:
            return self._app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        probe = {**environ, "wsgi.input": io.BytesIO(body)}
        _, form, files = parse_form_data(probe)
        file: FileStorage | None = files.get("file")
        size = len(file.read()) if file is not None else 0
        try:
            check_upload(bucket, _fields(form), size, self._secrets, self._clock())
        except PolicyError as exc:
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{escape(exc.code)}</Code><Message>{escape(exc.message)}</Message>"
                f"<BucketName>{escape(bucket)}</BucketName></Error>"
            ).encode()
            start_response(
                f"{exc.status} {'Forbidden' if exc.status == 403 else 'Bad Request'}",
                [("Content-Type", "application/xml"), ("Content-Length", str(len(xml)))],
            )
            return [xml]
        environ["wsgi.input"] = io.BytesIO(body)
        return self._app(environ, start_response)


def _fields(form: MultiDict[str, str]) -> dict[str, str]:
    return {k: form[k] for k in form}


def threaded_server(host: str, port: int, secrets: Mapping[str, str]) -> Any:
    """moto's ThreadedMotoServer, with the POST policy checks in front of it."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class _Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = PostPolicyMiddleware(DomainDispatcherApplication(create_backend_app), secrets)
            self._server = make_server(host, port, app, True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    return _Server(ip_address=host, port=port, verbose=False)
