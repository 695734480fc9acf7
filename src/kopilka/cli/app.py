"""The ``kopilka`` command: one Typer app, one module per command group."""

import typer

from kopilka.cli import (
    analytics,
    coupons,
    crm,
    db,
    jobs,
    journeys,
    keys,
    ledger,
    members,
    messages,
    messaging,
    program,
    recommendations,
    segments,
    serve,
    staff,
    stores,
    support,
)
from kopilka.cli.common import fail
from kopilka.cli.demo import demo
from kopilka.cli.giftcards import app as giftcards_app
from kopilka.cli.imports import app as imports_app
from kopilka.cli.rewards import app as rewards_app
from kopilka.cli.webhooks import app as webhooks_app
from kopilka.cli.worker import app as worker_app
from kopilka.config import SettingsError, get_settings

app = typer.Typer(
    name="kopilka",
    no_args_is_help=True,
    add_completion=False,
    help="Kopilka loyalty-program engine.",
)


@app.callback()
def settings_first() -> None:
    """Kopilka loyalty-program engine."""
    # A bad KOPILKA_* variable is one readable line before any command runs, not a traceback.
    try:
        get_settings()
    except SettingsError as exc:
        fail(str(exc))


app.command("serve")(serve.serve)
app.command("demo")(demo)
app.add_typer(db.app, name="db")
app.add_typer(program.app, name="program")
app.add_typer(keys.app, name="keys")
app.add_typer(members.app, name="members")
app.add_typer(imports_app, name="import")
app.add_typer(ledger.app, name="ledger")
app.add_typer(jobs.app, name="jobs")
app.add_typer(coupons.app, name="coupons")
app.add_typer(rewards_app, name="rewards")
app.add_typer(giftcards_app, name="giftcards")
app.add_typer(worker_app, name="worker")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(messaging.app, name="messaging")
app.add_typer(messages.app, name="messages")
app.add_typer(staff.app, name="staff")
app.add_typer(stores.app, name="stores")
app.add_typer(segments.app, name="segments")
app.add_typer(journeys.app, name="journeys")
app.add_typer(crm.app, name="crm")
app.add_typer(support.app, name="support")
app.add_typer(analytics.app, name="analytics")
app.add_typer(recommendations.app, name="recommendations")
