"""Settings from the environment (prefix ``KOPILKA_``) with working defaults."""

from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./kopilka.db"

# The engine is asynchronous throughout; a URL naming only the database gets its async driver.
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def with_async_driver(url: str) -> str:
    """``sqlite:///x.db`` → ``sqlite+aiosqlite:///x.db``, ``postgresql://…`` →
    ``postgresql+asyncpg://…``; a URL that already names a driver is left alone."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    return f"{_ASYNC_DRIVERS.get(scheme, scheme)}://{rest}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KOPILKA_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    # A key's principal is cached this long per process, sparing the look-up of its hash;
    # every request still checks in its own transaction that the key was not revoked.
    api_key_cache_seconds: float = 30.0
    # Connections kept open per process; more than the concurrent requests a process serves,
    # since opening a PostgreSQL connection costs more than a whole purchase.
    db_pool_size: int = 20
    # The largest request body accepted (413 beyond it): a batch of 1,000 purchases with a
    # few lines each is about 1 MB. The body is buffered (up to this size) only after the
    # API key was checked.
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # FastAPI's native OpenTelemetry tracing, metrics and logs, for a configured SDK.
    opentelemetry: bool = False

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        return with_async_driver(url)


@lru_cache
def get_settings() -> Settings:
    return Settings()
