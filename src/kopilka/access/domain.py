"""Who may do what: permissions, the roles of staff, the scopes of API keys, the caller.

Every route names one permission. A caller holds a set of them: an API key through its
scopes (machines: the till, a partner, an analyst's tool, an administrator's scripts), a
staff member through their role (people at the console). ``docs/crm.md`` has the table.
"""

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class Permission(StrEnum):
    PROGRAM_READ = "program.read"
    PROGRAM_EDIT = "program.edit"  # the draft, simulations
    PROGRAM_PUBLISH = "program.publish"  # publish and roll back
    CATALOG_MANAGE = "catalog.manage"  # rewards, coupon campaigns, gift cards
    MEMBERS_READ = "members.read"  # profiles and what they hold
    MEMBERS_WRITE = "members.write"  # profile, consents, subscriptions
    MEMBERS_REGISTER = "members.register"
    MEMBERS_BLOCK = "members.block"
    MEMBERS_MERGE = "members.merge"
    MEMBERS_EXPORT = "members.export"  # a member's data (art. 15/20) and member lists
    MEMBERS_ERASE = "members.erase"
    MEMBERS_IMPORT = "members.import"
    POINTS_ADJUST = "points.adjust"
    TIERS_MANUAL = "tiers.manual"
    SALES_RECORD = "sales.record"  # purchases, returns, quotes, coupon checks, activities
    PAYMENTS_TAKE = "payments.take"  # point holds, gift-card and wallet money, reward cancels
    REWARDS_FULFIL = "rewards.fulfil"
    MESSAGES_READ = "messages.read"
    MESSAGES_SEND = "messages.send"  # templates, one-off messages, broadcasts
    MESSAGING_SETTINGS = "messaging.settings"  # channels, suppressions
    SEGMENTS_READ = "segments.read"
    SEGMENTS_MANAGE = "segments.manage"
    STORES_READ = "stores.read"
    STORES_MANAGE = "stores.manage"
    INTERACTIONS_LOG = "interactions.log"
    TICKETS_HANDLE = "tickets.handle"
    SURVEYS_READ = "surveys.read"
    SURVEYS_MANAGE = "surveys.manage"
    ANALYTICS_READ = "analytics.read"
    INTEGRATIONS_MANAGE = "integrations.manage"  # webhooks, parked events, API keys
    STAFF_MANAGE = "staff.manage"
    AUDIT_READ = "audit.read"


P = Permission
EVERYTHING = frozenset(Permission)

# What each API-key scope grants. ``admin`` is everything; the others are what the till
# (pos), a partner's till and an analyst's tool have always been able to call.
SCOPE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "admin": EVERYTHING,
    "pos": frozenset(
        {
            P.PROGRAM_READ,
            P.MEMBERS_READ,
            P.MEMBERS_WRITE,
            P.MEMBERS_REGISTER,
            P.SALES_RECORD,
            P.PAYMENTS_TAKE,
            P.STORES_READ,
            P.INTERACTIONS_LOG,
            P.TICKETS_HANDLE,
        }
    ),
    "partner": frozenset({P.PROGRAM_READ, P.MEMBERS_READ, P.SALES_RECORD, P.STORES_READ}),
    "analyst": frozenset(
        {
            P.PROGRAM_READ,
            P.MEMBERS_READ,
            P.STORES_READ,
            P.SEGMENTS_READ,
            P.SURVEYS_READ,
            P.ANALYTICS_READ,
        }
    ),
}


class Role(StrEnum):
    OWNER = "owner"
    MARKETING = "marketing"
    CRM = "crm"
    ANALYST = "analyst"
    SUPPORT = "support"
    STORE_MANAGER = "store_manager"
    CASHIER = "cashier"


_CASHIER = frozenset(
    {
        P.PROGRAM_READ,
        P.MEMBERS_READ,
        P.MEMBERS_WRITE,
        P.MEMBERS_REGISTER,
        P.SALES_RECORD,
        P.PAYMENTS_TAKE,
        P.STORES_READ,
    }
)
_SUPPORT = frozenset(
    {
        P.PROGRAM_READ,
        P.MEMBERS_READ,
        P.MEMBERS_WRITE,
        P.MESSAGES_READ,
        P.STORES_READ,
        P.INTERACTIONS_LOG,
        P.TICKETS_HANDLE,
        P.SURVEYS_READ,
    }
)
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: EVERYTHING,
    Role.MARKETING: frozenset(
        {
            P.PROGRAM_READ,
            P.PROGRAM_EDIT,
            P.PROGRAM_PUBLISH,
            P.CATALOG_MANAGE,
            P.MEMBERS_READ,
            P.MESSAGES_READ,
            P.MESSAGES_SEND,
            P.MESSAGING_SETTINGS,
            P.SEGMENTS_READ,
            P.SEGMENTS_MANAGE,
            P.STORES_READ,
            P.SURVEYS_READ,
            P.SURVEYS_MANAGE,
            P.ANALYTICS_READ,
        }
    ),
    Role.CRM: _SUPPORT
    | frozenset(
        {
            P.MEMBERS_REGISTER,
            P.MEMBERS_BLOCK,
            P.MEMBERS_MERGE,
            P.MEMBERS_EXPORT,
            P.MEMBERS_ERASE,
            P.MEMBERS_IMPORT,
            P.POINTS_ADJUST,
            P.TIERS_MANUAL,
            P.REWARDS_FULFIL,
            P.MESSAGES_SEND,
            P.SEGMENTS_READ,
            P.SEGMENTS_MANAGE,
            P.ANALYTICS_READ,
        }
    ),
    # Aggregates and definitions, not people: an analyst reads no one's profile.
    Role.ANALYST: frozenset(
        {
            P.PROGRAM_READ,
            P.STORES_READ,
            P.SEGMENTS_READ,
            P.SURVEYS_READ,
            P.ANALYTICS_READ,
        }
    ),
    Role.SUPPORT: _SUPPORT,
    Role.STORE_MANAGER: _CASHIER
    | frozenset({P.REWARDS_FULFIL, P.INTERACTIONS_LOG, P.TICKETS_HANDLE, P.SURVEYS_READ}),
    Role.CASHIER: _CASHIER,
}


def scope_permissions(scopes: frozenset[str]) -> frozenset[Permission]:
    granted: frozenset[Permission] = frozenset()
    for scope in scopes:
        granted |= SCOPE_PERMISSIONS.get(scope, frozenset())
    return granted


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key of one program with its scopes, or a signed-in staff
    member of one program with their role (``staff_id`` set). ``stores`` limits a staff
    member to some stores (None: every store)."""

    key_id: UUID  # the API key's id, or the staff session's
    program_id: UUID
    scopes: frozenset[str]
    permissions: frozenset[Permission] = frozenset()
    staff_id: UUID | None = None
    name: str = ""
    stores: frozenset[str] | None = None

    @classmethod
    def of_key(cls, key_id: UUID, program_id: UUID, scopes: frozenset[str]) -> "Principal":
        return cls(key_id, program_id, scopes, scope_permissions(scopes))

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def may_act_at(self, store: str | None) -> bool:
        """Whether this caller may act for ``store`` (a staff member limited to stores acts
        only at those; an act at no store is the back office's, refused to them too)."""
        return self.stores is None or (store is not None and store in self.stores)

    @property
    def is_staff(self) -> bool:
        return self.staff_id is not None
