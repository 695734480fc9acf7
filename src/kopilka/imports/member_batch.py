"""A batch of member import records checked against the program and turned into rows,
before any database work: what can be refused without a look-up is refused here, with the
field at fault, and what is left is ready to be matched and written.

No I/O: an import prepares the next batch while the database writes the one before.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as default
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any, Literal
from uuid import UUID

from kopilka.errors import InvalidInput
from kopilka.imports.member_rows import column_of
from kopilka.imports.schemas import (
    IDENTIFIER_KINDS,
    ImportedConsent,
    MemberImportRecord,
    RecordError,
)
from kopilka.kit.clock import zone_named
from kopilka.members.service import member_service
from kopilka.messaging.notifications import Purpose
from kopilka.messaging.schemas import ConsentChange
from kopilka.programs.service import ProgramContext

SOURCE = "import"  # the consent history's source, the members' registration channel
Status = Literal["created", "already_imported", "error"]
Lots = dict[tuple[str, datetime | None], int]  # (currency, expires_at) → amount


@dataclass
class Outcome:
    """What became of one record."""

    status: Status
    member_id: UUID | None = None
    field: str | None = None
    reason: str | None = None
    notes: list[str] = default(default_factory=list)
    credited: dict[str, int] = default(default_factory=dict)
    expired: dict[str, int] = default(default_factory=dict)
    consents: int = 0
    tier: bool = False


@dataclass
class Prepared:
    """A valid record, checked against the program and turned into rows."""

    index: int
    record: MemberImportRecord
    row: dict[str, Any]
    identifiers: list[dict[str, Any]]
    given: list[tuple[str, str]]  # the identifiers the record gives, stored form, match order
    lots: Lots
    consents: list[tuple[datetime, ConsentChange]]  # oldest first
    tier: tuple[str, datetime] | None
    outcome: Outcome


@dataclass
class Batch:
    """A batch as prepared: an outcome per record, in order, and the records to write."""

    now: datetime
    outcomes: list[Outcome]
    prepared: list[Prepared]

    def identifiers(self) -> set[tuple[str, str]]:
        """The identifiers its records give (stored form): what it may register."""
        return {pair for item in self.prepared for pair in item.given}

    def hold_back(self, busy: set[tuple[str, str]]) -> tuple["Batch", list[int]]:
        """This batch without the records giving one of the ``busy`` identifiers, and
        their positions. Such a record names a member another transaction may be
        registering: it waits for a later batch, which then finds that member."""
        held = [item.index for item in self.prepared if any(p in busy for p in item.given)]
        if not held:
            return self, []
        drop = set(held)
        return (
            Batch(
                self.now,
                [o for i, o in enumerate(self.outcomes) if i not in drop],
                [item for item in self.prepared if item.index not in drop],
            ),
            held,
        )


@dataclass(frozen=True)
class _Program:
    """What every record of a batch is checked against, worked out once per batch."""

    context: ProgramContext
    currencies: list[str]
    points: str
    zone: tzinfo
    tiers: tuple[str, ...] | None  # the ladder's tier ids; None without a ladder

    @classmethod
    def of(cls, program: ProgramContext) -> "_Program":
        ladder = program.settings.tiers
        return cls(
            program,
            program.settings.currency_codes(),
            program.settings.points_currency(),
            zone_named(program.settings.timezone) or zone_named("UTC"),  # type: ignore[arg-type]
            tuple(level.id for level in ladder.levels) if ladder is not None else None,
        )


def prepare(
    program: ProgramContext,
    records: Sequence[MemberImportRecord | RecordError],
    now: datetime,
    *,
    labels: Sequence[str] | None = None,
    columns: bool = False,
) -> Batch:
    """Check ``records`` (as of ``now``) and turn the valid ones into rows. ``labels``
    name the records in messages about duplicates ("line 7"); with ``columns`` a refusal
    names the CSV column rather than the record's field."""
    builder = BatchBuilder(program, now, columns=columns)
    builder.add(records)
    return builder.batch(labels or [f"record {i}" for i in range(len(records))])


class BatchBuilder:
    """A batch prepared a few records at a time (:func:`prepare` at once), so that an
    import can let the database work on the batch before between two steps."""

    def __init__(self, program: ProgramContext, now: datetime, *, columns: bool) -> None:
        self.checks = _Program.of(program)
        self.now = now
        self.columns = columns
        self.outcomes: list[Outcome] = []
        self.prepared: list[Prepared] = []

    def add(self, records: Sequence[MemberImportRecord | RecordError]) -> None:
        for record in records:
            index = len(self.outcomes)
            if isinstance(record, RecordError):
                self.outcomes.append(Outcome("error", field=record.field, reason=record.reason))
                continue
            try:
                item = _prepare(self.checks, index, record, self.now)
            except InvalidInput as exc:
                name = exc.field or "row"
                if self.columns:
                    location = tuple(int(p) if p.isdigit() else p for p in name.split("."))
                    name = column_of(location, record.model_dump(mode="json"))
                self.outcomes.append(Outcome("error", field=name, reason=exc.detail))
                continue
            self.outcomes.append(item.outcome)
            self.prepared.append(item)

    def batch(self, labels: Sequence[str]) -> Batch:
        """The batch of the records added; ``labels`` name them, in order."""
        return Batch(self.now, self.outcomes, _without_duplicates(self.prepared, labels))


