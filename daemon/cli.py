"""The `bastiond` command: serve, migrate, create-admin.

Exit codes: 0 done, 1 a failure at run time (a service down, a port taken), 2 a usage or settings
error. Every failure is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import os
import signal
import sys

from daemon.settings import Settings, SettingsError, describe

log = logging.getLogger("bastion")
# Connections the kernel holds for us before we accept them. aiohttp's default, 128, overflowed when 256
# clients connected at once: the dropped handshakes were retried by the kernel after 1 s and 3 s, and those
# requests took that long (p99 2.3 s at 256 connections; the kernel caps this at net.core.somaxconn).
LISTEN_BACKLOG = 4096


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bastiond",
        description="Bastion API daemon: authentication, users and vector search over REST and WebSocket.",
        epilog=describe() + "\n\nexit codes: 0 ok, 1 runtime failure, 2 usage or settings error",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the API daemon (default 127.0.0.1:8420)")
    serve.add_argument("--host", help="address to listen on (overrides BASTION_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (overrides BASTION_PORT)")
    commands.add_parser("migrate", help="apply database migrations and exit")
    admin = commands.add_parser(
        "create-admin", help="create an administrator; password from BASTION_ADMIN_PASSWORD or a prompt"
    )
    admin.add_argument("--email", required=True)
    admin.add_argument("--display-name", default="")
    commands.add_parser(
        "info", help="print one JSON line: the URL served (local form), the data dir, how many users exist "
                     "(bastion up reads it, so the client never opens the daemon's stores itself)"
    )
    commands.add_parser(
        "rotate-signing-key", help="add a new token signing key; the old one verifies until its tokens expire"
    )
    backup = commands.add_parser(
        "backup", help="write one consistent, encrypted archive of the data (passphrase: BASTION_BACKUP_PASSPHRASE)"
    )
    backup.add_argument("--to", required=True, metavar="FILE", help="the archive to write (must not exist)")
    restore = commands.add_parser("restore", help="bring an archive back into an empty data directory or database")
    restore.add_argument("file", metavar="FILE")
    export = commands.add_parser("export", help="write users or a collection as JSON lines (progress on stderr)")
    what = export.add_subparsers(dest="what", metavar="WHAT", required=True)
    users = what.add_parser("users", help="every account, password hashes included, read from the database")
    collection = what.add_parser("collection", help="a collection's vectors, read through a running daemon")
    collection.add_argument("name")
    _server_argument(collection)
    for sub in (users, collection):
        sub.add_argument("--to", required=True, metavar="FILE")
        sub.add_argument("--resume", action="store_true", help="continue an export of the same FILE that stopped")
    load = commands.add_parser(
        "import", help="send an exported FILE to a running daemon (token: BASTION_TOKEN, an admin's)"
    )
    load.add_argument("file", metavar="FILE")
    _server_argument(load)
    return parser


def _server_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", metavar="URL",
                        help="the daemon's address (default: http://BASTION_HOST:BASTION_PORT); token from BASTION_TOKEN")


def _fail(message: str, code: int = 1) -> int:
    print(f"bastiond: {message}", file=sys.stderr)
    return code


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def serve(settings: Settings) -> int:
    _use_uvloop()
    log.info("starting", extra={"host": settings.host, "port": settings.port, "data_dir": str(settings.data_dir)})
    try:
        asyncio.run(_serve(settings))
    except OSError as exc:
        return _fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
    except Exception as exc:  # start-up failures: a database down, Vault unreachable
        return _fail(f"cannot start: {exc}")
    log.info("stopped")
    return 0


async def _serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then stop in the order a load balancer needs.

    1. Drain: /readyz answers 503 while everything else is still served, for BASTION_SHUTDOWN_DRAIN_S,
       so whatever routes traffic here (a Kubernetes Service, HAProxy) sees it and moves away before
       a single connection is refused. A second signal ends the drain at once (ctrl-c twice).
    2. aiohttp's own shutdown: stop listening, close idle connections, run on_shutdown (1001 to every
       WebSocket), wait up to BASTION_SHUTDOWN_TIMEOUT_S for requests in flight, then close the stores.
    """
    from aiohttp import web

    from daemon.app import create_app
    from daemon.context import RUNTIME

    # Our own handlers rather than aiohttp's (which stop at the first signal): set before start-up, so a
    # signal then is not a kill but a stop once started.
    loop = asyncio.get_running_loop()
    signals: asyncio.Queue[int] = asyncio.Queue()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, signals.put_nowait, signum)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=settings.shutdown_timeout_s)
    await runner.setup()
    try:
        if signals.empty():  # else stopped during start-up: no traffic came yet, nothing to drain
            await web.TCPSite(runner, settings.host, settings.port, backlog=LISTEN_BACKLOG).start()
            await signals.get()
            app[RUNTIME].shutting_down = True
            if settings.shutdown_drain_s:
                log.info("draining: /readyz fails, requests are still served; signal again to stop now",
                         extra={"drain_s": settings.shutdown_drain_s})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(signals.get(), settings.shutdown_drain_s)
        log.info("shutting down", extra={"timeout_s": settings.shutdown_timeout_s})
    finally:
        await runner.cleanup()


