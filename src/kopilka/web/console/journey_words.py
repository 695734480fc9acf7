"""A journey said in words, in the page's language: its entry ("On their birthday, at
10:00"), each step ("Wait 3 days", "Give 100 points", "If the member matches … go to
«done»"), its goal, re-entry policy and holdout. Pure (no I/O). A document that no longer
parses is said as nothing here: the page shows its JSON instead."""

from dataclasses import dataclass
from datetime import time
from typing import Any

from kopilka.journeys.domain import (
    BranchStep,
    CouponStep,
    DateEntry,
    EventEntry,
    ExitStep,
    Goal,
    JourneyDocument,
    OfferStep,
    PointsStep,
    Reentry,
    ReentryPolicy,
    ScheduleEntry,
    SegmentEntry,
    SendStep,
    TagStep,
    WaitStep,
    WebhookStep,
)
from kopilka.web.console.segment_words import Phrase, definition_words
from kopilka.web.i18n import Formats, translations


def _(text: str) -> str:
    """Marks a label for the catalogue; the template translates it."""
    return text


STEP_TYPES = {
    "wait": _("Wait"),
    "branch": _("Branch"),
    "send": _("Message"),
    "points": _("Points"),
    "coupon": _("Coupon"),
    "tag": _("Tags"),
    "offer": _("Offer"),
    "webhook": _("Webhook"),
    "exit": _("Exit"),
}
OUTCOMES = {
    "waiting": _("waiting"),
    "timed_out": _("timed out"),
    "then": _("condition met"),
    "else": _("condition not met"),
    "sent": _("sent"),
    "skipped": _("skipped"),
    "credited": _("credited"),
    "issued": _("issued"),
    "tagged": _("tagged"),
    "offered": _("offered"),
    "called": _("called"),
    "exited": _("exited"),
    "failed": _("failed"),
}
JOURNEY_STATUSES = {
    "draft": _("draft"),
    "active": _("active"),
    "paused": _("paused"),
    "archived": _("archived"),
}
RUN_STATUSES = {
    "active": _("due"),
    "waiting": _("waiting"),
    "held_out": _("held out"),
    "converted": _("converted"),
    "exited": _("exited"),
}
# Where a dry run's entrants come from (``journeys/dryrun_service.py``).
BASES = {
    "events": _("the members' events the outbox keeps"),
    "feature_tables": _(
        "purchases, registrations and tier changes (the outbox no longer keeps these days)"
    ),
    "dates": _("the members' dates as recorded now"),
    "segment_now": _("the segment's members now"),
    "unknown": _("nothing: these days' events are no longer kept"),
}
OFFERS = {
    "boost": _("more points on the next purchase"),
    "free_sample": _("a free sample"),
    "free_delivery": _("free delivery"),
    "reward": _("a reward at a personal price"),
}
CHANNELS = {"email": _("e-mail"), "sms": _("SMS"), "push": _("push"), "inbox": _("inbox")}
WEEKDAYS = {
    1: _("Monday"),
    2: _("Tuesday"),
    3: _("Wednesday"),
    4: _("Thursday"),
    5: _("Friday"),
    6: _("Saturday"),
    7: _("Sunday"),
}


def in_order(outcomes: dict[str, int]) -> list[tuple[str, int]]:
    """A step's outcome counts in the order of ``OUTCOMES`` (the met condition before the
    unmet), any other after them."""
    order = list(OUTCOMES)
    return sorted(
        outcomes.items(), key=lambda item: (order.index(item[0]) if item[0] in order else 99, item)
    )


@dataclass(frozen=True)
class StepWords:
    number: int  # 1-based, as the page lists them
    id: str
    type: str
    text: str
    condition: Phrase | None = None  # a branch's condition, said as a segment's


@dataclass(frozen=True)
class JourneyWords:
    entry: str
    goal: str
    reentry: str
    holdout: str
    steps: list[StepWords]


