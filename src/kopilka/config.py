"""Settings from the environment (prefix ``KOPILKA_``) with working defaults."""

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
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
    # A key's principal is cached this long per process, sparing the look-up of its hash.
    # Revocation still takes effect at once: a process told of revocations by PostgreSQL
    # drops the key when notified; any other checks the key in every request's transaction.
    api_key_cache_seconds: float = 30.0
    # Sign-in attempts per client address and minute, per process: each costs an Argon2
    # hash (about 50 ms of CPU), so they are bounded before any is checked.
    sign_in_per_minute: int = Field(default=20, ge=1, le=10_000)
    # The proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (comma-separated
    # addresses, "*" for any). None by default: a client on this machine could otherwise
    # claim any address and slip past the per-address sign-in limits.
    trusted_proxies: str = ""
    # Connections kept open per process; more than the concurrent requests a process serves,
    # since opening a PostgreSQL connection costs more than a whole purchase.
    db_pool_size: int = 20
    # The largest request body accepted (413 beyond it): a batch of 1,000 purchases with a
    # few lines each is about 1 MB. The body is buffered (up to this size) only after the
    # API key was checked.
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # FastAPI's native OpenTelemetry tracing, metrics and logs, for a configured SDK.
    opentelemetry: bool = False

    # --- kopilka worker (docs/worker.md) ---
    # Events a worker takes from one partition per transaction.
    worker_batch_size: int = 500
    # How long an idle worker waits before it looks for new events again.
    worker_poll_seconds: float = 0.5
    # A consumer's failing event is tried this many times, waiting base × 2^(n-1) seconds
    # (at most the maximum) between tries, then parked until replayed.
    worker_max_attempts: int = 10
    worker_retry_base_seconds: float = 1.0
    worker_retry_max_seconds: float = 3600.0
    # Delivered outbox rows older than this many days are deleted daily; 0 keeps them.
    outbox_retention_days: int = 0
    # NATS JetStream sink: off unless a URL is given (nats://127.0.0.1:4222).
    events_url: str | None = None
    events_stream: str = "KOPILKA"
    events_subject_prefix: str = "kopilka"
    # Scheduled jobs: the frequent ones every so many seconds, the daily ones at this local
    # time of each program's time zone; names in ``jobs_disabled`` (comma-separated) never run.
    jobs_frequent_seconds: int = 300
    jobs_daily_at: str = "03:00"
    jobs_disabled: str = ""
    # Webhooks: the time a receiver gets per request, requests in flight per worker, and how
    # long an endpoint may fail without one success before it is disabled.
    webhook_timeout_seconds: float = 10.0
    webhook_concurrency: int = 8
    webhook_disable_after_hours: float = 120.0
    # Webhook URLs must be https on a public address: whoever holds an admin key or the
    # console's integrations permission chooses them, and the worker POSTs from inside the
    # network (and shows the answer). Development and closed networks may allow plain http
    # and private, loopback and link-local addresses.
    webhook_allow_private_urls: bool = False

    # --- messages: e-mail over SMTP (docs/messaging.md); no host, no e-mail ---
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    # starttls (submission, port 587), tls (implicit TLS, port 465) or none (a local relay).
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Kopilka <noreply@localhost>"
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)

    # --- messages: SMS through a provider's HTTP API; no provider, no SMS ---
    sms_provider: Literal["generic", "smsru"] | None = None
    # The gateway's URL (SMS.ru's own by default for ``smsru``).
    sms_url: str | None = None
    sms_token: SecretStr | None = None  # a bearer token (generic), the api_id (smsru)
    sms_from: str | None = None
    # The generic gateway: a JSON or form body, its field names (to, text, from, reference)
    # where they differ, and the key of the message id in its JSON answer.
    sms_format: Literal["json", "form"] = "json"
    sms_fields: dict[str, str] = Field(default_factory=dict)
    sms_answer_id: str = "id"
    sms_timeout_seconds: float = Field(default=10.0, gt=0)

    # --- messages: web push (``kopilka messaging vapid-keys`` makes the pair) ---
    vapid_private_key: SecretStr | None = None
    vapid_public_key: str | None = None
    # How push services reach whoever runs the program (RFC 8292): mailto: or https:.
    vapid_subject: str = "mailto:admin@localhost"
    push_timeout_seconds: float = Field(default=10.0, gt=0)
    # Push endpoints must be https on a public address: a subscription is what a till or an
    # app hands over, and the worker POSTs to it. Tests and closed networks may allow more.
    push_allow_private_endpoints: bool = False

    # --- messages: sending ---
    # E-mail goes to files here (one .eml per message) when no SMTP server is configured.
    mail_outbox_dir: str | None = None
    message_concurrency: int = Field(default=8, ge=1, le=256)
    # Throttling per provider, messages per second (0: as fast as the provider answers).
    email_per_second: float = Field(default=0, ge=0)
    sms_per_second: float = Field(default=0, ge=0)
    push_per_second: float = Field(default=0, ge=0)
    # Members a broadcast turns into messages per round of the sender.
    broadcast_chunk: int = Field(default=500, ge=1, le=10_000)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        return with_async_driver(url)


@lru_cache
def get_settings() -> Settings:
    """The settings; ``SettingsError`` naming the variable if one is invalid."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "KOPILKA_" + "_".join(str(part) for part in first["loc"][:1]).upper()
        raise SettingsError(f"{name}: {first['msg']}") from None


class SettingsError(ValueError):
    """An environment variable (or ``.env`` entry) that Kopilka cannot use."""
