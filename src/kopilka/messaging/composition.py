"""What composing and sending a message needs, without I/O: the message to make
(``Outgoing``), the program's settings and link secret (``Setup``), which texts a kind uses,
how a channel's parts render, consent, back-off, and the statuses a message takes."""

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from html import unescape
from typing import Any
from uuid import UUID

from kopilka.errors import InvalidInput, NotFound
from kopilka.messaging import links
from kopilka.messaging.domain import MAX_VALUE, Channel, Part, TemplateProblem, render
from kopilka.messaging.notifications import KINDS, NotificationKind, Purpose
from kopilka.messaging.records import ConsentRow, MessageRow
from kopilka.messaging.schemas import MessagingSettings

QUEUED, SENT, DELIVERED, FAILED, BOUNCED = "queued", "sent", "delivered", "failed", "bounced"
SKIPPED, CLICKED, READ = "skipped", "clicked", "read"
MAX_ATTEMPTS = 8
TEST_PREFIX = "test:"  # the dedupe key of a test send: staff asked for it, no consent applies
SIGN_IN_CODE = "sign_in_code"
# Kinds only the program itself sends (a confirmation link, a sign-in code must be the
# program's own). The member asked for them: they go even if the member opted out of
# service messages on the channel, and at once, whatever the quiet hours.
SYSTEM_KINDS = frozenset({"consent_confirm", SIGN_IN_CODE})
# Kinds whose text is a secret of the member's (a live sign-in code): no read path shows it,
# whatever the message's status (the sender alone reads it, to send it), and once the message
# has gone (or failed for good) its stored text is blanked as well.
SECRET_KINDS = frozenset({SIGN_IN_CODE})
SECRET_REMOVED = "[removed once sent: a one-time code]"
SECRET_HIDDEN = "[hidden: a one-time code]"
SENT_LIKE = frozenset({SENT, DELIVERED, CLICKED})
# What a secret kind's text may not hold, in any part: a link or a web address. A code in a
# link goes wherever the link points when the member taps it (a template that staff may edit
# could send it to anyone's server), so such a text is refused when saved, a saved one is
# not used, and the code's message carries no tracked link either.
LINK_MARKS = ("href", "src", "http://", "https://", "//", "www.")
_HREF = re.compile(r'href="(https?://[^"]+)"')


def retry_delay(attempts: int) -> timedelta:
    """Back-off after the ``attempts``-th failed try: 1, 2, 4 … minutes, at most 6 hours."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 360))


@dataclass(frozen=True)
class Localized:
    """A variable whose value depends on the member's language (a tier's benefits)."""

    values: dict[str, Any]


@dataclass(frozen=True)
class Outgoing:
    """A message to make: of ``kind``, to a member, once per ``dedupe_key`` and channel."""

    kind: str
    member_id: UUID
    dedupe_key: str
    variables: Mapping[str, Any] = field(default_factory=dict)
    channels: Sequence[Channel] | None = None
    send_at: datetime | None = None
    broadcast_id: UUID | None = None
    # The e-mail or phone to send to instead of the member's own (a code confirming a new
    # address goes to that address, not yet the member's).
    to: str | None = None


@dataclass(frozen=True)
class Setup:
    """A program's messaging settings and its link secret."""

    settings: MessagingSettings
    secret: str

    def link(self, path: str, data: links.LinkData) -> str:
        return f"{self.settings.links_url}/m/{path}/{links.sign(self.secret, data)}"


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    body: str
    html: str | None


@dataclass(frozen=True)
class SendResult:
    """What one try of a leased message gave."""

    message: MessageRow
    at: datetime
    provider_id: str | None = None
    error: str | None = None
    permanent: bool = False
    bounced: bool = False  # the address itself is refused for good: suppress it
    gone: bool = False  # the push subscription has ended: remove it


def consent_allows(
    consents: Sequence[ConsentRow], channel: str, purpose: str, kind: str | None = None
) -> bool:
    """Marketing needs a granted consent; service messages go unless withdrawn, and a
    system kind (which the member asked for) always."""
    if kind in SYSTEM_KINDS and purpose == Purpose.SERVICE:
        return True
    found = next((c for c in consents if c.channel == channel and c.purpose == purpose), None)
    if purpose == Purpose.MARKETING:
        return found is not None and found.status == "granted"
    return found is None or found.status != "withdrawn"


