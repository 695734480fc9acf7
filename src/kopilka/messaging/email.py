"""E-mail over SMTP: the message with its text and HTML parts and, on marketing mail, the
one-click unsubscribe headers (RFC 2369 ``List-Unsubscribe``, RFC 8058
``List-Unsubscribe-Post``), sent through the configured server."""

import io
import ssl
from dataclasses import dataclass
from email import policy
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Literal

import aiosmtplib

from kopilka.config import Settings
from kopilka.messaging.domain import DeliveryFailed

Security = Literal["starttls", "tls", "none"]
WIRE = policy.default.clone(max_line_length=998)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: Security
    username: str | None
    password: str | None
    sender: str
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> "SmtpConfig | None":
        """The configured server; None when no ``KOPILKA_SMTP_HOST`` is set."""
        if not settings.smtp_host:
            return None
        password = settings.smtp_password
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=password.get_secret_value() if password is not None else None,
            sender=settings.smtp_from,
            timeout=settings.smtp_timeout_seconds,
        )

    def shown(self) -> str:
        """The configuration as it may be printed: never the password."""
        login = f"{self.username}@" if self.username else ""
        return f"smtp://{login}{self.host}:{self.port} ({self.security}), from {self.sender}"


@dataclass(frozen=True)
class Email:
    """One e-mail to one member. ``unsubscribe_url`` marks marketing mail: the link that
    unsubscribes in one click (a POST, as RFC 8058 asks) goes into its headers."""

    to: str
    subject: str
    text: str
    html: str | None = None
    unsubscribe_url: str | None = None
    message_id: str | None = None
    reply_to: str | None = None  # where the member's answer goes (a ticket's address)


class SendFailed(DeliveryFailed):
    """The SMTP server did not take the message: permanent on a 5xx reply (an unknown
    mailbox, a rejected sender), not on a 4xx reply, no connection or a timeout. ``code``:
    the server's reply code, if it gave one; ``recipient``: the refusal was of the address
    itself (an answer to RCPT TO) — only that is a bounce that stops the address."""

    def __init__(
        self, detail: str, *, permanent: bool, code: int | None = None, recipient: bool = False
    ) -> None:
        super().__init__(detail, permanent=permanent)
        self.code = code
        self.recipient = recipient


def mime(email: Email, sender: str) -> EmailMessage:
    """The message as it goes on the wire: plain text, and HTML as the alternative.

    Header lines may be up to RFC 5322's 998 characters: a long unsubscribe link must stay
    one ``<https://…>`` (folded at 78, the library would encode it as RFC 2047 words that
    no mail client reads as a link). Line breaks in the subject become spaces.
    """
    message = EmailMessage(policy=WIRE)
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = " ".join(email.subject.split())
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = email.message_id or make_msgid(domain=domain)
    if email.reply_to is not None:
        message["Reply-To"] = email.reply_to
    if email.unsubscribe_url is not None:
        message["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(email.text)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
    return message


def wire_bytes(message: EmailMessage) -> bytes:
    """``message`` as SMTP carries it: CRLF line ends, header lines up to 998 characters."""
    out = io.BytesIO()
    BytesGenerator(out, policy=WIRE.clone(linesep="\r\n")).flatten(message)
    return out.getvalue()


class SmtpChannel:
    """Sends e-mail through one SMTP server, keeping up to ``keep`` connections open between
    messages (a connection and its handshake cost more than a message): each send takes an
    idle connection or opens one; a connection that saw any refusal or error is closed, not
    reused; one the server closed while idle is replaced and the message sent once more."""

    def __init__(
        self,
        config: SmtpConfig,
        tls: ssl.SSLContext | None = None,
        *,
        keep: int = 8,
        per_connection: int = 100,
    ) -> None:
        self.config = config
        self.tls = tls
        self.keep = keep
        self.per_connection = per_connection
        self._idle: list[tuple[aiosmtplib.SMTP, int]] = []

    async def send(self, email: Email) -> str:
        """Send ``email``; its Message-ID. ``SendFailed`` if the server did not take it."""
        message = mime(email, self.config.sender)
        try:
            await self._send(message, email.to)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusal = exc.recipients[0] if exc.recipients else None
            code = refusal.code if refusal is not None else None
            detail = refusal.message if refusal is not None else str(exc)
            raise SendFailed(
                f"recipient refused ({code}): {detail}",
                permanent=_permanent(code),
                code=code,
                # 552 (mailbox full) is permanent for this message, not the address's end.
                recipient=code in (550, 551, 553),
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise SendFailed(
                f"the server answered {exc.code}: {exc.message}",
                permanent=_permanent(exc.code),
                code=exc.code,
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendFailed(
                f"cannot reach {self.config.host}:{self.config.port}: {exc}", permanent=False
            ) from exc
        return str(message["Message-ID"])

    async def _send(self, message: EmailMessage, to: str) -> None:
        # Flattened here, under the wire policy: the client's own flattening would fold
        # (and so encode) a long List-Unsubscribe link.
        raw = wire_bytes(message)
        sender = parseaddr(self.config.sender)[1]
        if self._idle:
            client, sent = self._idle.pop()
            try:
                await client.sendmail(sender, [to], raw)
            except aiosmtplib.SMTPServerDisconnected:
                # The server closed the idle connection: a fresh one gets the message.
                client.close()
            except BaseException:
                client.close()
                raise
            else:
                self._keep(client, sent + 1)
                return
        client = await self._connect()
        try:
            await client.sendmail(sender, [to], raw)
        except BaseException:
            client.close()
            raise
        self._keep(client, 1)

    async def _connect(self) -> aiosmtplib.SMTP:
        config = self.config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            tls_context=self.tls,
            timeout=config.timeout,
        )
        await client.connect()
        return client

    def _keep(self, client: aiosmtplib.SMTP, sent: int) -> None:
        if sent < self.per_connection and len(self._idle) < self.keep:
            self._idle.append((client, sent))
        else:
            client.close()

    async def close(self) -> None:
        """Say QUIT on every idle connection."""
        idle, self._idle = self._idle, []
        for client, _ in idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()


def _permanent(code: int | None) -> bool:
    return code is not None and 500 <= code < 600
