"""Domain errors and their RFC 9457 problem+json rendering.

Services raise these; the HTTP layer turns them into problem documents and the CLI into one
readable line. Each error says what went wrong and, where there is one, which field.
"""

from typing import Any


class KopilkaError(Exception):
    status: int = 400
    type_slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://kopilka.dev/problems/{self.type_slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance is not None:
            body["instance"] = instance
        if self.field is not None:
            body["errors"] = [{"field": self.field, "message": self.detail}]
        body.update(self.extra)
        return body


class InvalidInput(KopilkaError):
    status = 422
    type_slug = "invalid-input"
    title = "Invalid input"


class NotFound(KopilkaError):
    status = 404
    type_slug = "not-found"
    title = "Not found"


class Conflict(KopilkaError):
    status = 409
    type_slug = "conflict"
    title = "Conflict"


class IdempotencyConflict(Conflict):
    type_slug = "idempotency-conflict"
    title = "Idempotency key reused with a different request"


class InsufficientBalance(KopilkaError):
    status = 422
    type_slug = "insufficient-balance"
    title = "Insufficient balance"


class MemberBlocked(KopilkaError):
    status = 403
    type_slug = "member-blocked"
    title = "Member is blocked"


class Unauthorized(KopilkaError):
    status = 401
    type_slug = "unauthorized"
    title = "Unauthorized"


class Forbidden(KopilkaError):
    status = 403
    type_slug = "forbidden"
    title = "Forbidden"


class TooManyRequests(KopilkaError):
    status = 429
    type_slug = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int = 60, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after  # seconds, answered as Retry-After
