"""``kopilka demo``: a working program with a year of data, verified, then served."""

import asyncio
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.apikeys.service import api_key_service
from kopilka.cli.common import console, err_console, run, with_engine
from kopilka.cli.serve import base_url, proxy_options, say, where_to_find
from kopilka.config import Settings
from kopilka.db import make_engine, reading, transaction
from kopilka.demo.crm import DEMO_PASSWORD, CrmSummary
from kopilka.demo.domain import SimulationConfig
from kopilka.demo.journeys import JourneyLine, journey_lines
from kopilka.demo.service import DEMO_SLUG, DemoSummary, demo_service
from kopilka.giftcards.audit import verify as verify_gift_cards
from kopilka.kit.clock import clock
from kopilka.kit.memory import few_collections
from kopilka.ledger.audit import verify
from kopilka.migrations.runner import upgrade
from kopilka.programs.service import program_service


def _print_summary(summary: DemoSummary) -> None:
    accounts = summary.accounts
    table = Table(title="Demo program after one simulated year", show_header=False)
    table.add_row("members", f"{summary.members:,}")
    table.add_row("purchases", f"{summary.purchases:,}")
    table.add_row("returns", f"{summary.returns:,}")
    table.add_row("redemptions", f"{summary.redemptions:,}")
    table.add_row("points issued (net of returns)", f"{-accounts.get('issued', 0):,}")
    table.add_row("points redeemed", f"{accounts.get('redeemed', 0):,}")
    table.add_row("points expired", f"{accounts.get('expired', 0):,}")
    table.add_row("points pending (return window)", f"{accounts.get('pending', 0):,}")
    table.add_row("points available", f"{accounts.get('available', 0):,}")
    paying, points = summary.paid_with_points
    table.add_row("purchases paid partly with points", f"{paying:,} ({points:,} points)")
    table.add_row(
        "coupon codes issued / used",
        f"{summary.codes_issued:,} / {summary.codes_used:,} "
        f"({summary.coupon_discount / 100:,.2f} off)",
    )
    console.print(table)
    console.print(
        "top members by available points: "
        + ", ".join(f"{name} ({points:,})" for name, points in summary.top_members)
    )
    console.print(
        "points earned by rule: "
        + ", ".join(f"{rule} {points:,}" for rule, points in summary.earned_by_rule.items())
    )
    if summary.benefits:
        console.print(
            "benefits granted: "
            + ", ".join(f"{kind} {count:,}" for kind, count in summary.benefits.items())
        )
    if summary.rewards:
        console.print(
            "rewards taken from the shop: "
            + ", ".join(f"{key} {count:,}" for key, count in summary.rewards.items())
        )
    if summary.tiers:
        entry = summary.members - sum(summary.tiers.values())
        console.print(
            f"tiers: {entry:,} on the entry tier, "
            + ", ".join(f"{tier} {count:,}" for tier, count in summary.tiers.items())
        )


def _print_journeys(lines: list[JourneyLine], days: int) -> None:
    """What each ready journey did over its days, one line each."""
    if not lines:
        return
    console.print(f"journeys over the last {days} simulated days:")
    for line in lines:
        did = [f"{line.entered:,} entered"]
        if line.held_out:
            did.append(f"{line.held_out:,} held out")
        did += [
            f"{count:,} {what}"
            for count, what in (
                (line.sent, "messages"),
                (line.points, "points"),
                (line.coupons, "coupons"),
                (line.offers, "offers"),
            )
            if count
        ]
        console.print(f"  {line.key}: {', '.join(did)}{_conversion(line)}", highlight=False)


def _conversion(line: JourneyLine) -> str:
    """The runs that reached the goal, against the held-out members' conversion."""
    if not line.has_goal or line.conversion is None:
        return ""
    text = f"; {line.converted:,} converted ({line.conversion:.0%}"
    if line.holdout_conversion is not None:
        text += f", held out {line.holdout_conversion:.0%}"
    return text + ")"


async def _segment_sizes(engine: AsyncEngine, program_id: UUID) -> dict[str, int]:
    async with reading(engine) as conn:
        program = await program_service.get(conn, program_id)
    return await demo_service.finish_crm(engine, program)


def _print_crm(crm: CrmSummary) -> None:
    console.print(
        f"support desk: {sum(crm.tickets.values())} tickets ("
        + ", ".join(f"{status} {n}" for status, n in sorted(crm.tickets.items()))
        + f"), {crm.interactions} calls logged, {crm.answers} survey answers"
    )
    console.print(f"staff (password [bold]{DEMO_PASSWORD}[/bold]):")
    for member in crm.staff:
        stores = f" at {', '.join(member.stores)}" if member.stores else ""
        console.print(f"  {member.email} — {member.role}{stores}", highlight=False)