async def _migrate(settings: Settings) -> list:
    from daemon.bootstrap import command_stores
    from daemon.stores.sql.migrate import migrate

    async with command_stores(settings, migrated=False) as stores:
        return await migrate(stores.db)


async def _info(settings: Settings) -> dict:
    from daemon.bootstrap import command_stores
    from daemon.stores.sql.accounts import Accounts

    async with command_stores(settings) as stores:
        users = await Accounts(stores.db).count_users()
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # where a local client goes
    return {"url": f"http://{host}:{settings.port}", "data_dir": str(settings.data_dir), "users": users}


async def _rotate(settings: Settings):
    from daemon.bootstrap import command_stores
    from daemon.services.tokens import LEEWAY_S, rotate_keys

    async with command_stores(settings) as stores:
        return await rotate_keys(stores.secrets, retire_after_s=settings.access_token_ttl_s + LEEWAY_S)


def _progress(what: str, done: int, total: int) -> None:
    """Records copied, on stderr: one line kept current on a terminal, else a line when a table is done (or
    each batch, when the total is not known)."""
    of = f"/{total:,}" if total else ""
    if sys.stderr.isatty():
        print(f"\r{what}: {done:,}{of}", end="\n" if total and done >= total else "", file=sys.stderr, flush=True)
    elif done >= total:
        print(f"{what}: {done:,}{of}", file=sys.stderr, flush=True)


def as_background_work() -> None:
    """`bastiond backup` runs beside a live daemon, often as its child: it leaves the daemon's scheduling group
    and takes the lowest weight there is. Linux shares the CPUs between groups first (one per session,
    "autogroup", where cgroups do not decide), so a child left in the daemon's group competes inside it
    whatever its nice value, and keeps that group busy against the machine's others. In a session of its
    own, its group's weight drops to nice 19's. Its own nice value is what counts where cgroups decide, or
    where it cannot start a session (the leader of its process group: a job of an interactive shell).
    Not SCHED_IDLE: that class stays in the group and shrinks the group's share; beside the daemon it made
    the p50 of GET /users/me three times longer in bench/backup.py. The price of yielding: on a host whose
    CPUs are saturated by other work a backup takes longer, its snapshot held open meanwhile."""
    with contextlib.suppress(OSError):
        os.setsid()
        with open("/proc/self/autogroup", "w") as group:  # alone in it now: this touches nothing else
            group.write("19")
    os.nice(19)


