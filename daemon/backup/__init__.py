"""`bastiond backup` and `bastiond restore`: one consistent, encrypted archive of a daemon's data.

What an archive holds, as JSON lines inside the encrypted stream (daemon/backup/archive.py):
1. a header: the format, when and from which store it was taken, the schema's migrations, and the
   secrets (the signing keys, decrypted: the archive's passphrase protects them, and a restore seals them
   again under the target's own BASTION_SECRET_KEY or Vault);
2. every table, under one snapshot (daemon/backup/snapshot.py), vectors included: the local vector
   index and the keyword index are rebuilt from those rows when a daemon starts on the restored data;
3. an end line with the rows per table, so an archive cut short is never taken for a whole one.

Database credentials held by Vault are the environment's, not the data's: they are left out.
A backup runs beside a live daemon (the snapshot does not block its writes); a restore only goes into
an empty database, and in one transaction: it lands whole or not at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from daemon.backup import archive, snapshot
from daemon.backup.archive import ArchiveError
from daemon.bootstrap import CommandStores, command_stores
from daemon.clock import iso_now
from daemon.settings import Settings
from daemon.stores.sql.migrate import available

FORMAT = 1
NOT_DATA = {"database"}  # Vault's database credentials belong to the environment

Progress = Callable[[str, int, int], None]  # table, rows done, rows in all


class RestoreRefused(Exception):
    """The target is not one a restore may write into (it holds data)."""


@dataclass
class Summary:
    path: Path
    created_at: str
    rows: dict[str, int]


def _source(settings: Settings, stores: CommandStores) -> snapshot.SqliteSnapshot | snapshot.PostgresSnapshot:
    return snapshot.open_source(settings.sqlite_path, stores.database_url if settings.uses_postgres else None)


async def backup(settings: Settings, path: Path, passphrase: str, progress: Progress) -> Summary:
    async with command_stores(settings, migrated=False) as stores:
        secrets = {name: await stores.secrets.get(name) for name in await stores.secrets.names() if name not in NOT_DATA}
        created_at = iso_now()

        def write_archive() -> dict[str, int]:
            source = _source(settings, stores)
            writer = archive.ArchiveWriter(path, passphrase)
            try:
                with source.snapshot():
                    writer.write(orjson.dumps({"format": FORMAT, "created_at": created_at, "dialect": source.dialect,
                                               "migrations": source.migrations(), "secrets": secrets}) + b"\n")
                    rows = snapshot.dump(source, writer.write, progress)
                writer.write(orjson.dumps({"end": True, "rows": rows}) + b"\n")
                writer.close()
                return rows
            except BaseException:
                writer.abort()
                raise
            finally:
                source.close()

        return Summary(path, created_at, await asyncio.to_thread(write_archive))


def _header(lines: Any, path: Path) -> dict[str, Any]:
    try:
        header = orjson.loads(next(lines))
    except (StopIteration, orjson.JSONDecodeError):
        raise ArchiveError(f"{path} is damaged: it has no header") from None
    if header.get("format") != FORMAT:
        raise ArchiveError(f"{path} is a format this Bastion does not read ({header.get('format')!r})")
    unknown = sorted(set(header["migrations"]) - {m.version for m in available()})
    if unknown:
        raise ArchiveError(f"{path} comes from a newer Bastion (schema migrations {unknown}); upgrade first")
    return header


async def restore(settings: Settings, path: Path, passphrase: str, progress: Progress) -> Summary:
    """Into an empty database (and the secrets store beside it); refuses one that holds any row."""
    await asyncio.to_thread(archive.check, path)  # a damaged archive is refused before anything is touched
    lines = archive.lines(path, passphrase)
    header = await asyncio.to_thread(_header, lines, path)  # a wrong passphrase stops here
    async with command_stores(settings) as stores:

        def load_archive() -> dict[str, int]:
            target = _source(settings, stores)
            try:
                with target.loading():
                    full = snapshot.tables_with_rows(target)
                    if full:
                        raise RestoreRefused(
                            f"the target is not empty ({', '.join(full)} hold rows): restore into a new data "
                            "directory or an empty database"
                        )
                    rows, end = snapshot.load(target, lines, progress)
                    if end.get("rows") != rows:
                        raise ArchiveError(f"{path} is damaged: its rows do not add up to what its end line says")
                return rows
            except ValueError as exc:
                raise ArchiveError(f"{path} is damaged: {exc}") from None
            finally:
                target.close()

        rows = await asyncio.to_thread(load_archive)
        for name, blob in header["secrets"].items():
            await stores.secrets.put(name, blob)
    return Summary(path, header["created_at"], rows)
