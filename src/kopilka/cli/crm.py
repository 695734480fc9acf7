"""``kopilka crm``: Member facts."""

import typer

app = typer.Typer(help="Member facts: rebuild from history.", no_args_is_help=True)
