"""One typed Settings object, read from BASTION_* variables (and the few names other tools own).

Every setting is declared once in `SETTINGS`: its variable, its parser, its default and a line of help.
`bastiond --help` prints that table, and a bad value raises `SettingsError` naming the variable and what
it expects, which the command line prints as one line.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class SettingsError(ValueError):
    pass


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"expected an integer from {lo} to {hi}") from None
        if not lo <= value <= hi:
            raise SettingsError(f"expected an integer from {lo} to {hi}")
        return value

    parse.expects = f"integer {lo}..{hi}"  # type: ignore[attr-defined]
    return parse


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise SettingsError(f"expected one of {', '.join(options)}")
        return value

    parse.expects = " | ".join(options)  # type: ignore[attr-defined]
    return parse


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError("expected true or false")


_bool.expects = "true | false"  # type: ignore[attr-defined]


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
        if scheme not in schemes:
            raise SettingsError(f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}")
        return raw

    parse.expects = " | ".join(s + "://..." for s in schemes)  # type: ignore[attr-defined]
    return parse


def _text(raw: str) -> str:
    if not raw.strip():
        raise SettingsError("expected a non-empty value")
    return raw.strip()


_text.expects = "text"  # type: ignore[attr-defined]


def _path(raw: str) -> Path:
    return Path(_text(raw)).expanduser()


_path.expects = "a path"  # type: ignore[attr-defined]


def _list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


_list.expects = "comma-separated list"  # type: ignore[attr-defined]


def _domains(raw: str) -> tuple[str, ...]:
    domains = tuple(item.lower().lstrip("@") for item in _list(raw))
    for domain in domains:
        if "." not in domain or "@" in domain or "/" in domain:
            raise SettingsError("expected comma-separated email domains like example.com")
    return domains


_domains.expects = "comma-separated email domains"  # type: ignore[attr-defined]


def _networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in _list(raw))
    except ValueError:
        raise SettingsError("expected comma-separated IP addresses or CIDR networks") from None


_networks.expects = "comma-separated IPs or CIDRs"  # type: ignore[attr-defined]


def _origins(raw: str) -> tuple[str, ...]:
    origins = _list(raw)
    for origin in origins:
        if origin == "null" or "://" not in origin:
            raise SettingsError("expected comma-separated origins like https://example.com ('null' is never allowed)")
    return tuple(o.rstrip("/") for o in origins)


_origins.expects = "comma-separated origins"  # type: ignore[attr-defined]


def _secret_key(raw: str) -> str:
    if len(raw) < 32:
        raise SettingsError("expected at least 32 characters (e.g. the output of `openssl rand -base64 32`)")
    return raw


_secret_key.expects = "at least 32 random characters"  # type: ignore[attr-defined]


def _passphrase(raw: str) -> str:
    if len(raw) < 12:
        raise SettingsError("expected a passphrase of at least 12 characters")
    return raw


_passphrase.expects = "at least 12 characters"  # type: ignore[attr-defined]


def _duration(raw: str) -> int:
    """Seconds, from `90`, `30m`, `6h` or `1d`; at least a minute."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (raw[:-1], units[raw[-1]]) if raw and raw[-1] in units else (raw, 1)
    try:
        seconds = int(number) * unit
    except ValueError:
        raise SettingsError("expected a duration such as 30m, 6h or 1d") from None
    if not 60 <= seconds <= 366 * 86400:
        raise SettingsError("expected a duration from 1m to 366d")
    return seconds


_duration.expects = "a duration: 30m, 6h, 1d"  # type: ignore[attr-defined]


def _check_webauthn(origins: tuple[str, ...], rp_id: str | None) -> None:
    """A browser makes passkeys only for an rp id that is its page's host or a domain above it (WebAuthn
    section 5.1.3), so a setting that breaks this would fail every registration: refuse it at start."""
    if rp_id and not origins:
        raise SettingsError("BASTION_WEBAUTHN_RP_ID needs BASTION_WEBAUTHN_ORIGINS (the origins passkeys are used on)")
    rp_id = rp_id or (urlsplit(origins[0]).hostname if origins else None)
    for origin in origins:
        host = urlsplit(origin).hostname or ""
        if host != rp_id and not host.endswith(f".{rp_id}"):
            raise SettingsError(f"BASTION_WEBAUTHN_ORIGINS: {origin} is not on the relying party id {rp_id}")


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "bastion"


def setting(
    env: str, parse: Callable[[str], Any], help: str, default: Any = None, factory: Any = None, secret: bool = False
) -> Any:
    meta = {"env": env, "parse": parse, "help": help}
    # A secret never shows in repr(), so logging the settings cannot leak it.
    if factory is not None:
        return field(default_factory=factory, metadata=meta, repr=not secret)
    return field(default=default, metadata=meta, repr=not secret)


