"""calsync.crypto: KMS envelope encryption of credentials (rules S7, X3), KMS on moto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from calsync.crypto import CredentialBox, SealedSecretError, open_login, seal_login

CONTEXT = {"userId": "alice", "accountId": "acc-1"}


@pytest.fixture
def box() -> Iterator[CredentialBox]:
    with mock_aws():
        kms: Any = boto3.client("kms", region_name="eu-west-1")
        yield CredentialBox(kms, kms.create_key()["KeyMetadata"]["KeyId"])


def test_round_trip(box: CredentialBox) -> None:
    # rule S7: stored encrypted, opened with the same context
    sealed = box.seal(b"s3cret-password", CONTEXT)
    assert box.open(sealed, dict(CONTEXT)) == b"s3cret-password"
    assert b"s3cret" not in repr(sealed).encode()
    assert set(sealed) == {"v", "alg", "key", "nonce", "ct"}


def test_each_seal_uses_a_fresh_data_key_and_nonce(box: CredentialBox) -> None:
    a, b = box.seal(b"same", CONTEXT), box.seal(b"same", CONTEXT)
    assert a["key"] != b["key"]
    assert a["nonce"] != b["nonce"]
    assert a["ct"] != b["ct"]


@pytest.mark.parametrize(
    "context",
    [
        {"userId": "bob", "accountId": "acc-1"},  # another person
        {"userId": "alice", "accountId": "acc-2"},  # another account
        {"userId": "alice"},
    ],
)
def test_the_wrong_context_cannot_open_it(box: CredentialBox, context: dict[str, str]) -> None:
    # rule S7: the encryption context binds the secret to its person and account
    sealed = box.seal(b"s3cret", CONTEXT)
    with pytest.raises(SealedSecretError):
        box.open(sealed, context)


def test_a_tampered_ciphertext_is_refused(box: CredentialBox) -> None:
    sealed = box.seal(b"s3cret", CONTEXT)
    ct = bytearray(sealed["ct"].encode())
    ct[2] = ord("A") if ct[2] != ord("A") else ord("B")
    with pytest.raises(SealedSecretError):
        box.open({**sealed, "ct": ct.decode()}, CONTEXT)
    with pytest.raises(SealedSecretError):
        box.open({**sealed, "v": "9"}, CONTEXT)
    with pytest.raises(SealedSecretError):
        box.open({"v": "1", "alg": "AES-256-GCM"}, CONTEXT)


def test_a_login_round_trip(box: CredentialBox) -> None:
    sealed = seal_login(box, "alice@icloud.com", "abcd-efgh-ijkl-mnop", CONTEXT)
    assert open_login(box, sealed, CONTEXT) == ("alice@icloud.com", "abcd-efgh-ijkl-mnop")
    assert "abcd" not in repr(sealed)


def test_a_key_id_is_required() -> None:
    with pytest.raises(ValueError, match="CREDENTIALS_KEY_ID"):
        CredentialBox(object(), "")