def _prepare(checks: _Program, index: int, record: MemberImportRecord, now: datetime) -> Prepared:
    """InvalidInput names the field at fault."""
    registered = record.registered_at or now
    row, identifiers = member_service.build(checks.context, record.member_create(), registered)
    row["updated_at"] = now
    stored = {i["kind"]: i["value"] for i in identifiers}
    given = [(kind, stored[kind]) for kind in IDENTIFIER_KINDS if getattr(record, kind)]
    outcome = Outcome("created", member_id=row["id"])
    lots = _lots(checks, record, now, outcome)
    tier = None
    if record.tier is not None:
        if checks.tiers is None:
            raise InvalidInput("the program has no tier ladder", field="tier")
        if record.tier.id not in checks.tiers:
            known = ", ".join(checks.tiers)
            raise InvalidInput(f"no tier {record.tier.id!r} on the ladder ({known})", field="tier")
        tier = (record.tier.id, record.tier.since or registered)
    return Prepared(
        index,
        record,
        row,
        identifiers,
        given,
        lots,
        _consent_changes(record.consents),
        tier,
        outcome,
    )


def _lots(checks: _Program, record: MemberImportRecord, now: datetime, outcome: Outcome) -> Lots:
    lots: Lots = {}
    for index, lot in enumerate(record.points):
        currency = lot.currency or checks.points
        if currency not in checks.currencies:
            raise InvalidInput(
                f"currency {currency!r} is not one of the program's {checks.currencies}",
                field=f"points.{index}.currency",
            )
        expires = lot.expires_at
        if lot.expires_on is not None:
            expires = _end_of(lot.expires_on, checks.zone)
        if expires is not None and expires <= now:
            outcome.expired[currency] = outcome.expired.get(currency, 0) + lot.amount
            when = f"last day {lot.expires_on}" if lot.expires_on else expires.isoformat()
            outcome.notes.append(f"{lot.amount} {currency} had expired ({when}): not imported")
            continue
        lots[(currency, expires)] = lots.get((currency, expires), 0) + lot.amount
    return lots


@lru_cache(maxsize=8192)
def _end_of(day: date, zone: tzinfo) -> datetime:
    """The end of a lot's last day, there: the points may be spent through that day. A
    file's lots share a few hundred dates, so each is worked out once."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)


def _without_duplicates(prepared: list[Prepared], names: Sequence[str]) -> list[Prepared]:
    """A record giving an identifier an earlier record of the batch gives is refused: two
    rows for one person are a mistake in the file, not two members."""
    first: dict[tuple[str, str], int] = {}
    kept: list[Prepared] = []
    for item in prepared:
        clash = next((pair for pair in item.given if pair in first), None)
        if clash is not None:
            item.outcome.status = "error"
            item.outcome.member_id = None
            item.outcome.field = clash[0]
            item.outcome.reason = f"the same {clash[0]} as {names[first[clash]]}"
            item.outcome.notes.clear()
            item.outcome.expired.clear()
            continue
        for pair in item.given:
            first[pair] = item.index
        kept.append(item)
    return kept


def _consent_changes(consents: Sequence[ImportedConsent]) -> list[tuple[datetime, ConsentChange]]:
    """The consents as changes from the source ``import``, oldest first (one date keeps
    the record's order). The old system's e-mail opt-in stands: it is taken as confirmed,
    so no confirmation message goes to imported members."""
    changes = [
        (
            consent.at,
            _change(consent.channel, consent.purpose, consent.granted, consent.text_version),
        )
        for consent in consents
    ]
    changes.sort(key=lambda pair: pair[0])
    return changes


@lru_cache(maxsize=1024)
def _change(channel: str, purpose: str, granted: bool, text_version: str | None) -> ConsentChange:
    """One change object per distinct consent (members of a file share a few): built from
    a checked record, so not validated again, and never changed by its readers."""
    return ConsentChange.model_construct(
        channel=channel,  # type: ignore[arg-type]  # a checked record's channel
        purpose=Purpose(purpose),
        granted=granted,
        source=SOURCE,
        text_version=text_version,
        confirmed=True,
    )
