"""The console's sections, each shown to the roles that hold its permission (the labels are
catalogue texts, translated by the layout)."""

from dataclasses import dataclass

from kopilka.access.domain import Permission, Principal

P = Permission


@dataclass(frozen=True)
class Section:
    href: str
    label: str
    permission: Permission


def _(text: str) -> str:
    """Marks a label for the catalogue; the layout translates it."""
    return text


SECTIONS = (
    Section("/console/", _("Dashboard"), P.ANALYTICS_READ),
    Section("/console/members", _("Members"), P.MEMBERS_READ),
    Section("/console/analytics", _("Analytics"), P.ANALYTICS_READ),
    Section("/console/program", _("Program"), P.PROGRAM_READ),
    Section("/console/tiers", _("Tiers"), P.PROGRAM_READ),
    Section("/console/rewards", _("Rewards"), P.PROGRAM_READ),
    Section("/console/coupons", _("Coupons"), P.PROGRAM_READ),
    Section("/console/gift-cards", _("Gift cards"), P.PROGRAM_READ),
    Section("/console/stores", _("Stores"), P.STORES_READ),
    Section("/console/segments", _("Segments"), P.SEGMENTS_READ),
    Section("/console/templates", _("Templates"), P.MESSAGES_READ),
    Section("/console/broadcasts", _("Broadcasts"), P.MESSAGES_READ),
    Section("/console/journeys", _("Journeys"), P.MESSAGES_READ),
    Section("/console/tickets", _("Tickets"), P.TICKETS_HANDLE),
    Section("/console/surveys", _("Surveys"), P.SURVEYS_READ),
    Section("/console/webhooks", _("Webhooks"), P.INTEGRATIONS_MANAGE),
    Section("/console/api-keys", _("API keys"), P.INTEGRATIONS_MANAGE),
    Section("/console/staff", _("Staff"), P.STAFF_MANAGE),
    Section("/console/audit", _("Audit log"), P.AUDIT_READ),
)


def console_nav(principal: Principal) -> list[Section]:
    return [s for s in SECTIONS if principal.can(s.permission)]
