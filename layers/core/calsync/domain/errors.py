"""Domain errors. Each maps to one HTTP answer in the API's single exception handler."""

from __future__ import annotations


class CalsyncError(Exception):
    """Base of the domain errors."""

    status = 500
    type_slug = "internal"
    title = "Internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(CalsyncError):
    status = 404
    type_slug = "not-found"
    title = "Not found"


class Forbidden(CalsyncError):
    status = 403
    type_slug = "forbidden"
    title = "Forbidden"


class Unauthorized(CalsyncError):
    status = 401
    type_slug = "unauthorized"
    title = "Unauthorized"


class InvalidInput(CalsyncError):
    status = 400
    type_slug = "invalid-input"
    title = "Invalid input"


class Conflict(CalsyncError):
    status = 409
    type_slug = "conflict"
    title = "Conflict"


class StoreUnavailable(CalsyncError):
    """The store could not answer (throttled, unavailable): retry later."""

    status = 503
    type_slug = "store-unavailable"
    title = "Store unavailable"


class AccountLimitPerLocation(Conflict):
    """C3: a person has at most one account of each provider in one location."""

    type_slug = "account-limit-per-location"
    title = "One account per provider and location"


class AccountOwnedByAnotherUser(Conflict):
    """C4: an external account belongs to the one person who connected it first."""

    type_slug = "account-owned-by-another-user"
    title = "Account connected by another person"


class RoomConsentRequired(Conflict):
    """R9: a calendar becomes a room only with its owner's consent."""

    type_slug = "room-consent-required"
    title = "The calendar's owner has not agreed to a room"


class IdempotencyKeyReused(CalsyncError):
    """An appointment's Idempotency-Key sent again with another body (calsync.api.idempotency)."""

    status = 422
    type_slug = "idempotency-key-reused"
    title = "Idempotency-Key reused with another request"


class IdempotencyInProgress(Conflict):
    """The first request with this Idempotency-Key is still running."""

    type_slug = "idempotency-in-progress"
    title = "The same request is still being processed"