def link_in(text: str) -> str | None:
    """The first mark of a link or web address in ``text`` (as it reads once HTML entities
    and look-alike characters are undone, in any case), or None."""
    seen = unicodedata.normalize("NFKC", unescape(text)).casefold()
    plain = unicodedata.normalize("NFKC", text).casefold()
    return next((m for m in LINK_MARKS if m in seen or m in plain), None)


def usable_parts(kind: str, saved: Mapping[str, str] | None) -> dict[str, str]:
    """A program's saved parts that may be used: all of them, but for a secret kind none
    that holds a link (saved before such texts were refused): the shipped part instead."""
    parts = dict(saved or {})
    if kind in SECRET_KINDS:
        parts = {p: s for p, s in parts.items() if link_in(s) is None}
    return parts


def check_no_links(kind: str, part: str, text: str) -> None:
    """422 naming the part if a secret kind's ``text`` (a source, or what it renders to)
    holds a link or a web address."""
    if kind not in SECRET_KINDS:
        return
    found = link_in(text)
    if found is not None:
        raise InvalidInput(
            f"{part}: a {kind} message may not hold a link or a web address "
            f"(it has {found!r}): the one-time code must not leave the message",
            field=f"parts.{part}",
        )


def template_sources(
    kind: NotificationKind, language: str, saved: Mapping[str, str] | None
) -> dict[Part, str]:
    """The shipped texts of ``kind`` in ``language`` with the program's saved parts over
    (those it may use: :func:`usable_parts`)."""
    sources = dict(kind.defaults.get(language) or kind.defaults["ru"])
    for part, source in usable_parts(kind.key, saved).items():
        sources[Part(part)] = source
    return sources


def known_kind(kind: str) -> NotificationKind:
    spec = KINDS.get(kind)
    if spec is None:
        raise NotFound(
            f"no message kind {kind!r} (one of {', '.join(sorted(KINDS))})", field="kind"
        )
    return spec


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9][0-9]{7,14}$")


def checked_address(channel: Channel, address: str) -> str:
    """A test address as the channel needs it, or a clear refusal."""
    if channel is Channel.EMAIL and not _EMAIL.fullmatch(address):
        raise InvalidInput(f"{address!r} is not an e-mail address", field="to")
    if channel is Channel.SMS and not _PHONE.fullmatch(address):
        raise InvalidInput(
            f"{address!r} is not a phone number in international form (+79161234567)",
            field="to",
        )
    return address


def check_variables(spec: NotificationKind, variables: Mapping[str, Any]) -> None:
    """A caller's variables: only those the kind has, texts of at most ``MAX_VALUE``."""
    for name, value in variables.items():
        if name not in spec.variables:
            raise InvalidInput(
                f"unknown template variable {name!r} for {spec.key} (it has: "
                f"{', '.join(sorted(spec.variables)) or 'none'})",
                field=f"variables.{name}",
            )
        if _longest_text(value) > MAX_VALUE:
            raise InvalidInput(
                f"{name} has a text longer than {MAX_VALUE:,} characters",
                field=f"variables.{name}",
            )
        if not _encodable(value):
            raise InvalidInput(
                f"{name} has text that is not valid Unicode (a lone surrogate)",
                field=f"variables.{name}",
            )


def _encodable(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_encodable(k) and _encodable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_encodable(v) for v in value)
    return True


def _longest_text(value: Any, depth: int = 0) -> int:
    if isinstance(value, str):
        return len(value)
    if depth > 5:
        return MAX_VALUE + 1  # deeper than any variable a message needs
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return max((_longest_text(v, depth + 1) for v in value), default=0) + (
            MAX_VALUE + 1 if len(value) > 100 else 0
        )
    return 0


def try_render(spec: NotificationKind, language: str, parts: Mapping[str, str]) -> None:
    """A saved template must render with the kind's sample data (and a secret kind's, hold
    no link, as written or as rendered)."""
    for part, source in parts.items():
        check_no_links(spec.key, part, source)
    sources = template_sources(spec, language, parts)
    for part, source in sources.items():
        try:
            text = render(source, str(part), language, spec.sample)
        except TemplateProblem as exc:
            raise InvalidInput(str(exc), field=f"parts.{part}") from None
        check_no_links(spec.key, str(part), text)


