"""Secrets in HashiCorp Vault's KV v2 engine, through hvac.

Each secret is one KV entry, `<mount>/<BASTION_VAULT_PATH>/<name>`, whose data is the blob itself, so an
operator can read or seed it with `vault kv get/put` (e.g. `database` with `username` and `password`).

Authentication, in this order: Kubernetes auth when BASTION_VAULT_K8S_ROLE is set (the pod's service
account token), else the token in BASTION_VAULT_TOKEN_FILE (Vault Agent keeps it fresh there), else
VAULT_TOKEN. A request refused for its token logs in (or re-reads the file) once and retries, because
tokens expire while the daemon runs.

hvac is synchronous (requests); each call runs in a worker thread, one at a time, since secrets are
read at start and on key rotation only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import hvac
import hvac.exceptions
import requests

from daemon.settings import Settings, SettingsError
from daemon.stores.errors import Unavailable
from daemon.stores.secrets import Blob, DatabaseCredentials, SecretsError, check_name

TIMEOUT_S = 5.0
T = TypeVar("T")


class VaultSecrets:
    name = "vault"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._addr = settings.vault_addr or ""
        # token="" so that hvac never falls back to a ~/.vault-token it finds: the settings decide.
        self._client = hvac.Client(url=self._addr, token="", timeout=TIMEOUT_S)
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, settings: Settings) -> VaultSecrets:
        """Log in and check the token: a Vault that is configured must answer before the daemon starts."""
        store = cls(settings)
        try:
            await store._run(store._client.auth.token.lookup_self)
        except BaseException:
            store._client.adapter.close()
            raise
        return store

    def _login(self) -> None:
        s = self._settings
        if s.vault_k8s_role:
            jwt = self._read_file(s.vault_k8s_jwt_path, "the Kubernetes service account token")
            try:
                self._client.auth.kubernetes.login(s.vault_k8s_role, jwt, mount_point=s.vault_k8s_mount)
            except (hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest, hvac.exceptions.Unauthorized) as exc:
                raise SecretsError(
                    f"Vault at {self._addr} refused the Kubernetes login as {s.vault_k8s_role!r}: {_first(exc)}"
                ) from None
        elif s.vault_token_file:
            self._client.token = self._read_file(s.vault_token_file, "BASTION_VAULT_TOKEN_FILE")
        elif s.vault_token:
            self._client.token = s.vault_token
        else:
            raise SettingsError(
                "VAULT_ADDR is set but there is no way to log in: set VAULT_TOKEN, BASTION_VAULT_TOKEN_FILE "
                "or BASTION_VAULT_K8S_ROLE"
            )

    @staticmethod
    def _read_file(path: Path, what: str) -> str:
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise SecretsError(f"cannot read {what} at {path}: {exc.strerror or exc}") from None
        if not value:
            raise SecretsError(f"{what} at {path} is empty")
        return value

    async def _run(self, call: Callable[[], T]) -> T:
        async with self._lock:
            return await asyncio.to_thread(self._with_login, call)

    def _with_login(self, call: Callable[[], T]) -> T:
        try:
            if not self._client.token:
                self._login()
            try:
                return call()
            except hvac.exceptions.Forbidden:
                self._login()  # the token may have expired or been replaced: one fresh try
                return call()
        except hvac.exceptions.Forbidden as exc:
            raise SecretsError(f"Vault at {self._addr} refused Bastion's credentials: {_first(exc)}") from None
        except hvac.exceptions.VaultDown:
            raise Unavailable("vault", f"{self._addr} is sealed") from None
        except (hvac.exceptions.InternalServerError, hvac.exceptions.BadGateway) as exc:
            raise Unavailable("vault", f"{self._addr} answered with an error: {_first(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise Unavailable("vault", f"{self._addr} is unreachable ({type(exc).__name__})") from None

    def _path(self, name: str) -> str:
        return f"{self._settings.vault_kv_path.strip('/')}/{check_name(name)}"

    async def get(self, name: str) -> Blob | None:
        path = self._path(name)

        def read() -> Blob | None:
            try:
                response = self._client.secrets.kv.v2.read_secret_version(
                    path, mount_point=self._settings.vault_kv_mount, raise_on_deleted_version=True
                )
            except hvac.exceptions.InvalidPath:
                return None  # never written, or its latest version deleted
            return response["data"]["data"]

        return await self._run(read)

    async def put(self, name: str, value: Blob) -> None:
        path = self._path(name)
        await self._run(
            lambda: self._client.secrets.kv.v2.create_or_update_secret(
                path, secret=value, mount_point=self._settings.vault_kv_mount
            )
        )

    def _write_over(self, path: str, value: Blob, version: int) -> bool:
        """Write only over this version of the entry (0: none yet), KV v2's check-and-set; False when the
        entry is at another version by then."""
        try:
            self._client.secrets.kv.v2.create_or_update_secret(
                path, secret=value, cas=version, mount_point=self._settings.vault_kv_mount
            )
        except hvac.exceptions.InvalidRequest as exc:
            if "check-and-set" in str(exc):
                return False
            raise
        return True

    async def create(self, name: str, value: Blob) -> bool:
        path = self._path(name)
        return await self._run(lambda: self._write_over(path, value, 0))

    async def replace(self, name: str, expected: Blob | None, value: Blob) -> bool:
        if expected is None:
            return await self.create(name, value)
        path = self._path(name)

        def write() -> bool:
            try:
                response = self._client.secrets.kv.v2.read_secret_version(
                    path, mount_point=self._settings.vault_kv_mount, raise_on_deleted_version=True
                )
            except hvac.exceptions.InvalidPath:
                return False
            if response["data"]["data"] != expected:
                return False
            return self._write_over(path, value, response["data"]["metadata"]["version"])

        return await self._run(write)

    async def names(self) -> list[str]:
        path = self._settings.vault_kv_path.strip("/")

        def listed() -> list[str]:
            try:
                response = self._client.secrets.kv.v2.list_secrets(path, mount_point=self._settings.vault_kv_mount)
            except hvac.exceptions.InvalidPath:
                return []  # nothing written under the path yet
            return sorted(k for k in response["data"]["keys"] if not k.endswith("/"))

        return await self._run(listed)

    async def database_credentials(self) -> DatabaseCredentials | None:
        blob = await self.get("database")
        if blob is None:
            return None
        username, password = blob.get("username"), blob.get("password")
        if not isinstance(username, str) or not username or not isinstance(password, str):
            raise SecretsError(
                f"Vault's {self._path('database')} must hold a non-empty 'username' and a 'password'"
            )
        return DatabaseCredentials(username, password)

    async def ping(self) -> None:
        await self._run(self._client.auth.token.lookup_self)

    async def close(self) -> None:
        self._client.adapter.close()


def _first(exc: Exception) -> str:
    """hvac's message, on one line and without the request URL it appends."""
    return str(exc).split(", on ")[0].splitlines()[0] if str(exc) else type(exc).__name__
