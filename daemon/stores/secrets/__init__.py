"""Secrets (the token signing keys, database credentials): named JSON objects in HashiCorp Vault's KV v2
store when VAULT_ADDR is set (OpenBao speaks the same API); else, with PostgreSQL, in the database that
every replica shares; else (the embedded default) in files in the data directory.

Several replicas may start at once against one store, so "generate the signing keys once" must not
race: `create` writes only when the name is absent (an exclusive link for files, check-and-set for
Vault), and `get_or_create` returns whichever value won.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

from daemon.settings import Settings
from daemon.stores.errors import StoreError
from daemon.stores.sql import Database

Blob = dict[str, Any]  # a JSON object: Vault's KV v2 keeps exactly that under each path
NAME = re.compile(r"[a-z0-9_]{1,64}")


class SecretsError(StoreError):
    """The secrets store refused a request or holds something malformed; the message says which."""


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise SecretsError(f"not a secret name: {name!r} (expected 1 to 64 of a-z, 0-9 and _)")
    return name


def decode_blob(text: str, where: str) -> Blob:
    """The JSON object in `text`; `where` names its place in the error when it holds something else."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise SecretsError(f"{where} does not hold a JSON object")
    return value


@dataclass(frozen=True)
class DatabaseCredentials:
    username: str
    password: str = field(repr=False)


class SecretStore(Protocol):
    name: str  # "file" | "vault" | "database"

    async def get(self, name: str) -> Blob | None:
        """The blob stored under `name`, or None."""

    async def put(self, name: str, value: Blob) -> None:
        """Store `value` under `name`, replacing what was there."""

    async def create(self, name: str, value: Blob) -> bool:
        """Store `value` only if `name` is absent; False when something was already there."""

    async def replace(self, name: str, expected: Blob | None, value: Blob) -> bool:
        """Store `value` only if `name` still holds `expected` (None: nothing); False when it holds anything
        else by then. A read-modify-write (a key rotation) that loses the race reads again, rather than
        writing over what the other wrote."""

    async def names(self) -> list[str]:
        """The names of the secrets the store holds, sorted."""

    async def database_credentials(self) -> DatabaseCredentials | None:
        """Credentials for BASTION_DATABASE_URL kept in the store, if it keeps them (Vault can)."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


async def get_or_create(store: SecretStore, name: str, make: Callable[[], Blob]) -> Blob:
    """The blob under `name`, created with `make()` if absent; concurrent callers agree on one value."""
    existing = await store.get(name)
    if existing is not None:
        return existing
    value = make()
    if await store.create(name, value):
        return value
    winner = await store.get(name)
    if winner is None:
        raise SecretsError(f"secret {name!r} was deleted while being created")
    return winner


def with_credentials(url: str, credentials: DatabaseCredentials | None) -> str:
    """`url` with its user and password replaced by `credentials` (unchanged when there are none)."""
    if credentials is None:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    userinfo = f"{quote(credentials.username, safe='')}:{quote(credentials.password, safe='')}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


async def database_urls(settings: Settings, store: SecretStore) -> tuple[str | None, str | None]:
    """The primary and replica URLs to connect with: the store's database credentials, if it holds
    any, replace those in BASTION_DATABASE_URL and BASTION_DATABASE_READ_URL (a replica has the same
    roles as its primary)."""
    url, read_url = settings.database_url, settings.database_read_url
    if not settings.uses_postgres:
        return url, read_url
    credentials = await store.database_credentials()
    return with_credentials(url, credentials), read_url and with_credentials(read_url, credentials)


async def open_secrets(settings: Settings) -> SecretStore:
    """The store to open before the database (Vault may hold its credentials), checked: a configured Vault
    that does not answer raises `Unavailable`. Once the database is open, `shared_secrets` says where the
    signing keys live."""
    if settings.vault_addr:
        from daemon.stores.secrets.vault import VaultSecrets

        return await VaultSecrets.open(settings)
    from daemon.stores.secrets.file import FileSecrets

    return await FileSecrets.open(settings.data_dir / "secrets")


def shared_secrets(settings: Settings, opened: SecretStore, db: Database) -> SecretStore:
    """Where the secrets every replica must agree on (the signing keys) live: Vault when configured; with
    PostgreSQL and no Vault, the database itself (replicas have data directories of their own); else the
    data directory's files, which one embedded daemon alone reads."""
    if opened.name == "vault" or not settings.uses_postgres:
        return opened
    from daemon.stores.secrets.database import DatabaseSecrets

    return DatabaseSecrets(db, settings.secret_key)
