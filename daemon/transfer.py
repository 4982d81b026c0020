"""`bastiond export` and `bastiond import`: users and collections as JSON lines, to move them between daemons.

- Users are read from the database itself (`export users`), because the API never shows a password hash,
  and the hashes must move for the accounts to log in where they arrive.
- Collections are read through a daemon's API (`export collection NAME --server URL`): the vector store's
  tables are its own business, and a running daemon answers for what its collections hold (text too).
- Everything is imported through a running daemon's API (`import FILE --server URL`), so that each
  record raises the events and audit entries its ordinary creation would, and a live vector index takes
  the vectors in. An account whose id or email exists is skipped and an upsert replaces, so running an
  interrupted import again is safe.

Both directions stream: a batch at a time, never the whole file or table in memory, with progress on
stderr. An export given `--resume` continues an earlier one that stopped: it drops a line cut short at
the end of the file and goes on after the last record written (records are written in id order).
The token (`BASTION_TOKEN`: an administrator's access token or admin-scoped API key) comes from the
environment, never the command line, where other users of the machine could read it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
import orjson
from cryptography.exceptions import InvalidTag
from webauthn.helpers import bytes_to_base64url

from daemon.bootstrap import command_stores
from daemon.services.mfa import SecretSealer
from daemon.stores.sql import Database, accounts, mfa, passkeys
from daemon.settings import Settings
from shared.models.transfer import MAX_IMPORT, ExportedUser
from shared.models.vectors import CollectionCreate

Progress = Callable[[str, int, int], None]  # what, records done, records in all (0: unknown)
PAGE = 200  # the API's largest page of ids
UPSERT_BATCH = 200  # vectors per upsert
# Bytes of JSON per request: half the daemon's default body limits (1 MiB; 8 MiB for upserts).
USERS_BATCH_BYTES = 512 * 1024
UPSERT_BATCH_BYTES = 4 * 1024 * 1024


class TransferError(Exception):
    """A refusal worth one line: the daemon answered an error, or a file is not what it should be."""


def _refuse_overwrite(path: Path, resume: bool) -> None:
    if path.exists() and not resume:
        raise TransferError(f"{path} exists: pass --resume to continue that export, or choose a new file name")


def _open_for_export(path: Path, resume: bool) -> tuple[BinaryIO, bytes | None]:
    """The file to append to, and its last complete line when resuming (a line cut short is dropped)."""
    _refuse_overwrite(path, resume)
    if not path.exists():
        # Readable by its owner only: a users file holds password hashes and TOTP secrets.
        return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb"), None
    handle = open(path, "r+b")
    data = handle.read()
    keep = data.rfind(b"\n") + 1
    handle.truncate(keep)
    handle.seek(keep)
    last = data[:keep].rstrip(b"\n").rpartition(b"\n")[2] or None
    return handle, last


async def export_users(settings: Settings, path: Path, resume: bool, progress: Progress) -> int:
    handle, last = _open_for_export(path, resume)
    after = orjson.loads(last)["id"] if last else ""
    written = 0
    with handle:
        async with command_stores(settings, migrated=False) as stores:
            sealer = await SecretSealer.load(stores.secrets)
            total = await accounts.count_users_after(stores.db, after)
            while True:
                rows = await accounts.exported_users(stores.db, after, MAX_IMPORT)
                if not rows:
                    return written
                factors = await _second_factors(stores.db, sealer, [row["id"] for row in rows])
                for row in rows:
                    record = {**row, "disabled": bool(row["disabled"]), "email_verified": bool(row["email_verified"]),
                              **factors.get(row["id"], {})}
                    handle.write(orjson.dumps(record) + b"\n")
                handle.flush()
                after = rows[-1]["id"]
                written += len(rows)
                progress("users", written, total)


async def _second_factors(db: Database, sealer: SecretSealer, user_ids: list[str]) -> dict[str, dict[str, Any]]:
    """By user: a confirmed TOTP factor (its secret unsealed), the unspent recovery codes' hashes and the
    passkeys, as ExportedUser holds them."""
    found: dict[str, dict[str, Any]] = {}
    for row in await mfa.exported_totp(db, user_ids):
        try:
            secret = sealer.unseal(row["user_id"], bytes(row["sealed_secret"]))
        except InvalidTag:
            raise TransferError(f"the TOTP secret of {row['user_id']} does not open with this daemon's key: run the "
                                f"export with the settings (and secrets store) of the daemon that holds it") from None
        found.setdefault(row["user_id"], {})["totp"] = {
            "secret": secret, "confirmed_at": row["confirmed_at"], "last_step": row["last_step"]}
    for row in await mfa.exported_recovery_codes(db, user_ids):
        found.setdefault(row["user_id"], {}).setdefault("recovery_codes", []).append(row["code_hash"])
    for row in await passkeys.of_users(db, user_ids):
        passkey = {**row, "public_key": bytes_to_base64url(row["public_key"]), "backed_up": bool(row["backed_up"])}
        found.setdefault(passkey.pop("user_id"), {}).setdefault("passkeys", []).append(passkey)
    return found


class _Api:
    def __init__(self, http: aiohttp.ClientSession, server: str, token: str) -> None:
        self._http = http
        self._server = server
        self._base = server.rstrip("/") + "/api/v1"
        self._headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200,),
                   params: dict[str, str] | None = None) -> tuple[int, Any]:
        try:
            async with self._http.request(method, self._base + path, json=body, headers=self._headers,
                                          params=params) as response:
                try:
                    answer = await response.json(content_type=None) if response.content_length != 0 else None
                except ValueError:  # an HTML error page: a proxy, or another server at that address
                    raise TransferError(f"{method} {path} answered {response.status}, not in JSON: is "
                                        f"{self._server} a Bastion daemon?") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Refused, reset, timed out, or an address that is no URL: one line, as for any other refusal.
            raise TransferError(f"cannot reach {self._server}: {_reason(exc)}") from None
        if response.status not in ok:
            detail = (answer or {}).get("detail") or (answer or {}).get("title") or response.reason
            raise TransferError(f"{method} {path} answered {response.status}: {detail}")
        return response.status, answer


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, aiohttp.InvalidURL):
        return "not a URL (expected http://host:port)"
    return str(getattr(exc, "os_error", None) or exc) or type(exc).__name__


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))


async def export_collection(server: str, token: str, name: str, path: Path, resume: bool, progress: Progress) -> int:
    _refuse_overwrite(path, resume)  # before the daemon is asked anything
    written = 0
    async with _session() as http:
        api = _Api(http, server, token)
        # Asked before the file is made: a collection that is not there, or a daemon that does not answer,
        # leaves no empty file behind for the next try to trip over.
        _, collection = await api.call("GET", f"/collections/{name}")
        handle, last = _open_for_export(path, resume)
        with handle:
            if last is None:
                fields = {k: collection[k] for k in CollectionCreate.model_fields if k in collection}
                handle.write(orjson.dumps({"collection": fields}) + b"\n")
            resume_at = orjson.loads(last) if last and not last.startswith(b'{"collection"') else None
            total = collection["count"]
            for namespace in sorted(collection["namespaces"]):
                if resume_at and namespace < resume_at["namespace"]:
                    continue
                async for ids in _id_pages(api, name, namespace):
                    if resume_at and namespace == resume_at["namespace"]:
                        ids = [i for i in ids if i > resume_at["id"]]
                    if not ids:
                        continue
                    _, fetched = await api.call("POST", f"/collections/{name}/fetch", {"ids": ids, "namespace": namespace})
                    for vector_id in ids:
                        found = fetched["vectors"].get(vector_id)
                        if found is not None:  # deleted since it was listed
                            handle.write(orjson.dumps({"namespace": namespace, **found}) + b"\n")
                            written += 1
                    handle.flush()
                    progress(name, written, total)
    return written


async def _id_pages(api: _Api, name: str, namespace: str):
    """The collection's ids in a namespace, a page at a time, in the order the API lists them (by id)."""
    cursor = None
    while True:
        params = {"namespace": namespace, "limit": str(PAGE), **({"cursor": cursor} if cursor else {})}
        _, page = await api.call("GET", f"/collections/{name}/vectors", params=params)
        yield page["items"]
        if not (cursor := page["next_cursor"]):
            return