def render_channel(
    channel: Channel, sources: Mapping[Part, str], language: str, values: Mapping[str, Any]
) -> Rendered:
    def part(name: Part) -> str:
        return render(sources.get(name, ""), str(name), language, values)

    if channel is Channel.EMAIL:
        html = part(Part.HTML) if sources.get(Part.HTML) else None
        return Rendered(part(Part.SUBJECT), part(Part.TEXT), html)
    if channel is Channel.SMS:
        return Rendered(None, part(Part.SMS), None)
    if channel is Channel.PUSH:
        return Rendered(part(Part.PUSH_TITLE), part(Part.PUSH_BODY), None)
    return Rendered(part(Part.SUBJECT), part(Part.TEXT), None)


def render_message(
    spec: NotificationKind,
    channel: Channel,
    sources: Mapping[Part, str],
    language: str,
    values: Mapping[str, Any],
) -> Rendered:
    """A message's parts on ``channel``; a secret kind whose text renders with a link in it
    (spelt out from pieces, say) is rendered from the shipped texts instead."""
    rendered = render_channel(channel, sources, language, values)
    if spec.key in SECRET_KINDS and any(
        link_in(text) for text in (rendered.subject, rendered.body, rendered.html) if text
    ):
        return render_channel(channel, template_sources(spec, language, None), language, values)
    return rendered


def tracked(
    setup: Setup, program_id: UUID, message_id: UUID, html: str | None, *, kind: str
) -> str | None:
    """Links of an HTML part through the signed click redirect (``/m/c/…``); a secret
    kind's never (a click would carry its code into the history, and it holds no link)."""
    if html is None or not setup.secret or kind in SECRET_KINDS:
        return html

    def wrap(match: re.Match[str]) -> str:
        url = unescape(match.group(1))  # the address as the browser reads it (&amp; → &)
        if url.startswith(f"{setup.settings.links_url}/m/"):
            return match.group(0)  # unsubscribe and preference links stay as they are
        target = setup.link(
            "c", links.LinkData("click", program_id, message_id=message_id, url=url)
        )
        return f'href="{target}"'

    return _HREF.sub(wrap, html)


def forget_secret(message: MessageRow) -> dict[str, Any]:
    """What a message's row keeps of its text once it has gone: all of it, but for a secret
    kind (a sign-in code), whose text is blanked."""
    if message.kind not in SECRET_KINDS:
        return {}
    return {"subject": None, "body": SECRET_REMOVED, "html": None}


def shown(message: MessageRow) -> MessageRow:
    """A message as every reader sees it (the log, the timeline, an export, the inbox): a
    secret kind's subject, text and HTML never, whether it waits, has gone or has failed —
    only the sender reads a stored message's text, to send it."""
    if message.kind not in SECRET_KINDS:
        return message
    body = SECRET_REMOVED if message.body == SECRET_REMOVED else SECRET_HIDDEN
    return replace(message, subject=None, body=body, html=None)


def deferred_note(row: Mapping[str, Any], now: datetime) -> str | None:
    due = row.get("due_at")
    if row["status"] == QUEUED and due is not None and due > now:
        return f"waits until {due:%Y-%m-%d %H:%M} UTC"
    return None


def status_step(message_id: UUID, status: str, detail: str | None, at: datetime) -> dict[str, Any]:
    return {"message_id": message_id, "status": status, "detail": detail, "at": at}


def message_row(r: Mapping[str, Any]) -> MessageRow:
    return MessageRow(
        id=r["id"],
        program_id=r["program_id"],
        member_id=r["member_id"],
        kind=r["kind"],
        purpose=r["purpose"],
        channel=r["channel"],
        dedupe_key=r["dedupe_key"],
        language=r["language"],
        to_address=r["to_address"],
        subject=r["subject"],
        body=r["body"],
        html=r["html"],
        link=r["link"],
        extra=dict(r["extra"]),
        status=r["status"],
        error=r["error"],
        attempts=r["attempts"],
        due_at=r["due_at"],
        broadcast_id=r["broadcast_id"],
        provider_id=r["provider_id"],
        created_at=r["created_at"],
        sent_at=r["sent_at"],
        read_at=r["read_at"],
        clicked_at=r["clicked_at"],
    )
