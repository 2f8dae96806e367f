"""Domain errors (``calsync.domain.errors``): each carries the detail its HTTP answer shows (X5)."""

from __future__ import annotations

import pytest

from calsync.domain.errors import (
    AccountLimitPerLocation,
    AccountOwnedByAnotherUser,
    CalsyncError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    StoreUnavailable,
    Unauthorized,
)


@pytest.mark.parametrize(
    ("error", "status", "slug"),
    [
        (NotFound, 404, "not-found"),
        (Forbidden, 403, "forbidden"),
        (Unauthorized, 401, "unauthorized"),
        (InvalidInput, 400, "invalid-input"),
        (Conflict, 409, "conflict"),
        (StoreUnavailable, 503, "store-unavailable"),
        (AccountLimitPerLocation, 409, "account-limit-per-location"),  # C3
        (AccountOwnedByAnotherUser, 409, "account-owned-by-another-user"),  # C4
    ],
)
def test_each_error_keeps_its_detail_and_maps_to_one_answer(
    error: type[CalsyncError], status: int, slug: str
) -> None:
    # rule X5: a clear 4xx (or 503) answer whose detail is the one the code gave
    exc = error("calendar cal-1 is not yours")
    assert exc.detail == "calendar cal-1 is not yours"
    assert str(exc) == "calendar cal-1 is not yours"  # logs and tracebacks show it too
    assert exc.args == ("calendar cal-1 is not yours",)
    assert (exc.status, exc.type_slug) == (status, slug)
    assert isinstance(exc, CalsyncError)
