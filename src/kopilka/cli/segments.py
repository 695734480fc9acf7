"""``kopilka segments``: Segments."""

import typer

app = typer.Typer(help="Segments: count, refresh, export.", no_args_is_help=True)
