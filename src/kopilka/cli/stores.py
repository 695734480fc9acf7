"""``kopilka stores``: Stores."""

import typer

app = typer.Typer(help="Stores: import from CSV, list.", no_args_is_help=True)
