"""API shapes of messaging: a program's messaging settings (a validated document),
templates, messages, consents, push subscriptions and broadcasts."""

from datetime import datetime, time
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kopilka.kit.types import Flag, Instant, Int, field_error
from kopilka.messaging.domain import Channel, Part
from kopilka.messaging.notifications import KINDS, Purpose
from kopilka.messaging.policy import QuietHours

Language = Literal["ru", "en"]
KindKey = Annotated[str, Field(min_length=1, max_length=40)]
Channels = Annotated[list[Channel], Field(min_length=1, max_length=4)]


def _known_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"{kind!r} is not a message kind (one of {', '.join(sorted(KINDS))})")
    return kind


def base_url(value: str) -> str:
    """An http(s) URL with a host, in plain ASCII (a host of another script in its
    ``xn--`` form), with no query, fragment, space, quote or control character, without its
    trailing slash: the start of the links messages carry, which must stay one link in a
    mail header."""
    problem = "must be an http:// or https:// URL with a host (https://club.example)"
    if not value.isascii() or any(not 33 <= ord(c) < 127 or c in "\"'<>\\?#" for c in value):
        raise ValueError(problem + ", in ASCII (a host like клуб.рф as xn--…)")
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError:
        raise ValueError(problem) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(problem)
    return value.rstrip("/")


def _distinct(channels: list[Channel]) -> list[Channel]:
    return list(dict.fromkeys(channels))


ClockTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class QuietHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: ClockTime = Field(description="Local time the quiet hours begin, HH:MM.")
    end: ClockTime = Field(description="Local time they end, HH:MM (may be the next morning).")

    def window(self) -> QuietHours:
        return QuietHours(time.fromisoformat(self.start), time.fromisoformat(self.end))


class CapsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    per_day: Int | None = Field(default=None, ge=1, le=100)
    per_week: Int | None = Field(default=None, ge=1, le=700)


class NotificationSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: Flag
    channels: Channels | None = Field(
        default=None, description="Channels of this kind; default: the program's default ones."
    )
    _channels = field_validator("channels")(lambda v: None if v is None else _distinct(v))


def _default_caps() -> dict[Channel, CapsIn]:
    return {
        Channel.EMAIL: CapsIn(per_day=1, per_week=3),
        Channel.SMS: CapsIn(per_day=1, per_week=2),
        Channel.PUSH: CapsIn(per_day=2, per_week=6),
    }


