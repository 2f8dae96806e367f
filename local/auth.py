"""The local identity provider: an RS256 signing key under the state directory, tokens signed with
it, and the checks API Gateway's JWT authorizer makes (signature, kid, issuer, audience, exp, nbf).

The key is generated once and kept (``<state>/jwt/private.pem``), so tokens stay valid across
restarts of the stack. Its public half is served as a JWKS at ``/.well-known/jwks.json``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ALGORITHM = "RS256"


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    private_pem: bytes
    kid: str

    @classmethod
    def load_or_create(cls, state_dir: Path) -> SigningKey:
        path = state_dir / "jwt" / "private.pem"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(pem)
            os.chmod(tmp, 0o600)
            tmp.replace(path)
        return cls.from_pem(path.read_bytes())

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        numbers = key.public_key().public_numbers()
        # RFC 7638 thumbprint as the key id
        canonical = json.dumps(
            {"e": _b64(numbers.e), "kty": "RSA", "n": _b64(numbers.n)}, separators=(",", ":"), sort_keys=True
        )
        kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
        return cls(pem, kid)

    def jwks(self) -> dict[str, Any]:
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        numbers = key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": ALGORITHM,
                    "kid": self.kid,
                    "n": _b64(numbers.n),
                    "e": _b64(numbers.e),
                }
            ]
        }

    def public_pem(self) -> bytes:
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def issue(
        self,
        *,
        issuer: str,
        audience: str,
        user: str,
        locations: Sequence[str] = (),
        admin_of: Sequence[str] = (),
        expires_in: int = 3600,
        now: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "sub": user,
            "iat": issued,
            "nbf": issued,
            "exp": issued + expires_in,
            "locations": list(locations),
            "admin_of": list(admin_of),
            "scope": "calsync",
            **(extra or {}),
        }
        return jwt.encode(claims, self.private_pem, algorithm=ALGORITHM, headers={"kid": self.kid})


class InvalidToken(Exception):
    """The token is missing or does not pass the JWT authorizer's checks (401)."""


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization`` header; API Gateway accepts it with or without ``Bearer``."""
    if not authorization:
        raise InvalidToken("no Authorization header")
    value = authorization.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        value = rest.strip()
    if not value:
        raise InvalidToken("empty token")
    return value


def verify(
    token: str, key: SigningKey, *, issuer: str, audience: str | Sequence[str], now: float | None = None
) -> dict[str, Any]:
    """The token's claims, checked as API Gateway's JWT authorizer does; InvalidToken otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"malformed token: {exc}") from exc
    if header.get("alg") != ALGORITHM or header.get("kid") != key.kid:
        raise InvalidToken("unknown signing key")
    # pyjwt checks exp/nbf against its own clock; callers that freeze the clock pass ``now``
    frozen = now is not None
    options: dict[str, Any] = {
        "require": ["exp", "iss"],
        "verify_iat": False,
        "verify_exp": not frozen,
        "verify_nbf": not frozen,
    }
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.public_pem(),
            algorithms=[ALGORITHM],
            audience=audience if isinstance(audience, str) else list(audience),
            issuer=issuer,
            options=options,
            leeway=0,
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if now is not None:
        if int(claims["exp"]) <= now:
            raise InvalidToken("token expired")
        if "nbf" in claims and int(claims["nbf"]) > now:
            raise InvalidToken("token not yet valid")
    return claims


def _claim_string(value: Any) -> str:
    """A claim as API Gateway hands it to the function: every value is a string; arrays "[a b]"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_claim_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_claim_string(v)}" for k, v in value.items()) + "]"
    return str(value)


def authorizer_context(claims: Mapping[str, Any]) -> dict[str, Any]:
    """``requestContext.authorizer`` of a payload 2.0 event for these verified claims."""
    scope = claims.get("scope") or claims.get("scp")
    scopes: list[str] | None
    if isinstance(scope, str):
        scopes = scope.split()
    elif isinstance(scope, list):
        scopes = [str(s) for s in scope]
    else:
        scopes = None
    return {"jwt": {"claims": {k: _claim_string(v) for k, v in claims.items()}, "scopes": scopes}}
