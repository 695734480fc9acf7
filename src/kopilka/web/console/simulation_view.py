"""A simulation report (``POST /v1/program/simulate``'s answer) as the page shows it: one row
per rule and currency with the version in force next to the draft, the totals, and a
chart of what each rule issues in the program's points currency. Pure."""

from dataclasses import dataclass

from markupsafe import Markup

from kopilka.programs.schemas import ProgramSettings
from kopilka.programs.version_schemas import SimulationReport
from kopilka.web.charts import Point, bar_chart
from kopilka.web.i18n import Formats
from kopilka.web.rendering import gettext


@dataclass(frozen=True)
class SimulatedRow:
    rule_id: str
    currency: str
    fired_live: int
    fired_draft: int
    members_live: int
    members_draft: int
    live: int
    draft: int
    cost_live: str  # what the issued amount is worth in money ("—": no way to tell)
    cost_draft: str

    @property
    def delta(self) -> int:
        return self.draft - self.live


@dataclass(frozen=True)
class SimulationView:
    report: SimulationReport
    rows: list[SimulatedRow]
    chart: Markup | None
    chart_currency: str


def _worth(amount: int, currency: str, settings: ProgramSettings, fmt: Formats) -> str:
    """Money a currency's ``amount`` stands for: a money-like currency is money already;
    points are worth what they pay at the till, when the program lets them pay."""
    kinds = {c.code: c.kind for c in settings.currencies}
    if kinds.get(currency) == "money":
        return fmt.money(amount, settings.money_currency)
    paying = settings.points_payment
    if paying is not None and paying.currency == currency:
        # Floor, as the till pays: only whole minor units.
        return fmt.money(amount * paying.money // paying.points, settings.money_currency)
    return "—"


def simulation_view(
    report: SimulationReport, settings: ProgramSettings, fmt: Formats, language: str
) -> SimulationView:
    rows = [
        SimulatedRow(
            rule_id=rule.rule_id,
            currency=currency,
            fired_live=rule.fired_published,
            fired_draft=rule.fired_draft,
            members_live=rule.members_published,
            members_draft=rule.members_draft,
            live=rule.published.get(currency, 0),
            draft=rule.draft.get(currency, 0),
            cost_live=_worth(rule.published.get(currency, 0), currency, settings, fmt),
            cost_draft=_worth(rule.draft.get(currency, 0), currency, settings, fmt),
        )
        for rule in report.rules
        for currency in sorted(set(rule.published) | set(rule.draft)) or [""]
    ]
    points = settings.points_currency()
    charted = [row for row in rows if row.currency == points]
    live, draft = gettext(language, "in force"), gettext(language, "draft")
    bars = [
        Point(f"{row.rule_id} · {side}", value, fmt.number(value))
        for row in charted
        for side, value in ((live, row.live), (draft, row.draft))
    ]
    title = gettext(
        language, "Issued per rule in %(currency)s: version in force and draft", currency=points
    )
    return SimulationView(report, rows, bar_chart(title, bars) if bars else None, points)
