"""First run: the first administrator is created by a person, never by default.

`bastiond create-admin` builds the same services the daemon uses, without a server, so the rules
(password policy, hashing, the audit record) are the daemon's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from pydantic import ValidationError

from daemon.services.wiring import build_account_services
from daemon.settings import Settings
from daemon.stores.cache.memory import MemoryCache
from daemon.stores.events.memory import MemoryEventBus
from daemon.stores.secrets import SecretStore, database_urls, open_secrets, shared_secrets
from daemon.stores.sql import Database, open_database
from daemon.stores.sql.migrate import migrate
from shared.errors import ApiError, Code, FieldError
from shared.models.users import CreateUser, User

FIRST_RUN_HINT = (
    "no user exists yet: create the first administrator with "
    "`bastiond create-admin --email you@example.com` (or run `bastion up`, which guides you)"
)


@dataclass
class CommandStores:
    db: Database
    secrets: SecretStore  # where the signing keys live (shared_secrets)
    database_url: str | None  # the primary's URL, with Vault's credentials when Vault holds them


@asynccontextmanager
async def command_stores(settings: Settings, migrated: bool = True) -> AsyncIterator[CommandStores]:
    """The secrets store and the primary database (migrated, unless asked not to), opened as the
    daemon opens them (with Vault's database credentials when Vault holds them), for one-shot commands."""
    secrets = await open_secrets(settings)
    try:
        url, _ = await database_urls(settings, secrets)
        db = await open_database(url, settings.sqlite_path, 2)
        try:
            if migrated:
                await migrate(db)
            yield CommandStores(db, shared_secrets(settings, secrets, db), url)
        finally:
            await db.close()
    finally:
        await secrets.close()


async def create_admin(settings: Settings, email: str, password: str, display_name: str = "") -> User:
    try:
        body = CreateUser(email=email, password=password, role="admin", display_name=display_name)
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise ApiError(Code.VALIDATION_FAILED, problems, errors=[FieldError("body", problems)]) from None
    async with command_stores(settings) as stores:
        # In-process cache and bus: no daemon listens to this process. A running daemon sees the new
        # user on its next read of the database.
        services = await build_account_services(settings, stores.db, MemoryCache(), MemoryEventBus(10), stores.secrets)
        try:
            return await services.users.create(body.email, body.password, "admin", body.display_name, None, "local")
        finally:
            services.close()
