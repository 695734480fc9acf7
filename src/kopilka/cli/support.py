"""``kopilka support``: Tickets and surveys.."""

import typer

app = typer.Typer(help="Tickets and surveys.", no_args_is_help=True)
