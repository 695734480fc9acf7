"""E-mail answers to ticket replies, back onto their ticket.

A ticket reply's e-mail names a reply address ``<mailbox>+<token>@<domain>`` (the
program's ``reply_address`` in the support settings): the token is the id of the reply on
the ticket and an HMAC of it under the program's link secret, short enough for an
address's local part (at most 64 characters) and in lower-case hex, which survives mail
systems that change the case of addresses. The mail provider's inbound webhook posts the
raw RFC 822 message to ``/m/inbound/<program token>`` (the URL ``kopilka support
inbound-url`` prints, signed like every link); the route finds the token among the
message's recipients, checks it, strips the quoted text and the signature, and adds what
is left to the ticket as the member's reply — which reopens a waiting or resolved ticket.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import Conflict, NotFound
from kopilka.messaging import links
from kopilka.messaging.composition import Setup
from kopilka.messaging.service import messaging_service
from kopilka.programs.service import ProgramContext, program_service
from kopilka.support.schemas import MemberReplyCreate, SupportSettings
from kopilka.support.service import support_service
from kopilka.support.tickets import ticket_service

INBOUND = "inbound"
MAC_HEX = 20  # 80 bits: a forged address needs 2^80 tries, each one a sent e-mail
MAX_REPLY = 20_000
_TOKEN = re.compile(r"\+([0-9a-f]{32})\.([0-9a-f]{20})@", re.IGNORECASE)
# Where a mail client starts quoting what it answers, in the languages members write in.
_QUOTE_HEADERS = (
    re.compile(r"^On .{1,200} wrote:\s*$"),
    re.compile(r"^.{0,200}(пишет|написал|написала)( \(.{1,100}\))?:\s*$", re.IGNORECASE),
    re.compile(r"^-{2,}\s*(Original Message|Исходное сообщение|Пересылаемое сообщение)", re.I),
    re.compile(r"^(From|От|Sent|Отправлено):\s", re.IGNORECASE),
    re.compile(r"^_{10,}\s*$"),
)


def _mac(secret: str, message_id: UUID) -> str:
    digest = hmac.new(secret.encode(), f"reply:{message_id.hex}".encode(), hashlib.sha256)
    return digest.hexdigest()[:MAC_HEX]


def reply_token(secret: str, message_id: UUID) -> str:
    return f"{message_id.hex}.{_mac(secret, message_id)}"


def reply_address(secret: str, mailbox: str | None, message_id: UUID) -> str | None:
    """The address an answer to the ticket reply ``message_id`` is written to; None when
    the program has no reply mailbox."""
    if not mailbox or not secret:
        return None
    local, _, domain = mailbox.partition("@")
    return f"{local}+{reply_token(secret, message_id)}@{domain}"


def inbound_url(setup: Setup, program: ProgramContext) -> str:
    """The signed URL the mail provider posts inbound messages to."""
    return setup.link(INBOUND, links.LinkData(INBOUND, program.id))


@dataclass(frozen=True)
class InboundMail:
    tokens: list[tuple[str, str]]  # (message id hex, mac) found among the recipients
    text: str


def parse(raw: bytes) -> InboundMail:
    """The reply tokens a raw message is addressed to, and its new text (plain part, or
    the HTML part's text), without what it quotes."""
    message = message_from_bytes(raw, policy=policy.default)
    recipients: list[str] = []
    for header in ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"):
        recipients += [a for _, a in getaddresses(message.get_all(header, []))]
    tokens = [
        (m.group(1).lower(), m.group(2).lower()) for a in recipients if (m := _TOKEN.search(a))
    ]
    return InboundMail(tokens, strip_quoted(_text_of(message)))


def _text_of(message: object) -> str:
    if not isinstance(message, EmailMessage):
        return ""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):
        return ""
    if not isinstance(content, str):
        return ""
    if part.get_content_subtype() == "html":
        content = re.sub(r"(?is)<(script|style|blockquote).*?</\1>", "", content)
        content = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", content)
        content = re.sub(r"<[^>]+>", "", content)
    return content


def strip_quoted(text: str) -> str:
    """The new words of a reply: up to the first quoting header, quoted line (``>``) or
    signature separator (``-- ``), trimmed."""
    kept: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if stripped.startswith(">") or line.rstrip("\n") == "-- ":
            break
        if any(pattern.match(stripped) for pattern in _QUOTE_HEADERS):
            break
        kept.append(line)
    return "\n".join(kept).strip()[:MAX_REPLY]


async def accept(conn: AsyncConnection, token: str, raw: bytes, now: datetime) -> str | None:
    """Add an inbound e-mail to its ticket as the member's reply. None: the URL is not one
    a program signed (nothing is read); otherwise what was done, for the provider's log
    (a message for no ticket, or with nothing new in it, is dropped, not refused: a
    provider would only post it again)."""
    data = await messaging_service.verified_link(conn, token, INBOUND)
    if data is None:
        return None
    try:
        program = await program_service.get(conn, data.program_id)
    except NotFound:
        return None
    setup = await messaging_service.setup(conn, program)
    mail = parse(raw)
    for message_hex, mac in mail.tokens:
        message_id = UUID(hex=message_hex)
        if not hmac.compare_digest(mac, _mac(setup.secret, message_id)):
            continue
        target = await ticket_service.reply_target(conn, program, message_id)
        if target is None:
            continue
        if not mail.text:
            return "ignored: no new text"
        ticket_id, member_id = target
        try:
            await ticket_service.member_reply(
                conn,
                program,
                member_id,
                ticket_id,
                MemberReplyCreate(body=mail.text),
                now,
                via="email",
            )
        except Conflict:
            return "ignored: the ticket is closed"
        return f"added to ticket {ticket_id}"
    return "ignored: no ticket reply address"


async def reply_settings(conn: AsyncConnection, program: ProgramContext) -> SupportSettings:
    return await support_service.settings(conn, program)