def serving_hints(host: str, port: int, key: str) -> list[str]:
    """Where the demo's API is and a first request to paste: the command on a line of its
    own, never wrapped, so that it pastes as one command."""
    return [
        *where_to_find(host, port),
        "try it:",
        f'  curl -H "Authorization: Bearer {key}" {base_url(host, port)}/v1/health',
    ]


def web_hints(host: str, port: int, member_email: str | None, settings: Settings) -> list[str]:
    """Where the console and the members' app are, and whom to sign in as."""
    url = base_url(host, port)
    mail = (
        f"the SMTP server at {settings.smtp_host}:{settings.smtp_port}"
        if settings.smtp_host
        else f"an .eml file in {settings.mail_outbox_dir}"
    )
    lines = [
        f"staff console: {url}/console/",
        f"  sign in as owner@demo-cafe.example, password {DEMO_PASSWORD} (other roles above)",
        f"members' app:  {url}/app/{DEMO_SLUG}/",
    ]
    if member_email:
        lines.append(f"  sign in as {member_email}: the one-time code arrives as {mail}")
    return lines


def demo(
    database: Path = typer.Option(Path("kopilka-demo.db"), help="SQLite file (recreated)."),
    members: int = typer.Option(500, min=1, max=1_000_000),
    days: int = typer.Option(365, min=1, max=3650),
    seed: int = typer.Option(7),
    journey_days: int = typer.Option(
        30,
        min=0,
        max=3650,
        help="Days before the end the ready journeys are published and run from "
        "(each simulated day with journeys costs more than one without).",
    ),
    serve: bool = typer.Option(True, help="Serve the API when done."),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
) -> None:
    """Create a demo program on a fresh SQLite file, simulate a year of members and
    purchases through the engine, verify the ledger, then serve the API."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    url = f"sqlite+aiosqlite:///{database}"
    upgrade(url)
    start = (datetime.now(UTC) - timedelta(days=days)).date()
    config = SimulationConfig(members=members, days=days, start=start, seed=seed)

    async def work(
        engine: AsyncEngine,
    ) -> tuple[
        DemoSummary, CrmSummary, dict[str, list[str]], str, UUID, str | None, list[JourneyLine]
    ]:
        program = await demo_service.create_program(engine, base_url(host, port))
        with Progress(
            TextColumn("simulating {task.fields[day]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("days", total=days, day="")
            await demo_service.run(
                engine,
                program,
                config,
                progress=lambda _: bar.advance(task, 1),
                journeys_from=max(days - journey_days, 0) if journey_days else days + 1,
            )
        summary = await demo_service.summary(engine, program)
        journeys = await journey_lines(engine, program)
        crm = await demo_service.run_crm(engine, program, seed)
        async with reading(engine, snapshot=True) as conn:
            problems = await verify(conn, program.id)
            # The gift cards the shop issued keep their own journal.
            cards = await verify_gift_cards(conn, program.id)
            problems |= {f"gift cards: {name}": found for name, found in cards.items()}
        async with transaction(engine) as conn:
            key, _ = await api_key_service.create(
                conn, program.id, name="demo admin", scopes=["admin"], now=clock.now()
            )
        member_email = await demo_service.member_to_sign_in(engine, program)
        return summary, crm, problems, key, program.id, member_email, journeys

    with few_collections():
        summary, crm, problems, key, program_id, member_email, journeys = run(
            with_engine(url, work)
        )
    _print_summary(summary)
    _print_journeys(journeys, min(journey_days, days))
    _print_crm(crm)
    failed = [name for name, found in problems.items() if found]
    if failed:
        err_console.print(f"[red]ledger verification failed:[/red] {', '.join(failed)}")
        sys.exit(1)
    console.print("[green]ledger and gift cards verified[/green]: every invariant holds")
    say(f"API key (admin): {key}")
    settings = _demo_settings(url, database)
    delivered, left = run(with_engine(url, lambda engine: _deliver(engine, settings, program_id)))
    say(
        f"worker: {delivered.stamped:,} domain events delivered to "
        f"{', '.join(delivered.consumers)}; {left:,} left undelivered"
    )
    _print_messages(delivered.messages, settings)
    for line in run(with_engine(url, lambda engine: _analytics(engine, program_id))):
        say(line)
    sizes = run(with_engine(url, lambda engine: _segment_sizes(engine, program_id)))
    say("segments: " + ", ".join(f"{key} {count:,}" for key, count in sizes.items()))
    if not serve:
        # What `kopilka serve` on this file will offer.
        for line in web_hints(host, port, member_email, settings):
            say(line)
        return
    for line in serving_hints(host, port, key):
        say(line)
    for line in web_hints(host, port, member_email, settings):
        say(line)
    say("the worker runs next to the API: events, webhooks and scheduled jobs")
    run(_serve_with_worker(settings, host, port))


def _demo_settings(url: str, database: Path) -> Settings:
    """The demo's settings: e-mail to the SMTP server in KOPILKA_SMTP_HOST if one is set,
    else into a mail folder next to the database file (one .eml per message)."""
    settings = Settings(database_url=url)
    if settings.smtp_host is None and settings.mail_outbox_dir is None:
        outbox = database.parent / f"{database.stem}-mail"
        shutil.rmtree(outbox, ignore_errors=True)
        settings = settings.model_copy(update={"mail_outbox_dir": str(outbox)})
    return settings


def _print_messages(counts: dict[tuple[str, str, str], int], settings: Settings) -> None:
    """The messages the year's last days made, by kind, and where the e-mail went."""
    if not counts:
        say("messages: none (notifications come from the last days' events)")
        return
    table = Table(title="Messages to members (the last days' events)")
    for column in ("kind", "channel", "status", "messages"):
        table.add_column(column, justify="right" if column == "messages" else "left")
    for (kind, channel, status), count in sorted(counts.items()):
        table.add_row(kind, channel, status, f"{count:,}")
    console.print(table)
    where = (
        f"the SMTP server at {settings.smtp_host}:{settings.smtp_port}"
        if settings.smtp_host
        else f"{settings.mail_outbox_dir} (one .eml file per message)"
    )
    say(f"e-mail went to {where}")


