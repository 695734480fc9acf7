"""``kopilka serve``: the API."""

import typer
import uvicorn

from kopilka.config import get_settings


def serve(
    host: str = typer.Option(None, help="Default: KOPILKA_HOST or 127.0.0.1."),
    port: int = typer.Option(None, help="Default: KOPILKA_PORT or 8000."),
    workers: int = typer.Option(1, help="Processes (PostgreSQL only; SQLite has one writer)."),
) -> None:
    """Serve the HTTP API (docs at /docs)."""
    settings = get_settings()
    uvicorn.run(
        "kopilka.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level="warning",
    )
