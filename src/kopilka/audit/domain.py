"""Who is acting, and what an audit entry says. Pure: no database, no web framework.

The actor of a request, a CLI command or a job is set once where it starts (``acting``)
and read by every service that records an audit entry, so no service signature carries it.
"""

import getpass
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

# Fields whose values never reach the audit log (they are secrets, not facts).
SECRET_FIELDS = frozenset(
    {
        "password",
        "new_password",
        "current_password",
        "secret",
        "token",
        "totp",
        "auth",
        "p256dh",
    }
)


class ActorKind(StrEnum):
    KEY = "key"  # an API key (a machine, an administrator's script)
    STAFF = "staff"  # a signed-in staff member
    CLI = "cli"  # someone at the server's command line
    SYSTEM = "system"  # the worker's jobs and consumers
    MEMBER = "member"  # a member acting on their own data


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: UUID | None = None
    name: str = ""
    # The route being served (``POST /v1/members/{member_id}/block``) and its path
    # parameters, when the actor is a caller of the API.
    route: str = ""
    subject: dict[str, str] = field(default_factory=dict)
    permission: str = ""  # the permission the route asked for
    body: Any = None  # what the caller sent (a change's "after" when no service said more)
    audited: bool = False  # staff and administrators' keys: their changes are logged
    # Written by the route's own service: no generic entry for the request is needed.
    recorded: list[bool] = field(default_factory=list, compare=False)

    @classmethod
    def command_line(cls) -> "Actor":
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no user name in a container without /etc/passwd
            user = "unknown"
        return cls(ActorKind.CLI, name=user)


SYSTEM = Actor(ActorKind.SYSTEM, name="system")
acting: ContextVar[Actor] = ContextVar("acting", default=SYSTEM)


@dataclass(frozen=True)
class AuditEntry:
    id: UUID
    at: datetime
    actor_kind: str
    actor_id: UUID | None
    actor_name: str
    action: str
    subject_type: str
    subject_id: str | None
    before: Any
    after: Any


def redacted(value: Any) -> Any:
    """``value`` with every secret field's value replaced (recursively)."""
    if isinstance(value, dict):
        return {
            k: ("***" if str(k).lower() in SECRET_FIELDS else redacted(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value
