"""Profile photos in S3 (P8). The bucket is private: uploads go through a presigned POST whose
policy makes S3 itself enforce the content type and the size; the profile shows a short-lived
presigned GET URL. The S3 client is injected, or made on the store's first use (never at import
time, and never by a request that has no photo to sign: docs/adr/0022).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from calsync.domain.errors import StoreUnavailable

PhotoType = Literal["image/jpeg", "image/png"]
EXTENSIONS: dict[str, str] = {"image/jpeg": "jpg", "image/png": "png"}
MAX_PHOTO_BYTES = 5 * 1024 * 1024  # 5 MiB (P8: "at most 5 MB")
UPLOAD_URL_LIFETIME = timedelta(minutes=10)
PHOTO_URL_LIFETIME = timedelta(hours=1)


def s3_client() -> Any:
    """An S3 client that signs with SigV4 (presigned POSTs and URLs included: SigV2 is deprecated)."""
    return boto3.client("s3", config=Config(signature_version="s3v4", s3={"addressing_style": "auto"}))


def photo_key(user_id: str, content_type: PhotoType) -> str:
    return f"photos/{user_id}/{uuid.uuid4().hex}.{EXTENSIONS[content_type]}"


@dataclass(frozen=True, slots=True)
class PhotoUpload:
    url: str
    fields: dict[str, str]
    key: str
    expires_at: datetime


class PhotoStore:
    def __init__(self, s3: Any | None, bucket: str, *, make_s3: Callable[[], Any] = s3_client) -> None:
        """``s3``: an S3 client; ``None``: one from ``make_s3`` (:func:`s3_client`), made when a photo
        is first signed or checked (an S3 client costs about as much to make as a DynamoDB one, and
        most requests of the functions that have photos never touch one)."""
        self._given = s3
        self._make_s3 = make_s3
        self.bucket = bucket

    @functools.cached_property
    def _s3(self) -> Any:
        return self._given if self._given is not None else self._make_s3()

    def presigned_upload(self, key: str, content_type: PhotoType, now: datetime) -> PhotoUpload:
        """A presigned POST for exactly ``key``: S3 refuses another content type, an empty file and
        one over 5 MiB (the policy's conditions), and any upload after ``expires_at``. No network."""
        post = self._s3.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", 1, MAX_PHOTO_BYTES],
            ],
            ExpiresIn=int(UPLOAD_URL_LIFETIME.total_seconds()),
        )
        fields = {str(k): str(v) for k, v in post["fields"].items()}
        return PhotoUpload(str(post["url"]), fields, key, now + UPLOAD_URL_LIFETIME)

    def exists(self, key: str) -> bool:
        """One HeadObject: has the upload arrived?"""
        try:
            self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StoreUnavailable(f"photo store: {code or 'unknown error'}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable("photo store unreachable") from exc
        return True

    def url(self, key: str) -> str:
        """A presigned GET URL of the photo, valid for an hour (signed locally: no network)."""
        return str(
            self._s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=int(PHOTO_URL_LIFETIME.total_seconds()),
            )
        )
