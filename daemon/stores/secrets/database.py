"""Secrets in the SQL database: where replicas on PostgreSQL without Vault keep the signing keys they share.

Each replica used to generate its own keys into its own data directory, so a token from one was refused
by the others. The keys now live in the one place every replica already reads (as Keycloak keeps realm
keys in its database): the `secrets` table (daemon/migrations/0008_secrets.sql).

- `create` is one `INSERT ... ON CONFLICT DO NOTHING`: whichever replica starts first writes the keys,
  the others read what it wrote (`get_or_create`).
- With BASTION_SECRET_KEY set, each value is sealed with AES-256-GCM under a key derived from it (HKDF),
  the secret's name bound in as associated data, so a database dump alone does not hold usable keys and
  one row cannot be passed off as another. A value written before the key was set is still read, and
  sealed the next time it is written (a rotation).
- Reads go to the primary (in a transaction), never to a read replica that may lag behind a rotation.
"""

from __future__ import annotations

import base64
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from daemon.clock import iso_now
from daemon.stores.secrets import Blob, DatabaseCredentials, SecretsError, check_name, decode_blob
from daemon.stores.sql import Database

SEALED = "aes256gcm:"
NONCE_BYTES = 12


def _cipher(secret_key: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"bastion", info=b"secrets at rest v1").derive(
        secret_key.encode()
    )
    return AESGCM(key)


class DatabaseSecrets:
    name = "database"

    def __init__(self, db: Database, secret_key: str | None = None) -> None:
        self._db = db
        self._cipher = _cipher(secret_key) if secret_key else None

    def _seal(self, name: str, value: Blob) -> str:
        text = json.dumps(value)
        if self._cipher is None:
            return text
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._cipher.encrypt(nonce, text.encode(), name.encode())
        return SEALED + base64.b64encode(nonce + sealed).decode()

    def _open(self, name: str, stored: str) -> Blob:
        if stored.startswith(SEALED):
            if self._cipher is None:
                raise SecretsError(
                    f"the secret {name!r} in the database is encrypted: set BASTION_SECRET_KEY to the key it was "
                    "written with"
                )
            raw = base64.b64decode(stored.removeprefix(SEALED))
            try:
                stored = self._cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], name.encode()).decode()
            except InvalidTag:
                raise SecretsError(
                    f"the secret {name!r} in the database does not open with this BASTION_SECRET_KEY: it was "
                    "written with another one"
                ) from None
        return decode_blob(stored, f"the secret {name!r} in the database")

    async def get(self, name: str) -> Blob | None:
        check_name(name)
        async with self._db.transaction() as tx:  # the primary: a replica may not have the latest rotation
            row = await tx.fetch_one("SELECT value FROM secrets WHERE name = ?", name)
        return None if row is None else self._open(name, row["value"])

    async def put(self, name: str, value: Blob) -> None:
        await self._db.execute(
            "INSERT INTO secrets (name, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            check_name(name), self._seal(name, value), iso_now(),
        )

    async def create(self, name: str, value: Blob) -> bool:
        inserted = await self._db.execute(
            "INSERT INTO secrets (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
            check_name(name), self._seal(name, value), iso_now(),
        )
        return inserted == 1

    async def replace(self, name: str, expected: Blob | None, value: Blob) -> bool:
        if expected is None:
            return await self.create(name, value)
        async with self._db.transaction() as tx:
            row = await tx.fetch_one("SELECT value FROM secrets WHERE name = ?", check_name(name))
        if row is None or self._open(name, row["value"]) != expected:
            return False
        # Over the very text read: a sealed value is never written twice the same (a fresh nonce each time),
        # and a plain one that is has the same keys either way.
        return await self._db.execute(
            "UPDATE secrets SET value = ?, updated_at = ? WHERE name = ? AND value = ?",
            self._seal(name, value), iso_now(), name, row["value"],
        ) == 1

    async def names(self) -> list[str]:
        return [r["name"] for r in await self._db.fetch_all("SELECT name FROM secrets ORDER BY name")]

    async def database_credentials(self) -> DatabaseCredentials | None:
        return None  # read before the database is open, so never from it

    async def ping(self) -> None:
        await self._db.ping()

    async def close(self) -> None:
        pass  # the database is the app's; it closes it