Line = tuple[dict[str, Any], int]  # a record, and its size in the file: about its size in a request (_batches)


def _lines(path: Path) -> Iterator[Line]:
    try:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        yield orjson.loads(line), len(line)
                    except orjson.JSONDecodeError:
                        raise TransferError(f"{path}, line {number}: not JSON") from None
    except OSError as exc:
        raise TransferError(f"cannot read {path}: {exc.strerror or exc}") from None


def _batches(records: Iterator[Line], size: int, max_bytes: int) -> Iterator[list[dict[str, Any]]]:
    """Up to `size` records, and up to about `max_bytes` of them as JSON (a record larger than that goes alone):
    a thousand accounts with their second factors, or 200 vectors of 4,096 numbers, can pass the daemon's
    body limit (413), which the count alone did not see."""
    batch: list[dict[str, Any]] = []
    held = 0
    for record, weight in records:
        if batch and (len(batch) >= size or held + weight > max_bytes):
            yield batch
            batch, held = [], 0
        batch.append(record)
        held += weight
    if batch:
        yield batch


async def import_file(server: str, token: str, path: Path, progress: Progress) -> dict[str, int]:
    """Users or a collection, whichever the file holds (its first line says)."""
    records = _lines(path)
    head = next(records, None)
    if head is None:
        raise TransferError(f"{path} is empty")
    first = head[0]
    async with _session() as http:
        api = _Api(http, server, token)
        if "collection" in first:
            return await _import_collection(api, first["collection"], records, progress)
        if "password_hash" in first:
            return await _import_users(api, itertools.chain([head], records), progress)
    raise TransferError(f"{path} holds neither users nor a collection (see `bastiond export --help`)")


