"""The notifications a program owes, made from domain events; and consents kept in step
with the member profile.

One consumer, ``messaging``: each event it knows becomes an :class:`Outgoing` of its kind
(when the program has that kind on), with the dedupe key ``<kind>:<event id>``, so an event
delivered twice makes one message per channel. Messages are made in the worker's
transaction, together with its checkpoint; the sender sends them afterwards.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.coupons.service import coupon_service
from kopilka.errors import NotFound
from kopilka.kit.clock import clock
from kopilka.members.service import member_service
from kopilka.messaging.broadcasts import broadcast_service
from kopilka.messaging.composition import Localized, Outgoing
from kopilka.messaging.consents import consent_service
from kopilka.messaging.domain import Channel
from kopilka.messaging.inbound import reply_address, reply_settings
from kopilka.messaging.notifications import benefit_lines
from kopilka.messaging.service import messaging_service
from kopilka.outbox import events
from kopilka.outbox.consumers import batch_consumer
from kopilka.outbox.events import DomainEvent
from kopilka.outbox.support_events import SurveyInvited, TicketReplied
from kopilka.programs.service import ProgramContext, program_service
from kopilka.rewards.redemptions import redemption_service

CONSUMER = "messaging"
TOPICS = (
    "member.registered",
    "member.updated",
    "purchase.recorded",
    "points.redeemed",
    "points.released",
    "tier.*",
    "activity.recorded",
    "coupon.issued",
    "reward.redeemed",
    "reward.fulfilled",
    "giftcard.issued",
    "program.published",
    "ticket.replied",
    "survey.invited",
)


@batch_consumer(*TOPICS, name=CONSUMER)
async def make_messages(batch: Sequence[DomainEvent], conn: AsyncConnection) -> None:
    now = clock.now()
    programs: dict[UUID, ProgramContext] = {}
    outgoing: dict[UUID, list[tuple[Outgoing, datetime]]] = {}
    for event in batch:
        program = programs.get(event.program_id)
        if program is None:
            try:
                program = await program_service.get(conn, event.program_id)
            except NotFound:
                continue
            programs[event.program_id] = program
        if isinstance(event, events.MemberRegistered | events.MemberUpdated):
            await _consents(conn, program, event)
            continue
        if isinstance(event, events.ProgramPublished):
            await _program_changed(conn, program, event)
            continue
        item = await _notification(conn, program, event)
        if item is not None:
            outgoing.setdefault(program.id, []).append((item, event.occurred_at))
    for program_id, items in outgoing.items():
        program = programs[program_id]
        setup = await messaging_service.ensure_setup(conn, program, now)
        fresh = now - timedelta(hours=setup.settings.fresh_hours)
        wanted = [item for item, at in items if setup.settings.enabled(item.kind) and at >= fresh]
        await messaging_service.compose(conn, program, wanted, now)


async def _consents(
    conn: AsyncConnection,
    program: ProgramContext,
    event: events.MemberRegistered | events.MemberUpdated,
) -> None:
    assert event.member_id is not None
    if isinstance(event, events.MemberUpdated):
        if "consents" not in event.changed:
            return
        # The profile keeps the flags given; one left out reads as off.
        flags = {"email": False, "sms": False, "push": False} | dict(
            event.values.get("consents") or {}
        )
        source = "profile"
    else:
        try:
            profile = await member_service.get(conn, program, event.member_id)
        except NotFound:
            return
        flags = profile.consents.model_dump()
        source = "registration"
    now = clock.now()
    setup = await messaging_service.ensure_setup(conn, program, now)
    fresh = now - event.occurred_at <= timedelta(hours=setup.settings.fresh_hours)
    await consent_service.from_profile(
        conn,
        program,
        event.member_id,
        flags,
        source,
        event.occurred_at,
        confirm_at=now if fresh else None,
    )


async def _program_changed(
    conn: AsyncConnection, program: ProgramContext, event: events.ProgramPublished
) -> None:
    """A version published with a notice for members is announced to every member who
    was one when it was published."""
    if not event.member_notice.strip():
        return
    setup = await messaging_service.ensure_setup(conn, program, clock.now())
    stale = clock.now() - event.occurred_at > timedelta(hours=setup.settings.fresh_hours)
    if stale or not setup.settings.enabled("program_changed"):
        return
    await broadcast_service.to_everyone(
        conn,
        program,
        name=f"Program version {event.version_number}",
        kind="program_changed",
        variables={
            "summary": event.member_notice,
            "effective_at": event.occurred_at.date().isoformat(),
        },
        joined_before=event.occurred_at,
        now=clock.now(),
    )


def _tier(program: ProgramContext, tier_id: str) -> dict[str, Any]:
    ladder = program.settings.tiers
    level = next((t for t in ladder.levels if t.id == tier_id), None) if ladder else None
    return {"id": tier_id, "name": level.name if level else tier_id}


def _benefits(program: ProgramContext, tier_id: str) -> Localized:
    ladder = program.settings.tiers
    level = next((t for t in ladder.levels if t.id == tier_id), None) if ladder else None
    found = level.benefits.model_dump() if level else {}
    return Localized({lang: benefit_lines(found, lang) for lang in ("ru", "en")})


async def _notification(
    conn: AsyncConnection, program: ProgramContext, event: DomainEvent
) -> Outgoing | None:
    member = event.member_id
    if member is None:
        return None

    def out(kind: str, variables: dict[str, Any]) -> Outgoing:
        return Outgoing(kind, member, f"{kind}:{event.event_id}", variables)

    points = program.settings.points_currency()
    if isinstance(event, events.PurchaseRecorded):
        earned = event.earned.get(points, 0)
        if earned <= 0:
            return None
        return out(
            "points_earned",
            {"amount": earned, "purchase_total": event.total, "currency": event.currency},
        )
    if isinstance(event, events.PointsRedeemed) and event.currency == points:
        return out("points_spent", {"amount": event.amount})
    if isinstance(event, events.PointsReleased) and event.currency == points:
        return out("points_released", {"amount": event.amount})
    if isinstance(event, events.TierUpgraded):
        tier = _tier(program, event.to_tier)
        return out("tier_upgraded", {"tier": tier, "benefits": _benefits(program, event.to_tier)})
    if isinstance(event, events.TierDowngraded):
        return out(
            "tier_downgraded",
            {"tier": _tier(program, event.to_tier), "from_tier": _tier(program, event.from_tier)},
        )
    if isinstance(event, events.TierGraceStarted):
        return out(
            "tier_grace_started",
            {"tier": _tier(program, event.tier), "grace_until": event.grace_until},
        )
    if isinstance(event, events.ActivityRecorded) and event.activity == "birthday":
        return out("birthday", {"bonus": event.earned.get(points, 0)})
    if isinstance(event, events.CouponIssued):
        try:
            campaign = await coupon_service.campaign(conn, program, event.campaign)
        except NotFound:
            campaign = {}
        return out(
            "coupon_issued",
            {
                "code": event.code,
                "description": campaign.get("description")
                or campaign.get("name")
                or event.campaign,
                "expires_at": event.valid_until.date() if event.valid_until else None,
            },
        )
    if isinstance(event, events.RewardRedeemed | events.RewardFulfilled):
        return await _reward_ready(conn, program, event, member)
    if isinstance(event, TicketReplied):
        return await _ticket_reply(conn, program, event, member)
    if isinstance(event, SurveyInvited):
        # Keyed by the invitation: one invitation is one message per channel.
        return Outgoing(
            "survey_invitation",
            member,
            f"survey_invitation:{event.invitation_id}",
            {"survey": event.survey_name, "expires_at": event.expires_at.date()},
        )
    if isinstance(event, events.GiftCardIssued):
        return out(
            "giftcard_received",
            {"amount": event.amount, "currency": event.currency, "code": event.code},
        )
    return None


async def _ticket_reply(
    conn: AsyncConnection, program: ProgramContext, event: TicketReplied, member: UUID
) -> Outgoing | None:
    """A public reply on a ticket: by e-mail when the member has an address (with the
    address an answer comes back to), else in the app's inbox — unless the program chose
    the kind's channels itself."""
    try:
        profile = await member_service.get(conn, program, member)
    except NotFound:
        return None
    setup = await messaging_service.ensure_setup(conn, program, clock.now())
    chosen = setup.settings.notifications.get("ticket_reply")
    channels = None
    if chosen is None or not chosen.channels:
        channels = [Channel.EMAIL] if profile.email else [Channel.INBOX]
    support = await reply_settings(conn, program)
    return Outgoing(
        "ticket_reply",
        member,
        f"ticket_reply:{event.message_id}",
        {
            "subject": event.subject,
            "reply": event.body,
            "author": event.author_name,
            "reply_to": reply_address(setup.secret, support.reply_address, event.message_id),
        },
        channels=channels,
    )


async def _reward_ready(
    conn: AsyncConnection,
    program: ProgramContext,
    event: events.RewardRedeemed | events.RewardFulfilled,
    member: UUID,
) -> Outgoing | None:
    """A reward handed over (fulfilled at once, or later by staff): its code is read from
    the redemption, since codes stay out of events."""
    if event.status != "fulfilled":
        return None
    try:
        redemption = await redemption_service.get(conn, program, event.redemption_id)
    except NotFound:
        return None
    return Outgoing(
        "reward_ready",
        member,
        f"reward_ready:{event.redemption_id}",
        {"reward": redemption.reward_name, "code": redemption.code},
    )