@dataclass(frozen=True)
class Settings:
    host: str = setting("BASTION_HOST", _text, "address to listen on", "127.0.0.1")
    port: int = setting("BASTION_PORT", _int_range(0, 65535), "port to listen on", 8420)
    data_dir: Path = setting(
        "BASTION_DATA_DIR", _path, "where the embedded database, index and keys live", factory=_default_data_dir
    )
    database_url: str | None = setting(
        "BASTION_DATABASE_URL", _url("postgresql", "postgres", "sqlite"), "PostgreSQL URL; unset: SQLite in the data dir"
    )
    database_read_url: str | None = setting(
        "BASTION_DATABASE_READ_URL", _url("postgresql", "postgres"), "a PostgreSQL read replica"
    )
    database_pool_size: int = setting("BASTION_DATABASE_POOL_SIZE", _int_range(1, 200), "PostgreSQL pool size", 10)
    read_your_writes_ms: int = setting(
        "BASTION_READ_YOUR_WRITES_MS",
        _int_range(0, 600_000),
        "after a write, reads stay on the primary this long (with a read replica)",
        2000,
    )
    auto_migrate: bool = setting("BASTION_AUTO_MIGRATE", _bool, "apply migrations at start", True)
    redis_url: str | None = setting(
        "BASTION_REDIS_URL", _url("redis", "rediss", "unix"), "Redis URL; unset: in-process state"
    )
    redis_sentinels: tuple[str, ...] = setting(
        "BASTION_REDIS_SENTINELS", _list, "host:port of Redis Sentinels (instead of BASTION_REDIS_URL)", ()
    )
    redis_sentinel_master: str = setting(
        "BASTION_REDIS_SENTINEL_MASTER", _text, "the master name Sentinel watches", "bastion"
    )
    redis_prefix: str = setting(
        "BASTION_REDIS_PREFIX", _text, "prefix of every Redis key, so deployments can share one Redis", "bastion:"
    )
    vector_backend: str = setting("BASTION_VECTOR_BACKEND", _choice("local", "pinecone"), "vector store", "local")
    pinecone_api_key: str | None = setting("PINECONE_API_KEY", _text, "Pinecone API key", secret=True)
    pinecone_host: str | None = setting("PINECONE_HOST", _text, "Pinecone index host")
    vector_exact_max: int = setting(
        "BASTION_VECTOR_EXACT_MAX",
        _int_range(0, 100_000_000),
        "local vector store: namespaces up to this size are searched exactly, larger ones get an HNSW index",
        20_000,
    )
    secret_key: str | None = setting(
        "BASTION_SECRET_KEY", _secret_key,
        "with PostgreSQL and no Vault: encrypts the signing keys kept in the database", secret=True,
    )
    metrics_token: str | None = setting(
        "BASTION_METRICS_TOKEN", _secret_key,
        "GET /metrics then needs 'Authorization: Bearer <this>' (unset: /metrics is public)", secret=True,
    )
    signing_key_reload_s: int = setting(
        "BASTION_SIGNING_KEY_RELOAD_S", _int_range(1, 3600),
        "how often a daemon reads the signing keys again, to sign with a key rotated elsewhere", 60,
    )
    embed_model_dir: Path | None = setting(
        "BASTION_EMBED_MODEL_DIR", _path, "text embedding models, one directory per model (docs/embedders.md)"
    )
    embed_threads: int = setting(
        "BASTION_EMBED_THREADS", _int_range(1, 256), "ONNX Runtime threads for embedding text (the rest serve requests)", 1
    )
    backup_passphrase: str | None = setting(
        "BASTION_BACKUP_PASSPHRASE", _passphrase, "encrypts the archives of `bastiond backup`", secret=True,
    )
    backup_every_s: int | None = setting(
        "BASTION_BACKUP_EVERY", _duration, "take a backup this often into BASTION_BACKUP_DIR (unset: never)"
    )
    backup_keep: int = setting("BASTION_BACKUP_KEEP", _int_range(1, 10_000), "scheduled backups: keep the newest N", 7)
    backup_dir: Path | None = setting(
        "BASTION_BACKUP_DIR", _path, "where scheduled and API-started backups go (default: DATA_DIR/backups)"
    )
    vault_addr: str | None = setting("VAULT_ADDR", _url("http", "https"), "HashiCorp Vault address")
    vault_token: str | None = setting("VAULT_TOKEN", _text, "Vault token", secret=True)
    vault_kv_path: str = setting("BASTION_VAULT_PATH", _text, "KV v2 path of Bastion's secrets", "bastion")
    vault_kv_mount: str = setting("BASTION_VAULT_MOUNT", _text, "where Vault's KV v2 engine is mounted", "secret")
    vault_token_file: Path | None = setting(
        "BASTION_VAULT_TOKEN_FILE", _path, "a file holding the Vault token (as Vault Agent writes it)"
    )
    vault_k8s_role: str | None = setting(
        "BASTION_VAULT_K8S_ROLE", _text, "log in to Vault with Kubernetes auth as this role"
    )
    vault_k8s_mount: str = setting("BASTION_VAULT_K8S_MOUNT", _text, "where Vault's Kubernetes auth is mounted", "kubernetes")
    vault_k8s_jwt_path: Path = setting(
        "BASTION_VAULT_K8S_JWT_PATH",
        _path,
        "the service account token for Kubernetes auth",
        Path("/var/run/secrets/kubernetes.io/serviceaccount/token"),
    )
    log_level: str = setting(
        "BASTION_LOG_LEVEL", _choice("debug", "info", "warning", "error"), "log level", "info"
    )
    max_body_bytes: int = setting(
        "BASTION_MAX_BODY_BYTES", _int_range(1024, 1 << 30), "largest request body", 1 << 20
    )
    max_upsert_bytes: int = setting(
        "BASTION_MAX_UPSERT_BYTES", _int_range(1024, 1 << 30), "largest vector upsert body", 8 << 20
    )
    rate_limit_per_minute: int = setting(
        "BASTION_RATE_LIMIT_PER_MINUTE", _int_range(0, 10_000_000), "API requests per client IP (0: off)", 6000
    )
    auth_rate_limit_per_minute: int = setting(
        "BASTION_AUTH_RATE_LIMIT_PER_MINUTE",
        _int_range(0, 10_000_000),
        "login, refresh and register requests per client IP (0: off)",
        120,
    )
    cors_origins: tuple[str, ...] = setting("BASTION_CORS_ORIGINS", _origins, "origins allowed by CORS", ())
    trusted_proxies: tuple = setting(
        "BASTION_TRUSTED_PROXIES", _networks, "proxies whose X-Forwarded-For is believed", ()
    )
    registration: str = setting("BASTION_REGISTRATION", _choice("open", "closed"), "self-registration", "closed")
    jwt_issuer: str = setting("BASTION_JWT_ISSUER", _text, "the iss claim", "bastion")
    jwt_audience: str = setting("BASTION_JWT_AUDIENCE", _text, "the aud claim", "bastion-api")
    access_token_ttl_s: int = setting(
        "BASTION_ACCESS_TOKEN_TTL_S", _int_range(30, 86400), "access token lifetime", 900
    )
    refresh_token_ttl_s: int = setting(
        "BASTION_REFRESH_TOKEN_TTL_S", _int_range(300, 365 * 86400), "refresh token lifetime", 30 * 86400
    )
    refresh_reuse_grace_s: int = setting(
        "BASTION_REFRESH_REUSE_GRACE_S", _int_range(0, 300), "window in which a spent refresh token replays", 10
    )
    mfa_required_roles: tuple[str, ...] = setting(
        "BASTION_MFA_REQUIRED_ROLES", _list, "roles that must log in with a second factor (e.g. admin)", ()
    )
    oidc_issuer: str | None = setting(
        "BASTION_OIDC_ISSUER", _url("https", "http"), "single sign-on: the OpenID Connect provider's issuer URL"
    )
    oidc_client_id: str | None = setting("BASTION_OIDC_CLIENT_ID", _text, "single sign-on: this daemon's client id")
    oidc_client_secret: str | None = setting(
        "BASTION_OIDC_CLIENT_SECRET", _text, "single sign-on: this daemon's client secret", secret=True
    )
    oidc_allowed_domains: tuple[str, ...] = setting(
        "BASTION_OIDC_ALLOWED_DOMAINS", _domains,
        "single sign-on: email domains whose verified accounts may sign in the first time (linked or created)", (),
    )
    oidc_redirect_uri: str | None = setting(
        "BASTION_OIDC_REDIRECT_URI", _url("https", "http"),
        "single sign-on: the callback URL registered at the provider (default: this host's /ui/sso/callback)",
    )
    smtp_url: str | None = setting(
        "BASTION_SMTP_URL", _url("smtp", "smtp+starttls", "smtps"),
        "mail (password reset, email verification): smtp://[user:password@]host[:port] (STARTTLS when offered), "
        "smtp+starttls:// (STARTTLS required, port 587) or smtps:// (TLS from the start, port 465)", secret=True,
    )
    mail_from: str = setting("BASTION_MAIL_FROM", _text, "the From address of Bastion's mail", "Bastion <bastion@localhost>")
    public_url: str | None = setting(
        "BASTION_PUBLIC_URL", _url("https", "http"),
        "the web view's address as people reach it (https://bastion.example.com): the links in mail start with it",
    )
    webauthn_origins: tuple[str, ...] = setting(
        "BASTION_WEBAUTHN_ORIGINS", _origins,
        "passkeys: the web view's origins as browsers see them (https://bastion.example.com); unset: no passkeys", (),
    )
    webauthn_rp_id: str | None = setting(
        "BASTION_WEBAUTHN_RP_ID", _text,
        "passkeys: the relying party id, a domain every origin is on (default: the first origin's host)",
    )
    login_concurrency: int = setting(
        "BASTION_LOGIN_CONCURRENCY", _int_range(1, 64), "password hashes computed at once", 2
    )
    login_queue: int = setting(
        "BASTION_LOGIN_QUEUE", _int_range(0, 10_000), "password hashes waiting before 503", 64
    )
    event_history: int = setting(
        "BASTION_EVENT_HISTORY", _int_range(10, 10_000_000), "events kept for WebSocket resume", 10_000
    )
    ws_heartbeat_s: int = setting(
        "BASTION_WS_HEARTBEAT_S", _int_range(1, 3600), "seconds between the server's WebSocket pings", 30
    )
    ws_send_buffer: int = setting(
        "BASTION_WS_SEND_BUFFER",
        _int_range(1, 1_000_000),
        "messages queued for one WebSocket before the client is dropped as too slow",
        1024,
    )
    ws_messages_per_minute: int = setting(
        "BASTION_WS_MESSAGES_PER_MINUTE", _int_range(1, 1_000_000), "messages one WebSocket client may send", 120
    )
    keepalive_timeout_s: int = setting(
        "BASTION_KEEPALIVE_TIMEOUT_S",
        _int_range(1, 3600),
        "an idle connection, or one still sending its request's head, is closed after this long",
        75,
    )
    # 5 s: long enough for what routes traffic to notice /readyz failing and stop (a probe every 2 s
    # failing twice; Kubernetes spreading a removed endpoint to kube-proxy and the ingress in a second
    # or two), short enough for a rolling update; a second signal skips what is left.
    shutdown_drain_s: int = setting(
        "BASTION_SHUTDOWN_DRAIN_S",
        _int_range(0, 600),
        "on SIGTERM, /readyz fails and requests are still served this long, so load balancers move away first",
        5,
    )
    shutdown_timeout_s: int = setting(
        "BASTION_SHUTDOWN_TIMEOUT_S", _int_range(1, 600), "then, grace for requests in flight to finish", 20
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except SettingsError as exc:
                raise SettingsError(f"{f.metadata['env']}: {exc}") from None
        values.update(overrides)
        oidc = [values.get(name) for name in ("oidc_issuer", "oidc_client_id", "oidc_client_secret")]
        if any(oidc) and not all(oidc):
            raise SettingsError("BASTION_OIDC_ISSUER, BASTION_OIDC_CLIENT_ID and BASTION_OIDC_CLIENT_SECRET "
                                "go together: set all three for single sign-on, or none")
        if values.get("smtp_url") and not values.get("public_url"):
            # Never the Host header of the request that asked for the mail: anyone can send one, and the link
            # with the reset token would then point at their server.
            raise SettingsError("BASTION_SMTP_URL needs BASTION_PUBLIC_URL: the address the links in mail point to")
        _check_webauthn(values.get("webauthn_origins", ()), values.get("webauthn_rp_id"))
        return cls(**values)

    @property
    def passkeys(self) -> bool:
        return bool(self.webauthn_origins)

    @property
    def rp_id(self) -> str:
        """The WebAuthn relying party id: a passkey is bound to it, so changing it orphans every passkey."""
        return self.webauthn_rp_id or urlsplit(self.webauthn_origins[0]).hostname or ""

    @property
    def backups_path(self) -> Path:
        return self.backup_dir or self.data_dir / "backups"

    def to_env(self) -> dict[str, str]:
        """The variables that give these settings back: for a `bastiond` command the daemon runs itself
        (a scheduled backup), which must see what the daemon sees, overrides included."""
        env = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, bool):
                env[f.metadata["env"]] = "true" if value else "false"
            elif isinstance(value, tuple):
                env[f.metadata["env"]] = ",".join(str(v) for v in value)
            else:
                env[f.metadata["env"]] = str(value)
        return env

    @property
    def sqlite_path(self) -> Path:
        if self.database_url and self.database_url.startswith("sqlite://"):
            return Path(self.database_url.removeprefix("sqlite://"))
        return self.data_dir / "bastion.sqlite3"

    @property
    def uses_postgres(self) -> bool:
        return bool(self.database_url) and not self.database_url.startswith("sqlite://")


def describe() -> str:
    """The settings table for `bastiond --help`."""
    lines = ["settings (environment variables; unset means the default):"]
    for f in fields(Settings):
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        shown = "" if default in (None, ()) else f" [default: {default}]"
        expects = getattr(f.metadata["parse"], "expects", "")
        lines.append(f"  {f.metadata['env']:<36} {f.metadata['help']} ({expects}){shown}")
    return "\n".join(lines)
