"""Pure rules of the web-shop widget: its session tokens (what they stand for, how long they
last), the shops' origins it answers, and the cap on the points one session may put on hold.
"""

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from uuid import UUID

from kopilka.errors import InvalidInput

TOKEN_PREFIX = "kw_"
# A widget session lives as long as a visit to the shop: the shop's server asks for a new
# one with each page it renders. A token read off a page is worth little an hour later.
SESSION_MINUTES = 60
MAX_ORIGINS = 20
MAX_ORIGIN_LENGTH = 300
# Pages served from this machine are secure contexts for a browser: a shop under
# development runs there over plain HTTP.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True, slots=True)
class WidgetSession:
    """Who a widget token stands for: one member of one program, until ``expires_at``;
    ``max_points`` (None: only the balance) bounds what the widget may hold with it, of
    which ``points_held`` are taken."""

    session_id: UUID
    program_id: UUID
    member_id: UUID
    expires_at: datetime
    max_points: int | None
    points_held: int

    @property
    def points_left(self) -> int | None:
        """What this session may still put on hold (None: as much as the balance)."""
        if self.max_points is None:
            return None
        return max(self.max_points - self.points_held, 0)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # 256 random bits: a plain SHA-256 is enough (nothing to stretch).
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX) and 20 <= len(token) <= 100


def session_expiry(now: datetime) -> datetime:
    return now + timedelta(minutes=SESSION_MINUTES)


def check_allowance(session: WidgetSession, points: int) -> None:
    """Refuse (422 naming ``points``) a hold past what the shop allowed this session."""
    left = session.points_left
    if left is not None and points > left:
        raise InvalidInput(
            f"at most {left} points may be paid here, {points} requested",
            field="points",
            allowed=left,
        )


# --- shops' origins ----------------------------------------------------------------------


def origin_of(raw: str) -> str:
    """The origin ``raw`` names, as a browser sends it in ``Origin``: the scheme and the
    host in lower case, the port only if it is not the scheme's default, nothing else.
    ``ValueError`` saying why if it is not an HTTPS origin (plain HTTP is taken for this
    machine only)."""
    text = raw.strip()
    if not text or len(text) > MAX_ORIGIN_LENGTH:
        raise ValueError(f"an origin has 1 to {MAX_ORIGIN_LENGTH} characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(f"{raw!r} is not an origin such as https://shop.example") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in DEFAULT_PORTS or not host or "*" in host:
        raise ValueError(f"{raw!r} is not an origin such as https://shop.example")
    if parts.username is not None or parts.password is not None:
        raise ValueError("an origin has no user name or password")
    if parts.path not in ("", "/") or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValueError(
            "an origin is a scheme and a host only, without a path (https://shop.example)"
        )
    if scheme == "http" and host not in LOOPBACK_HOSTS:
        raise ValueError("a shop's page must be served over HTTPS (https://…)")
    host = _host(host)
    if port is not None and port != DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def _host(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        labels = host.split(".")
        if not host.isascii() or not all(_label(label) for label in labels):
            raise ValueError(
                f"{host!r} is not a host name (write an internationalised name in punycode)"
            ) from None
        return host
    return f"[{address}]" if address.version == 6 else str(address)


def _label(label: str) -> bool:
    return (
        0 < len(label) <= 63
        and all(ch.isalnum() or ch == "-" for ch in label)
        and not label.startswith("-")
        and not label.endswith("-")
    )


def distinct(origins: list[str]) -> list[str]:
    """The origins in the order given, each once."""
    return list(dict.fromkeys(origins))
