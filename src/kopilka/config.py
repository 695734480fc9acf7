"""Settings from the environment (prefix ``KOPILKA_``) with working defaults."""

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./kopilka.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KOPILKA_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    # API keys are checked against the database at most this often per key and process;
    # a revoked key stops working within this many seconds.
    api_key_cache_seconds: float = 30.0
    # Connections kept open per process; more than the concurrent requests a process serves,
    # since opening a PostgreSQL connection costs more than a whole purchase.
    db_pool_size: int = 20


@lru_cache
def get_settings() -> Settings:
    return Settings()
