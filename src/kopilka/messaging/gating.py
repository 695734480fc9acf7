"""Whether a composed message may go, and when: a member's status, address, consent and
the suppression list; the quiet hours and the marketing caps. What composing decides for
each message, and what a journey's dry run asks of each member."""

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from kopilka.messaging.batch import Batch
from kopilka.messaging.composition import SKIPPED, SYSTEM_KINDS, consent_allows
from kopilka.messaging.domain import Channel
from kopilka.messaging.notifications import NotificationKind, Purpose
from kopilka.messaging.policy import Caps, Verdict, decide
from kopilka.messaging.records import Recipient


def refusal(
    batch: Batch,
    spec: NotificationKind,
    recipient: Recipient,
    channel: Channel,
    address: str | None,
) -> str | None:
    """Why a message may not go to this member on this channel (at ``address``), if it
    may not: a blocked member's marketing, no address, no consent, a suppressed address."""
    if recipient.status != "active" and spec.purpose is Purpose.MARKETING:
        return "the member is blocked"
    if channel is Channel.INBOX:
        return None
    if address is None:
        return {
            Channel.EMAIL: "no e-mail address",
            Channel.SMS: "no phone number",
            Channel.PUSH: "no push subscription",
        }[channel]
    if channel is Channel.EMAIL and not address.isascii():
        return "an address that is not ASCII needs SMTPUTF8, which is not used yet"
    consents = batch.consents.get(recipient.id, [])
    if not consent_allows(consents, str(channel), str(spec.purpose), spec.key):
        return "no consent" if spec.purpose is Purpose.MARKETING else "opted out"
    suppressed = batch.suppressed.get((str(channel), address))
    if suppressed is not None:
        return f"address suppressed ({suppressed})"
    return None


def timing(
    batch: Batch,
    spec: NotificationKind,
    recipient: Recipient,
    channel: Channel,
    at: datetime,
) -> dict[str, Any]:
    """When a message may go: at once for what the member waits for, else after the quiet
    hours and within the marketing caps (counted in ``batch``, which it adds to); skipped
    when the caps leave no room."""
    if spec.key in SYSTEM_KINDS:
        return {"due_at": at}  # the member is waiting for it: no quiet hours
    settings = batch.setup.settings
    zone = ZoneInfo(recipient.timezone or settings.timezone or batch.program.settings.timezone)
    quiet = settings.quiet_hours.window() if settings.quiet_hours is not None else None
    limits = settings.caps.get(channel)
    caps = Caps(limits.per_day, limits.per_week) if limits is not None else None
    sent = batch.marketing_sent.setdefault((recipient.id, str(channel)), [])
    decision = decide(spec.purpose, at, zone, quiet, caps, sent)
    if decision.verdict is Verdict.SUPPRESS:
        return {"status": SKIPPED, "error": f"not sent: {decision.reason}", "due_at": None}
    when = decision.at.astimezone(UTC)
    if spec.purpose is Purpose.MARKETING:
        sent.append(when)
    return {"due_at": when}
