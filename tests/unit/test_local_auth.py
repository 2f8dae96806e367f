"""The local JWT authorizer (local/auth.py) checks what API Gateway's JWT authorizer checks:
signature and key id, issuer, audience, exp and nbf; claims reach the function as strings."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from local.auth import InvalidToken, SigningKey, authorizer_context, bearer_token, verify

ISS, AUD, NOW = "https://idp.calsync.local/", "calsync-local", 1_800_000_000.0


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    return SigningKey.load_or_create(tmp_path_factory.mktemp("state"))


def _token(key: SigningKey, **kw: object) -> str:
    args: dict[str, object] = {
        "issuer": ISS,
        "audience": AUD,
        "user": "alice",
        "locations": ["hq"],
        "now": NOW,
    }
    args.update(kw)
    return key.issue(**args)  # type: ignore[arg-type]


def test_key_is_kept_and_published(key: SigningKey, tmp_path: Path) -> None:
    again = SigningKey.load_or_create(tmp_path)
    assert SigningKey.load_or_create(tmp_path) == again  # generated once, then read
    jwk = key.jwks()["keys"][0]
    assert (jwk["kty"], jwk["alg"], jwk["kid"]) == ("RSA", "RS256", key.kid)
    assert jwt.get_unverified_header(_token(key))["alg"] == "RS256"


def test_valid_token_claims(key: SigningKey) -> None:
    # rule X1: the function reads verified claims
    claims = verify(_token(key, admin_of=["hq"]), key, issuer=ISS, audience=AUD, now=NOW + 10)
    assert claims["sub"] == "alice" and claims["locations"] == ["hq"]
    ctx = authorizer_context(claims)
    assert ctx["jwt"]["claims"]["locations"] == "[hq]"  # as API Gateway hands arrays over
    assert ctx["jwt"]["claims"]["exp"] == str(int(NOW) + 3600)
    assert ctx["jwt"]["scopes"] == ["calsync"]


@pytest.mark.parametrize(
    ("kw", "now"),
    [
        ({}, NOW + 3600),  # expired exactly at exp
        ({"expires_in": -1}, NOW),  # already expired
        ({"issuer": "https://evil.example/"}, NOW),
        ({"audience": "someone-else"}, NOW),
        ({}, NOW - 5),  # nbf in the future
    ],
)
def test_rejected_tokens(key: SigningKey, kw: dict[str, object], now: float) -> None:
    # rule X1: missing or invalid token -> 401
    with pytest.raises(InvalidToken):
        verify(_token(key, **kw), key, issuer=ISS, audience=AUD, now=now)


def test_other_key_and_other_algorithms_are_rejected(key: SigningKey, tmp_path: Path) -> None:
    other = SigningKey.load_or_create(tmp_path)
    forged = jwt.encode(
        {"iss": ISS, "aud": AUD, "sub": "mallory", "exp": int(NOW) + 60},
        other.private_pem,
        algorithm="RS256",
        headers={"kid": key.kid},
    )
    with pytest.raises(InvalidToken):  # right kid, wrong signature
        verify(forged, key, issuer=ISS, audience=AUD, now=NOW)
    hs = jwt.encode(
        {"iss": ISS, "aud": AUD, "sub": "mallory", "exp": int(NOW) + 60},
        "secret" * 6,
        algorithm="HS256",
        headers={"kid": key.kid},
    )
    with pytest.raises(InvalidToken):
        verify(hs, key, issuer=ISS, audience=AUD, now=NOW)
    with pytest.raises(InvalidToken):
        verify("not.a.jwt", key, issuer=ISS, audience=AUD, now=NOW)


def test_bearer_header() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("abc") == "abc"  # API Gateway accepts the bare token too
    for bad in (None, "", "Bearer "):
        with pytest.raises(InvalidToken):
            bearer_token(bad)
