"""calsync.store.photos.PhotoStore without a client: S3's is made by the first photo it signs, not by
the requests that never touch a photo (docs/adr/0022)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from calsync.store import photos

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def test_the_s3_client_is_made_on_first_use_only() -> None:
    made: list[Any] = []

    def counted() -> Any:
        made.append(photos.s3_client())
        return made[-1]

    store = photos.PhotoStore(None, "calsync-photos", make_s3=counted)
    assert made == []
    url = store.url("photos/alice/a.jpg")  # signed locally: no network
    store.presigned_upload("photos/alice/b.png", "image/png", NOW)
    assert len(made) == 1
    assert "calsync-photos" in url
    assert "X-Amz-Signature=" in url


def test_a_given_client_is_used() -> None:
    class Signer:
        def generate_presigned_url(self, op: str, Params: dict[str, str], ExpiresIn: int) -> str:
            return f"signed:{op}:{Params['Bucket']}/{Params['Key']}:{ExpiresIn}"

    store = photos.PhotoStore(Signer(), "bucket")
    assert store.url("k") == "signed:get_object:bucket/k:3600"