def _backup_command(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from daemon.backup import backup, restore

    if not settings.backup_passphrase:
        return _fail("set BASTION_BACKUP_PASSPHRASE: archives are always encrypted", 2)
    if args.command == "backup":
        path = Path(args.to)
        if path.exists():
            return _fail(f"{path} exists: choose a new file name", 2)
        if not path.absolute().parent.is_dir():
            return _fail(f"{path.absolute().parent} is not a directory: create it first", 2)
        summary = asyncio.run(backup(settings, path, settings.backup_passphrase, _progress))
        print(f"wrote {path}: {sum(summary.rows.values()):,} rows in {len(summary.rows)} tables, as of {summary.created_at}")
        return 0
    summary = asyncio.run(restore(settings, Path(args.file), settings.backup_passphrase, _progress))
    print(f"restored {sum(summary.rows.values()):,} rows in {len(summary.rows)} tables from the backup of "
          f"{summary.created_at}")
    return 0


def _transfer_command(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from daemon import transfer

    server = getattr(args, "server", None) or f"http://{settings.host}:{settings.port}"
    token = os.environ.get("BASTION_TOKEN", "")
    if args.command == "export" and args.what == "users":
        count = asyncio.run(transfer.export_users(settings, Path(args.to), args.resume, _progress))
        print(f"wrote {_counted(count, 'user')} to {args.to}")
        return 0
    if not token:
        return _fail("set BASTION_TOKEN to an administrator's access token or admin API key", 2)
    if args.command == "export":
        count = asyncio.run(transfer.export_collection(server, token, args.name, Path(args.to), args.resume, _progress))
        print(f"wrote {_counted(count, 'vector')} of {args.name} to {args.to}")
        return 0
    done = asyncio.run(transfer.import_file(server, token, Path(args.file), _progress))
    print("imported: " + ", ".join(f"{n:,} {what}" for what, n in done.items()))
    return 0


def _counted(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _read_admin_password() -> str:
    password = os.environ.get("BASTION_ADMIN_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password for the new administrator: ")
    if getpass.getpass("Repeat it: ") != first:
        raise SettingsError("the two passwords differ")
    return first


def main(argv: list[str] | None = None) -> int:
    from daemon.stores.data_dir import PRIVATE_UMASK

    os.umask(PRIVATE_UMASK)  # whatever any command creates (a database, an index, an export) is private
    args = _parser().parse_args(argv)
    if args.command == "backup":
        as_background_work()  # before the imports and the settings: all of it is background work
    try:
        settings = Settings.from_env()
        if getattr(args, "host", None):
            settings = Settings.from_env(host=args.host)
        if getattr(args, "port", None) is not None:
            settings = Settings.from_env(**{"host": args.host or settings.host, "port": args.port})
    except SettingsError as exc:
        return _fail(str(exc), 2)

    from daemon.logs import configure

    configure(settings.log_level)
    from daemon.backup import RestoreRefused
    from daemon.backup.archive import ArchiveError
    from daemon.transfer import TransferError
    from daemon.stores.errors import StoreError
    from shared.errors import ApiError

    try:
        if args.command in (None, "serve"):
            return serve(settings)
        if args.command == "migrate":
            applied = asyncio.run(_migrate(settings))
            print(f"applied {len(applied)} migration(s)" if applied else "the schema is up to date")
            return 0
        if args.command == "info":
            print(json.dumps(asyncio.run(_info(settings))))
            return 0
        if args.command == "rotate-signing-key":
            key = asyncio.run(_rotate(settings))
            print(f"new signing key {key.kid}; running daemons sign with it within BASTION_SIGNING_KEY_RELOAD_S "
                  f"({settings.signing_key_reload_s} s)")
            return 0
        if args.command in ("backup", "restore"):
            return _backup_command(settings, args)
        if args.command in ("export", "import"):
            return _transfer_command(settings, args)
        if args.command == "create-admin":
            from daemon.bootstrap import create_admin

            user = asyncio.run(create_admin(settings, args.email, _read_admin_password(), args.display_name))
            print(f"created administrator {user.email} ({user.id})")
            return 0
    except SettingsError as exc:
        return _fail(str(exc), 2)
    except ApiError as exc:
        return _fail(exc.detail or exc.title)
    except (StoreError, ArchiveError, RestoreRefused, TransferError) as exc:
        return _fail(str(exc))
    except OSError as exc:  # a file a command writes: `backup --to` or `export --to` in a missing directory, say
        return _fail(f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    return _fail("unknown command", 2)