async def _import_users(api: _Api, records: Iterator[Line], progress: Progress) -> dict[str, int]:
    done = {"created": 0, "skipped": 0}
    fields = set(ExportedUser.model_fields)
    for batch in _batches(records, MAX_IMPORT, USERS_BATCH_BYTES):
        _, result = await api.call("POST", "/admin/import/users", {"users": [{k: r[k] for k in fields & r.keys()} for r in batch]})
        done["created"] += result["created"]
        done["skipped"] += result["skipped"]
        progress("users", done["created"] + done["skipped"], 0)
    return done


async def _import_collection(api: _Api, collection: dict[str, Any], rest: Iterator[Line],
                             progress: Progress) -> dict[str, int]:
    name = collection["name"]
    status, existing = await api.call("POST", "/collections", collection, ok=(201, 409))
    if status == 409:  # there already, perhaps from an import that stopped: it must be the same shape
        _, existing = await api.call("GET", f"/collections/{name}")
        if (existing["dimension"], existing["metric"]) != (collection["dimension"], collection["metric"]):
            raise TransferError(f"a collection {name!r} exists here with another dimension or metric")
    done = {"upserted": 0}
    for batch in _batches(rest, UPSERT_BATCH, UPSERT_BATCH_BYTES):
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for record in batch:
            by_namespace.setdefault(record.pop("namespace", ""), []).append(record)
        for namespace, vectors in by_namespace.items():
            _, result = await api.call("POST", f"/collections/{name}/upsert", {"vectors": vectors, "namespace": namespace})
            done["upserted"] += result["upserted_count"]
        progress(name, done["upserted"], 0)
    return done

