"""Credentials at rest (rule S7, X3): KMS envelope encryption.

``seal`` asks KMS for a fresh AES-256 data key (GenerateDataKey, bound to an encryption context
such as ``{"userId", "accountId"}``), encrypts the secret locally with AES-GCM using the same
context as additional authenticated data, and keeps only the KMS-wrapped data key beside the
ciphertext. ``open`` unwraps the data key with KMS Decrypt (which checks the context again) and
decrypts. A sealed secret copied to another person's or account's item therefore cannot be opened
there: both KMS and AES-GCM refuse it.

The plaintext never leaves this module except as the return value of ``open``; nothing is logged.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from calsync.domain.errors import CalsyncError

VERSION = "1"
ALGORITHM = "AES-256-GCM"
_NONCE_BYTES = 12


class SealedSecretError(CalsyncError):
    """A sealed secret cannot be opened (wrong context, tampered, unknown format, KMS refused)."""

    status = 500
    type_slug = "credentials-unreadable"
    title = "Stored credentials cannot be read"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _aad(context: Mapping[str, str]) -> bytes:
    """The encryption context as canonical bytes (sorted keys): the AES-GCM associated data."""
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode("utf-8")


class CredentialBox:
    """Seals and opens small secrets (passwords, refresh tokens) with one KMS key."""

    def __init__(self, kms_client: Any, key_id: str) -> None:
        if not key_id:
            raise ValueError("a KMS key id is needed to seal credentials (CREDENTIALS_KEY_ID)")
        self._kms = kms_client
        self._key_id = key_id

    def seal(self, plaintext: bytes, context: Mapping[str, str]) -> dict[str, str]:
        """The secret, encrypted: a map of strings to store (never the plaintext or the data key)."""
        if not context:
            raise ValueError("an encryption context is required")
        try:
            key = self._kms.generate_data_key(
                KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=dict(context)
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "unknown")
            raise SealedSecretError(f"the credentials could not be encrypted (KMS: {code})") from exc
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = AESGCM(key["Plaintext"]).encrypt(nonce, plaintext, _aad(context))
        return {
            "v": VERSION,
            "alg": ALGORITHM,
            "key": _b64(key["CiphertextBlob"]),
            "nonce": _b64(nonce),
            "ct": _b64(ciphertext),
        }

    def open(self, sealed: Mapping[str, str], context: Mapping[str, str]) -> bytes:
        """The plaintext of ``seal(…, context)``; ``SealedSecretError`` for anything else."""
        try:
            if sealed.get("v") != VERSION or sealed.get("alg") != ALGORITHM:
                raise SealedSecretError("the stored credentials have an unknown format")
            wrapped, nonce, ciphertext = _unb64(sealed["key"]), _unb64(sealed["nonce"]), _unb64(sealed["ct"])
        except (KeyError, ValueError, TypeError) as exc:
            raise SealedSecretError("the stored credentials are damaged") from exc
        try:
            key = self._kms.decrypt(
                CiphertextBlob=wrapped, KeyId=self._key_id, EncryptionContext=dict(context)
            )["Plaintext"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "unknown")
            raise SealedSecretError(f"the stored credentials cannot be decrypted (KMS: {code})") from exc
        try:
            return AESGCM(key).decrypt(nonce, ciphertext, _aad(context))
        except InvalidTag as exc:
            raise SealedSecretError("the stored credentials do not belong to this account") from exc


# ---- login credentials (CalDAV: user name + app-specific password) --------------------------------
def seal_login(
    box: CredentialBox, username: str, password: str, context: Mapping[str, str]
) -> dict[str, str]:
    """A user name and password, sealed together (what ``Account.credentials`` holds for CalDAV)."""
    plaintext = json.dumps({"username": username, "password": password}, separators=(",", ":"))
    return box.seal(plaintext.encode("utf-8"), context)


def open_login(box: CredentialBox, sealed: Mapping[str, str], context: Mapping[str, str]) -> tuple[str, str]:
    """(user name, password) of ``seal_login``."""
    try:
        data = json.loads(box.open(sealed, context))
        return str(data["username"]), str(data["password"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SealedSecretError("the stored credentials are damaged") from exc
