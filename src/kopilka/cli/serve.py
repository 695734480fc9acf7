"""``kopilka serve``: the API."""

import sys
from typing import Any

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.cli.common import console, run, with_engine
from kopilka.config import Settings, get_settings

# Hosts that mean "every interface": a browser on this machine reaches them on loopback.
_ANY_HOST = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def base_url(host: str, port: int) -> str:
    """The URL a browser on this machine opens to reach a server bound to ``host``."""
    host = _ANY_HOST.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def where_to_find(host: str, port: int) -> list[str]:
    """What to print when the API starts: where it listens, its docs and its OpenAPI."""
    url = base_url(host, port)
    if host in _ANY_HOST:
        bound = f"[{host}]" if ":" in host else host or "0.0.0.0"
        listening = f"{bound}:{port} (all interfaces)"
    else:
        listening = url
    return [
        f"Kopilka API listening on {listening}; press Ctrl+C to stop",
        f"  interactive docs: {url}/docs",
        f"  OpenAPI:          {url}/openapi.json",
    ]


def say(line: str) -> None:
    """One line to standard output, never wrapped, no markup, seen at once even when piped
    (a server's first lines are read by whoever waits for it)."""
    console.print(line, soft_wrap=True, highlight=False, markup=False)
    sys.stdout.flush()


async def _ready(_engine: AsyncEngine) -> None:
    return None


def serve(
    host: str = typer.Option(None, help="Default: KOPILKA_HOST or 127.0.0.1."),
    port: int = typer.Option(None, help="Default: KOPILKA_PORT or 8000."),
    workers: int = typer.Option(1, help="Processes (PostgreSQL only; SQLite has one writer)."),
) -> None:
    """Serve the HTTP API (docs at /docs)."""
    settings = get_settings()
    # A missing or unmigrated database is one readable line now, not a traceback per request.
    run(with_engine(settings.database_url, _ready))
    host = host or settings.host
    port = port or settings.port
    for line in where_to_find(host, port):
        say(line)
    import uvicorn  # only here: the other commands start without the web server

    uvicorn.run(
        "kopilka.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        **proxy_options(settings),
    )


def proxy_options(settings: Settings) -> dict[str, Any]:
    """Believe forwarded client addresses and schemes only from the configured proxies."""
    trusted = settings.trusted_proxies.strip()
    if not trusted:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": trusted}