@dataclass(frozen=True)
class _Delivered:
    stamped: int
    consumers: list[str]
    messages: dict[tuple[str, str, str], int]


async def _deliver(
    engine: AsyncEngine, settings: Settings, program_id: UUID
) -> tuple[_Delivered, int]:
    """Deliver the year's events before serving, so the demo starts with none pending."""
    from kopilka.messaging.service import messaging_service
    from kopilka.worker.service import worker_service
    from kopilka.worker.setup import open_worker

    async with open_worker(engine, settings, jobs=False) as (worker, plan):
        report = await worker.drain()
    async with reading(engine) as conn:
        status = await worker_service.status(conn)
        program = await program_service.get(conn, program_id)
        messages = await messaging_service.counts_by_kind(conn, program)
    return _Delivered(report.stamped, plan.consumers, messages), status.undelivered


async def _analytics(engine: AsyncEngine, program_id: UUID) -> list[str]:
    """What the analytics say of the simulated year: the last 30 days' KPIs, the lifetime
    models fitted on the whole history, and the weekend-bonus experiment's uplift."""
    from kopilka.analytics.experiment_service import experiment_service
    from kopilka.analytics.kpi_report_service import kpi_report_service
    from kopilka.analytics.tasks import refit_program
    from kopilka.errors import KopilkaError

    now = clock.now()
    refit = await refit_program(engine, program_id, now, force=True)
    async with reading(engine) as conn:
        program = await program_service.get(conn, program_id)
        kpis = (await kpi_report_service.kpis(conn, program, now)).total
        try:
            report = await experiment_service.report(conn, program, "weekend-bonus", now)
        except KopilkaError:
            report = None
    money = program.settings.money_currency
    lines = [
        f"KPIs, last 30 days: {kpis.purchases:,} checks, {_share(kpis.conversion)} by members; "
        f"average check {_money(kpis.average_check_members, money)} for members, "
        f"{_money(kpis.average_check_nonmembers, money)} for others; "
        f"bonus conversion {_share(kpis.bonus_conversion)}",
        f"CLV: {refit.line()}",
    ]
    if report is not None and report.analysis.uplifts:
        uplift = report.analysis.uplifts[0]
        interval = uplift.cuped if uplift.preferred == "cuped" and uplift.cuped else uplift.absolute
        lines.append(
            f"experiment weekend-bonus: {uplift.arm} vs {uplift.versus}, revenue per member "
            f"{_money(round(interval.estimate), money)} "
            f"(95 % interval {_money(round(interval.low), money)} … "
            f"{_money(round(interval.high), money)}), ROI {_money(uplift.roi, money)}"
        )
    return lines


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _money(minor: int | None, currency: str) -> str:
    return "—" if minor is None else f"{minor / 100:,.2f} {currency}"


async def _serve_with_worker(settings: Settings, host: str, port: int) -> None:
    """The API and the worker in one process and one event loop, sharing the engine: one
    command, one SQLite writer, and Ctrl-C stops both (the worker finishes its batch)."""
    # The web application and the worker load only for the commands that run them: every
    # other command (an import of a year of history, a ledger check) starts faster.
    import uvicorn

    from kopilka.app import create_app
    from kopilka.worker.setup import open_worker

    engine = make_engine(settings.database_url)
    try:
        app = create_app(settings, engine=engine)
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", **proxy_options(settings)
        )
        server = uvicorn.Server(config)
        async with open_worker(engine, settings) as (worker, _):
            stop = asyncio.Event()
            delivering = asyncio.create_task(worker.run(stop))
            try:
                await server.serve()
            finally:
                stop.set()
                await delivering
    finally:
        await engine.dispose()