class JourneySpeaker:
    def __init__(self, fmt: Formats, money_currency: str, points_currency: str) -> None:
        self.fmt = fmt
        self.money_currency = money_currency
        self.points_currency = points_currency
        self.tr = translations(fmt.language)

    def say(self, document: JourneyDocument) -> JourneyWords:
        return JourneyWords(
            entry=self.entry(document.entry),
            goal=self.goal(document.goal),
            reentry=self.reentry(document.reentry),
            holdout=self.holdout(document.holdout_percent),
            steps=[self.step(i + 1, step) for i, step in enumerate(document.steps)],
        )

    # --- the journey as a whole ----------------------------------------------------------

    def entry(self, entry: Any) -> str:
        _ = self.tr.gettext
        ngettext = self.tr.ngettext
        if isinstance(entry, EventEntry):
            return _("When the member's event «%(event)s» is delivered") % {"event": entry.event}
        if isinstance(entry, SegmentEntry):
            if entry.type == "segment_entered":
                return _("When the member enters the segment «%(segment)s»") % {
                    "segment": entry.segment
                }
            return _("When the member leaves the segment «%(segment)s»") % {
                "segment": entry.segment
            }
        if isinstance(entry, DateEntry):
            day = (
                _("their birthday")
                if entry.field == "birthday"
                else _("the anniversary of joining")
            )
            at = _clock(entry.at)
            if entry.offset_days == 0:
                return _("On %(day)s, at %(at)s") % {"day": day, "at": at}
            count = abs(entry.offset_days)
            if entry.offset_days < 0:
                text = ngettext(
                    "%(num)s day before %(day)s, at %(at)s",
                    "%(num)s days before %(day)s, at %(at)s",
                    count,
                )
            else:
                text = ngettext(
                    "%(num)s day after %(day)s, at %(at)s",
                    "%(num)s days after %(day)s, at %(at)s",
                    count,
                )
            return text % {"num": count, "day": day, "at": at}
        if isinstance(entry, ScheduleEntry):
            values = {"segment": entry.segment, "at": _clock(entry.at)}
            if entry.every == "week":
                values["weekday"] = _(WEEKDAYS[entry.weekday])
                return _("Every %(weekday)s at %(at)s: the members of segment «%(segment)s»") % (
                    values
                )
            if entry.every == "month":
                values["day"] = str(entry.day)
                return (
                    _("Every month on day %(day)s at %(at)s: the members of segment «%(segment)s»")
                    % values
                )
            return _("Every day at %(at)s: the members of segment «%(segment)s»") % values
        return str(entry)

    def goal(self, goal: Goal | None) -> str:
        _ = self.tr.gettext
        ngettext = self.tr.ngettext
        if goal is None:
            return _("No goal: nothing counts as a conversion.")
        text = ngettext(
            "The member's event «%(event)s» within %(num)s day of entering",
            "The member's event «%(event)s» within %(num)s days of entering",
            goal.within_days,
        ) % {"event": goal.event, "num": goal.within_days}
        tail = _("the run stops there.") if goal.ends_run else _("the run goes on.")
        return f"{text}; {tail}"

    def reentry(self, reentry: Reentry) -> str:
        _ = self.tr.gettext
        ngettext = self.tr.ngettext
        text = {
            ReentryPolicy.ONCE: _("A member runs it once, ever."),
            ReentryPolicy.AFTER_EXIT: _("A member may enter again once their run has finished."),
            ReentryPolicy.ALWAYS: _("Every entry starts a run, even while one is in flight."),
        }[reentry.policy]
        if reentry.cooldown_days and reentry.policy is not ReentryPolicy.ONCE:
            text += " " + ngettext(
                "At least %(num)s day after a finished run.",
                "At least %(num)s days after a finished run.",
                reentry.cooldown_days,
            ) % {"num": reentry.cooldown_days}
        return text

    def holdout(self, percent: int) -> str:
        _ = self.tr.gettext
        if not percent:
            return _("No holdout: every member who enters takes the steps.")
        return _(
            "%(share)s of the members who enter are held out: they take no step and their "
            "goal is counted to measure the uplift."
        ) % {"share": self.fmt.percent(percent / 100, 0)}

    # --- steps -----------------------------------------------------------------------------

    def step(self, number: int, step: Any) -> StepWords:
        condition = None
        if isinstance(step, BranchStep):
            condition = definition_words(
                step.condition, self.fmt, self.money_currency, self.points_currency
            )
        return StepWords(number, step.id, step.type, self.step_text(step), condition)

    def step_text(self, step: Any) -> str:
        _ = self.tr.gettext
        ngettext = self.tr.ngettext
        if isinstance(step, WaitStep):
            return self._wait(step)
        if isinstance(step, BranchStep):
            then = _("If the member matches the condition, go to «%(step)s»") % {"step": step.then}
            if step.otherwise:
                other = _("otherwise to «%(step)s»") % {"step": step.otherwise}
            else:
                other = _("otherwise on to the next step")
            return f"{then}; {other}."
        if isinstance(step, SendStep):
            if step.channels:
                channels = ", ".join(_(CHANNELS[c]) for c in step.channels)
                return _("Send «%(kind)s» by %(channels)s") % {
                    "kind": step.kind,
                    "channels": channels,
                }
            return _("Send «%(kind)s» on the program's channels for it") % {"kind": step.kind}
        if isinstance(step, PointsStep):
            amount = ngettext("%(num)s point", "%(num)s points", step.amount) % {
                "num": self.fmt.number(step.amount)
            }
            text = _("Give %(amount)s") % {"amount": amount}
            if step.currency:
                text += f" ({step.currency})"
            return text + " — " + _("reason: %(reason)s") % {"reason": step.reason}
        if isinstance(step, CouponStep):
            text = _("Issue a code of the coupon campaign «%(campaign)s»") % {
                "campaign": step.campaign
            }
            if step.valid_days:
                text += ", " + ngettext(
                    "valid %(num)s day", "valid %(num)s days", step.valid_days
                ) % {"num": step.valid_days}
            return text
        if isinstance(step, TagStep):
            parts = []
            if step.add:
                parts.append(_("Add the tags %(tags)s") % {"tags": ", ".join(step.add)})
            if step.remove:
                parts.append(_("Remove the tags %(tags)s") % {"tags": ", ".join(step.remove)})
            return "; ".join(parts)
        if isinstance(step, OfferStep):
            return ngettext(
                "Give a personal offer: %(offer)s, valid %(num)s day",
                "Give a personal offer: %(offer)s, valid %(num)s days",
                step.valid_days,
            ) % {"offer": _(OFFERS[step.kind]), "num": step.valid_days}
        if isinstance(step, WebhookStep):
            return _("Tell the program's systems (a journey.webhook event to its webhooks)")
        if isinstance(step, ExitStep):
            return _("End the run")
        return str(step.type)

    def _wait(self, step: WaitStep) -> str:
        _ = self.tr.gettext
        ngettext = self.tr.ngettext
        if step.event is not None:
            text = ngettext(
                "Wait for the member's event «%(event)s», at most %(num)s day",
                "Wait for the member's event «%(event)s», at most %(num)s days",
                step.timeout_days,
            ) % {"event": step.event, "num": step.timeout_days}
            if step.on_timeout:
                text += "; " + _("on time-out go to «%(step)s»") % {"step": step.on_timeout}
            return text
        if step.until is not None:
            return _("Wait until %(at)s") % {"at": _clock(step.until)}
        parts = []
        if step.days:
            parts.append(ngettext("%(num)s day", "%(num)s days", step.days) % {"num": step.days})
        if step.hours:
            parts.append(
                ngettext("%(num)s hour", "%(num)s hours", step.hours) % {"num": step.hours}
            )
        if step.minutes:
            parts.append(
                ngettext("%(num)s minute", "%(num)s minutes", step.minutes) % {"num": step.minutes}
            )
        return _("Wait %(duration)s") % {"duration": " ".join(parts)}


def _clock(at: time) -> str:
    return at.strftime("%H:%M")


def journey_words(
    document: JourneyDocument, fmt: Formats, money_currency: str, points_currency: str
) -> JourneyWords:
    """``document`` in words, in ``fmt``'s language."""
    return JourneySpeaker(fmt, money_currency, points_currency).say(document)
