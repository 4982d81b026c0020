"""Secrets (the token signing keys, database credentials): named blobs in a file store in the data
directory (the embedded default) or in HashiCorp Vault's KV v2 store."""

from __future__ import annotations

from typing import Protocol

from daemon.settings import Settings


class SecretStore(Protocol):
    name: str

    async def get(self, name: str) -> str | None: ...

    async def put(self, name: str, value: str) -> None: ...


async def open_secrets(settings: Settings) -> SecretStore:
    if settings.vault_addr:
        from daemon.stores.secrets.vault import VaultSecrets

        return await VaultSecrets.open(settings)
    from daemon.stores.secrets.file import FileSecrets

    return FileSecrets(settings.data_dir / "secrets")