class MessagingSettings(BaseModel):
    """How a program talks to its members. Every field has a default; a program without
    settings of its own has these."""

    model_config = ConfigDict(extra="forbid")

    language: Language = Field(
        default="ru", description="The language of members who have none of their own."
    )
    timezone: str | None = Field(
        default=None,
        max_length=64,
        description="Zone for quiet hours of members without a `timezone` attribute; "
        "default: the program's.",
    )
    quiet_hours: QuietHoursIn | None = Field(
        default_factory=lambda: QuietHoursIn(start="21:00", end="09:00"),
        description="No message goes out inside them (it waits); null: none.",
    )
    caps: dict[Channel, CapsIn] = Field(
        default_factory=_default_caps, description="Marketing messages per channel per day/week."
    )
    default_channels: Channels = Field(
        default_factory=lambda: [Channel.INBOX, Channel.EMAIL, Channel.PUSH]
    )
    notifications: dict[str, NotificationSetting] = Field(
        default_factory=dict, description="Per kind: on or off, and its channels."
    )
    expiring_days: Int = Field(default=7, ge=1, le=365)
    fresh_hours: Int = Field(
        default=48,
        ge=1,
        le=24 * 365,
        description="An event older than this when the worker reaches it (history imported, "
        "a worker that was down for days) makes no notification: news of last year's "
        "purchase is noise.",
    )
    double_opt_in: Flag = Field(
        default=True, description="Marketing e-mail waits for the member to confirm the address."
    )
    consent_text_version: str | None = Field(default=None, max_length=40)
    links_url: str = Field(
        default="http://127.0.0.1:8000",
        max_length=500,
        description="Where this server is reached from outside: the start of the unsubscribe, "
        "preference and click links messages carry.",
    )
    app_url: str | None = Field(default=None, max_length=500)

    @field_validator("notifications")
    @classmethod
    def _kinds(cls, value: dict[str, NotificationSetting]) -> dict[str, NotificationSetting]:
        for kind in value:
            _known_kind(kind)
        return value

    @field_validator("links_url", "app_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return base_url(value)

    @field_validator("caps")
    @classmethod
    def _caps(cls, value: dict[Channel, CapsIn]) -> dict[Channel, CapsIn]:
        for channel, caps in value.items():
            if channel is Channel.INBOX:
                raise ValueError("the inbox has no caps: it is read when the member chooses")
            if caps.per_day and caps.per_week and caps.per_day > caps.per_week:
                raise ValueError(f"{channel}: per_day is more than per_week")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone") from None
        return value

    def enabled(self, kind: str) -> bool:
        setting = self.notifications.get(kind)
        return setting.enabled if setting is not None else KINDS[kind].on_by_default

    def channels_of(self, kind: str) -> list[Channel]:
        setting = self.notifications.get(kind)
        if setting is not None and setting.channels:
            return list(setting.channels)
        return list(self.default_channels)


# --- templates -------------------------------------------------------------------------------

PartSource = Annotated[str, Field(max_length=20_000)]


class TemplateSave(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parts: dict[Part, PartSource] = Field(
        min_length=1,
        description="Part → Jinja2 source. Parts left out keep the shipped text.",
    )


class TemplateVersion(BaseModel):
    kind: str
    language: str
    version: int = Field(description="0: the shipped texts, never edited by this program.")
    parts: dict[str, str]
    created_at: datetime | None


class TemplateSummary(BaseModel):
    kind: str
    purpose: Purpose
    enabled: bool
    channels: list[Channel]
    variables: list[str]
    versions: dict[str, int] = Field(description="Language → the version in use (0: shipped).")


class TemplateList(BaseModel):
    items: list[TemplateSummary]


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_id: UUID | None = Field(
        default=None, description="Render with this member's data; default: sample data."
    )
    language: Language | None = None
    variables: dict[str, Any] = Field(
        default_factory=dict, description="Values for the kind's own variables."
    )
    parts: dict[Part, PartSource] | None = Field(
        default=None, description="Unsaved sources to try; default: the saved ones."
    )


class Preview(BaseModel):
    kind: str
    language: str
    parts: dict[str, str]
    sms_segments: int
    sms_encoding: str


class TestSend(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    to: str | None = Field(
        default=None, max_length=500, description="An address (e-mail or phone) for a test."
    )
    member_id: UUID | None = Field(default=None, description="Or a member's own address.")
    language: Language | None = None
    variables: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_target(self) -> "TestSend":
        if (self.to is None) == (self.member_id is None):
            raise field_error("to", "give either to or member_id")
        if self.channel in (Channel.PUSH, Channel.INBOX) and self.member_id is None:
            raise field_error("member_id", f"a test by {self.channel} goes to a member")
        return self


# --- messages --------------------------------------------------------------------------------


class MessageSend(BaseModel):
    """One service message to one member, from a kind's templates."""

    model_config = ConfigDict(extra="forbid")

    member_id: UUID
    kind: KindKey
    variables: dict[str, Any] = Field(default_factory=dict)
    channels: Channels | None = None
    dedupe_key: str = Field(
        min_length=1,
        max_length=150,
        pattern=r"^[A-Za-z0-9._:/@+=-]+$",
        description="The same key never makes a second message of one channel for this member: "
        "letters, digits and . _ : / @ + = -.",
    )
    send_at: Instant | None = None

    _kind = field_validator("kind")(_known_kind)


class StatusStep(BaseModel):
    status: str
    detail: str | None
    at: datetime


class Message(BaseModel):
    id: UUID
    member_id: UUID | None
    kind: str
    purpose: str
    channel: str
    status: str
    error: str | None
    to: str | None
    subject: str | None
    body: str
    link: str | None
    attempts: int
    due_at: datetime | None
    broadcast_id: UUID | None
    created_at: datetime
    sent_at: datetime | None
    read_at: datetime | None
    clicked_at: datetime | None


class MessageDetail(Message):
    html: str | None
    unsubscribe_url: str | None = Field(
        description="The member's unsubscribe link (marketing) or preference page (service)."
    )
    history: list[StatusStep]


class MessagePage(BaseModel):
    items: list[Message]
    next_cursor: str | None


class Messages(BaseModel):
    items: list[Message]


class InboxItem(BaseModel):
    id: UUID
    kind: str
    title: str | None
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None


class InboxPage(BaseModel):
    items: list[InboxItem]
    unread: int
    next_cursor: str | None


# --- consents --------------------------------------------------------------------------------


class ConsentState(BaseModel):
    channel: Channel
    purpose: Purpose
    status: Literal["granted", "pending", "withdrawn", "none"]
    allowed: bool = Field(description="Whether messages of this purpose go out on the channel.")
    source: str | None
    text_version: str | None
    updated_at: datetime | None


class ConsentRecordOut(BaseModel):
    channel: str
    purpose: str
    status: str
    source: str
    text_version: str | None
    detail: str | None
    recorded_at: datetime


class Consents(BaseModel):
    items: list[ConsentState]
    history: list[ConsentRecordOut]


# Sources only Kopilka's own paths record: a caller cannot pass one off as its own.
RESERVED_SOURCES = frozenset(
    {"registration", "profile", "preferences", "unsubscribe", "confirmation", "erasure", "merge"}
)


class ConsentChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["email", "sms", "push"]
    purpose: Purpose
    granted: Flag
    source: str = Field(
        default="api",
        min_length=1,
        max_length=40,
        description="Where the member gave or withdrew it (checkout, app, store …).",
    )
    text_version: str | None = Field(default=None, max_length=40)

    @field_validator("source")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_SOURCES:
            raise ValueError(f"{value!r} is a source Kopilka records itself")
        return value

    confirmed: Flag = Field(
        default=False,
        description="The member already confirmed the address (double opt-in done elsewhere).",
    )


class ConsentChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    changes: list[ConsentChange] = Field(min_length=1, max_length=12)


# --- push subscriptions ----------------------------------------------------------------------


class PushKeys(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p256dh: str = Field(min_length=80, max_length=200, pattern=r"^[A-Za-z0-9_\-=]+$")
    auth: str = Field(min_length=16, max_length=100, pattern=r"^[A-Za-z0-9_\-=]+$")


class PushSubscriptionIn(BaseModel):
    """What a browser's ``PushManager.subscribe()`` gives (``subscription.toJSON()``)."""

    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(max_length=2000, pattern=r"^https?://")
    keys: PushKeys
    user_agent: str | None = Field(default=None, max_length=500)


class PushSubscriptionOut(BaseModel):
    id: UUID
    endpoint: str
    user_agent: str | None
    created_at: datetime


class PushSubscriptions(BaseModel):
    items: list[PushSubscriptionOut]
    public_key: str | None = Field(description="The VAPID key a browser subscribes with.")


# --- broadcasts ------------------------------------------------------------------------------


class BroadcastCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: KindKey = "broadcast"
    variables: dict[str, Any] = Field(default_factory=dict)
    channels: Channels | None = None
    members: list[UUID] | None = Field(default=None, min_length=1, max_length=100_000)
    segment: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="A segment's key: its members when the broadcast is made. Give this or "
        "`members`.",
    )
    send_at: Instant | None = None
    holdout_percent: Int = Field(
        default=0,
        ge=0,
        le=50,
        description="The share of the audience held back (sent nothing) to measure the "
        "broadcast against: `GET /v1/analytics/experiments/broadcast:{id}`.",
    )

    _kind = field_validator("kind")(_known_kind)

    @model_validator(mode="after")
    def _one_audience(self) -> "BroadcastCreate":
        if (self.members is None) == (self.segment is None):
            raise field_error("members", "give members or a segment, one of them")
        return self


class Broadcast(BaseModel):
    id: UUID
    name: str
    kind: str
    channels: list[str]
    status: str
    scheduled_at: datetime
    total: int
    holdout_percent: int
    done: int
    counts: dict[str, int] = Field(description="Messages by status.")
    created_at: datetime
    finished_at: datetime | None


class BroadcastPage(BaseModel):
    items: list[Broadcast]
    next_cursor: str | None


# --- suppressions ----------------------------------------------------------------------------


class SuppressionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["email", "sms"]
    address: str = Field(min_length=3, max_length=320)
    reason: Literal["complaint", "manual"] = Field(
        description="complaint: the member (or the provider's feedback loop) reported spam."
    )
    detail: str | None = Field(default=None, max_length=500)


class Suppression(BaseModel):
    channel: str
    address: str
    reason: str
    detail: str | None
    message_id: UUID | None
    created_at: datetime


class Suppressions(BaseModel):
    items: list[Suppression]
