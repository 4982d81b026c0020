"""The `bastion` command: the console (no command), `bastion up` (first run), and commands for scripts."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.errors import ApiError, Code
from shared.servers import BadServerURL, normalise_server
from tui import config, credentials
from tui.explain import describe_error
from tui.inputs import METRICS, PRECISIONS, InputError, parse_vector, read_json, read_vector

if TYPE_CHECKING:  # shared.client brings aiohttp and pydantic: only the commands import it, not the console
    from shared.client import Client, Tokens

EXIT_OK, EXIT_SERVER, EXIT_USAGE = 0, 1, 2
CLI_AGENT = "bastion-cli"  # the User-Agent of this command line's requests, and so of its sessions
EPILOG = """\
exit codes:
  0  done
  1  the server refused or failed (or could not be reached, or the keyring could not be used)
  2  usage: a bad argument, an unreadable file, not logged in

--server defaults to the server last logged in to. Scripts can set BASTION_API_KEY instead of logging in.
Errors are one line on standard error; --json prints machine-readable output on standard output."""


class UsageError(Exception):
    pass


# -- the parser ------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: an option given before the command must not be reset by the command's own default.
    common.add_argument("--server", metavar="URL", default=argparse.SUPPRESS, help="the daemon's URL")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")

    def command(group: Any, name: str, help: str) -> argparse.ArgumentParser:
        return group.add_parser(name, help=help, description=help, parents=[common], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)

    parser = argparse.ArgumentParser(
        prog="bastion", parents=[common], epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Bastion's operator console. With no command, opens the terminal UI.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = command(commands, "up", "start (or reuse) a local bastiond, guide the first admin, open the console")
    up.add_argument("--no-tui", action="store_true", help="leave the daemon running and do not open the console")

    login = command(commands, "login", "log in; the tokens go to the OS keyring")
    login.add_argument("--email", help="your account (not with --device)")
    login.add_argument("--device", action="store_true",
                       help="no password here: approve a code in the web view or a signed-in console (RFC 8628)")
    login.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    login.add_argument("--code-stdin", action="store_true",
                       help="read the second factor's code from standard input (the line after the password)")
    command(commands, "logout", "revoke this session on the server and forget its tokens")

    mfa = commands.add_parser("mfa", help="your second factor (TOTP)").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    enrol = command(mfa, "enrol", "set TOTP up: a QR code to scan, then its first code; prints the recovery codes")
    enrol.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    enrol.add_argument("--code-stdin", action="store_true",
                       help="read the first code from standard input (the line after the password)")
    mfa_off = command(mfa, "disable", "turn TOTP off (your password and a code)")
    mfa_off.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    mfa_off.add_argument("--code-stdin", action="store_true",
                         help="read the code from standard input (the line after the password)")

    password = commands.add_parser("password", help="a forgotten password: a link by mail").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    forgot = command(password, "forgot", "mail a reset link to EMAIL (the answer is the same whether or not it has "
                                         "an account)")
    forgot.add_argument("email")
    reset = command(password, "reset", "set a new password with the token of the mail's link (after #token=)")
    reset.add_argument("--stdin", action="store_true", help="read the token, then the new password, from standard input")
    email = commands.add_parser("email", help="verify your email address").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    command(email, "send-verification", "mail a verification link to your address (logged in)")
    verify = command(email, "verify", "verify with the token of the mail's link (after #token=)")
    verify.add_argument("--stdin", action="store_true", help="read the token from standard input")

    users = commands.add_parser("users", help="manage users (admin)").add_subparsers(dest="action", metavar="ACTION",
                                                                                    required=True)
    listing = command(users, "list", "list users")
    listing.add_argument("--q", help="email or name contains")
    listing.add_argument("--role", choices=("admin", "user"))
    create = command(users, "create", "create a user; the password from a prompt or --password-stdin")
    create.add_argument("--email", required=True)
    create.add_argument("--role", choices=("admin", "user"), default="user")
    create.add_argument("--display-name", default="")
    create.add_argument("--password-stdin", action="store_true")
    disable = command(users, "disable", "disable a user (revokes every session), or --enable again")
    disable.add_argument("user", help="the user's id or email")
    disable.add_argument("--enable", action="store_true")
    mfa_reset = command(users, "mfa-reset", "remove a user's second factor (a lost phone); audited")
    mfa_reset.add_argument("user", help="the user's id or email")

    keys = commands.add_parser("keys", help="your API keys").add_subparsers(dest="action", metavar="ACTION",
                                                                          required=True)
    key_create = command(keys, "create", "create an API key; its secret is printed this once")
    key_create.add_argument("--name", required=True)
    key_create.add_argument("--scopes", default="read", help="comma-separated: read,write,admin")
    key_create.add_argument("--expires-at", help="RFC 3339 time")
    command(keys, "list", "list your API keys (never their secrets)")
    revoke = command(keys, "revoke", "revoke an API key")
    revoke.add_argument("id")

    collections = commands.add_parser("collections", help="vector collections").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    command(collections, "list", "list collections")
    c_create = command(collections, "create", "create a collection")
    c_create.add_argument("name")
    c_create.add_argument("--dimension", type=int, help="required unless --embed names a model, which decides it")
    c_create.add_argument("--metric", choices=METRICS, default=METRICS[0])
    c_create.add_argument("--embed", metavar="MODEL", help="embed records' text with this model (bastion embedders)")
    c_create.add_argument("--precision", choices=PRECISIONS,
                          help="of the search graph's copies: i8 takes a quarter of f32's memory (default bf16); "
                               "scores stay exact either way")
    command(commands.add_parser("embedders", help="text embedding models").add_subparsers(
        dest="action", metavar="ACTION", required=True), "list", "the models the daemon knows, and which it can run")
    c_delete = command(collections, "delete", "delete a collection and its vectors")
    c_delete.add_argument("name")

    vectors = commands.add_parser("vectors", help="upsert and query vectors").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    upsert = command(vectors, "upsert", "upsert vectors from a JSONL file: one {id, values?, text?, metadata?} per "
                     "line (text alone where the collection embeds it). "
                     "The file is streamed in batches sent in parallel, with a progress bar on a terminal; after a "
                     "failure the same command again resumes after the batches already acknowledged")
    upsert.add_argument("collection")
    upsert.add_argument("--file", required=True, type=Path)
    upsert.add_argument("--namespace")
    upsert.add_argument("--batch", type=int, default=500, help="vectors per request (1..1000)")
    upsert.add_argument("--parallel", type=int, default=4, help="requests in flight (1..32)")
    upsert.add_argument("--restart", action="store_true", help="ignore the progress of an earlier run; send it all")
    query = command(vectors, "query", "query a collection by --text, --id, --vector or --vector-file "
                    "(--text with one of the others: hybrid)")
    query.add_argument("collection")
    query.add_argument("--text", help="words to search for: by keyword, by meaning (a collection with a model), or both")
    query.add_argument("--mode", choices=("vector", "keyword", "hybrid"),
                       help="default: keyword for text alone, hybrid where the collection embeds or a vector is given")
    chosen = query.add_mutually_exclusive_group()
    chosen.add_argument("--id", help="the id of a stored vector")
    chosen.add_argument("--vector", help="numbers, as 0.1,0.2,0.3 or a JSON list")
    chosen.add_argument("--vector-file", type=Path, help="a file holding a JSON list of numbers")
    query.add_argument("--top-k", type=int, default=10)
    query.add_argument("--filter", help="a JSON metadata filter")
    query.add_argument("--namespace")
    query.add_argument("--include-values", action="store_true")

    admin = commands.add_parser("admin", help="operate the daemon (admin)").add_subparsers(
        dest="area", metavar="AREA", required=True)
    backups = admin.add_parser("backups", help="the daemon's backups (BASTION_BACKUP_DIR)").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    command(backups, "list", "the archives the daemon keeps, newest first, and its latest run")
    command(backups, "run", "take a backup now; `list` shows when it is done")

    events = commands.add_parser("events", help="the live event stream").add_subparsers(
        dest="action", metavar="ACTION", required=True)
    tail = command(events, "tail", "print events as they happen; after a drop, reconnect and resume (ctrl+c stops)")
    tail.add_argument("--topic", action="append", help="users, me, collections/NAME (repeatable; default users, me)")
    tail.add_argument("--since", help="replay from after this event id")
    return parser


# -- output ----------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _emit(args: argparse.Namespace, value: Any, columns: Iterable[str] = (), text: str | None = None) -> None:
    if getattr(args, "json", False):
        print(json.dumps(_plain(value), indent=None, separators=(",", ":")))
        return
    if text is not None:
        print(text)
        return
    rows = _plain(value)
    columns = list(columns)
    if isinstance(rows, dict):
        rows = [rows]
    table = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in table]) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


# -- who and where ---------------------------------------------------------------------------------


def _server(args: argparse.Namespace, state: config.State) -> str:
    server = getattr(args, "server", None) or state.last_server
    if not server:
        raise UsageError("no server: pass --server URL (or log in once with bastion login)")
    return normalise_server(server)


def _client(args: argparse.Namespace) -> Client:
    """A client with the credentials of the account last used on the server: an API key or keyring tokens."""
    from shared.client import Client

    state = config.load_state()
    server = _server(args, state)
    api_key = os.environ.get("BASTION_API_KEY")
    if api_key:
        return Client(server, api_key=api_key, user_agent=CLI_AGENT)
    account = state.account_for(server)
    tokens = credentials.load(server, account.email) if account else None
    if account is None or tokens is None:
        raise UsageError(f"not logged in to {server}: run bastion login --server {server} --email EMAIL")
    client = Client(server, tokens=tokens, user_agent=CLI_AGENT)
    client.on_tokens = lambda pair: credentials.save(server, account.email, pair)
    return client


def _password(args: argparse.Namespace, prompt: str) -> str:
    if getattr(args, "password_stdin", False):
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass(prompt)
    else:
        raise UsageError("no terminal to ask for the password: use --password-stdin")
    if not password:
        raise UsageError("the password is empty")
    return password


def _code(args: argparse.Namespace, prompt: str) -> str:
    """A TOTP or recovery code: from standard input with --code-stdin, else asked on the terminal."""
    if getattr(args, "code_stdin", False):
        code = sys.stdin.readline().strip()
    elif sys.stdin.isatty():
        code = input(prompt).strip()
    else:
        raise UsageError("a second factor is needed and there is no terminal to ask for it: use --code-stdin")
    if not code:
        raise UsageError("the code is empty")
    return code


def _show_totp_secret(secret: Any) -> None:
    """The QR code to scan, and the secret to type where a camera cannot be used; on standard error, so that
    --json output stays one document."""
    from shared.qr import terminal_qr

    print(terminal_qr(secret.otpauth_uri), file=sys.stderr)
    print(f"Scan this with an authenticator app, or enter the key {secret.secret}\n({secret.otpauth_uri})",
          file=sys.stderr)


def _recovery_codes_text(codes: list[str]) -> str:
    return ("TOTP is on. Recovery codes, each good once (shown this once; keep them somewhere safe):\n  "
            + "\n  ".join(codes))


async def _second_factor(args: argparse.Namespace, client: Client, refused: ApiError) -> Any:
    """Finish a login the server answered with `mfa_required` or `mfa_enrolment_required`: the token pair."""
    token = refused.extra.get("mfa_token", "")
    if refused.code == Code.MFA_REQUIRED:
        return await client.verify_mfa(token, _code(args, "Code from your authenticator app (or a recovery code): "))
    print(f"bastion: {refused.detail}", file=sys.stderr)
    _show_totp_secret(await client.start_totp(mfa_token=token))
    confirmed = await client.confirm_totp(_code(args, "The code it shows now: "), mfa_token=token)
    # On standard error even with --json: the login's output is the user, and these must be seen now.
    print(_recovery_codes_text(confirmed.recovery_codes), file=sys.stderr)
    return confirmed.session


# -- the commands ----------------------------------------------------------------------------------


async def _login(args: argparse.Namespace) -> int:
    state = config.load_state()
    server = _server(args, state)
    credentials.check()
    if args.device:
        return await _device_login(args, state, server)
    if not args.email:
        raise UsageError("--email is needed (or log in with --device)")
    password = _password(args, f"Password for {args.email} on {server}: ")
    from shared.client import Client

    previous = credentials.load(server, args.email)
    async with Client(server, user_agent=CLI_AGENT) as client:
        client.on_tokens = lambda pair: credentials.save(client.server, args.email, pair)
        try:
            answer = await client.login(args.email, password)
        except ApiError as exc:
            if exc.code not in (Code.MFA_REQUIRED, Code.MFA_ENROLMENT_REQUIRED):
                raise
            answer = await _second_factor(args, client, exc)
    if previous is not None:
        await _end_cli_session(server, previous)
    state.remember(server, args.email)
    config.save_state(state)
    _emit(args, answer.user, text=f"logged in to {server} as {answer.user.email} ({answer.user.role})")
    return EXIT_OK


async def _end_cli_session(server: str, tokens: Tokens) -> None:
    """Revoke the session these tokens (the ones a new login replaced in the keyring) belong to, when it is a
    session of this command line: each login ends the one before it instead of leaving it alive on the server.
    A console's session (which shares the keyring entry) is left alone; one already over is nothing to do."""
    from shared.client import Client, Unreachable

    async with Client(server, tokens=tokens, user_agent=CLI_AGENT) as old:  # no on_tokens: the keyring is the new's
        try:
            if any(s.current and s.user_agent == CLI_AGENT for s in await old.sessions()):
                await old.logout()
        except (ApiError, Unreachable):
            pass  # expired, revoked, or the server went away meanwhile: the new login stands either way


async def _device_login(args: argparse.Namespace, state: config.State, server: str) -> int:
    """RFC 8628: show the code (and its QR code) on standard error, poll at the server's interval, keep the
    tokens of whoever approved it."""
    import socket

    from shared.client import Client
    from shared.qr import terminal_qr

    async with Client(server, user_agent=CLI_AGENT) as client:
        grant = await client.start_device_login(f"bastion CLI on {socket.gethostname()}"[:100])
        print(f"{terminal_qr(grant.verification_uri_complete)}\nTo sign in, open {grant.verification_uri} where you "
              f"are signed in and enter the code {grant.user_code}\n(or scan the QR code; waiting for approval…)",
              file=sys.stderr, flush=True)
        interval = grant.interval
        deadline = time.monotonic() + grant.expires_in
        while True:
            await asyncio.sleep(interval)
            try:
                answer = await client.device_token(grant.device_code)
                break
            except ApiError as exc:
                if exc.code == Code.SLOW_DOWN:
                    interval += 5  # RFC 8628 section 3.5: for this poll and every one after it
                elif exc.code != Code.AUTHORIZATION_PENDING or time.monotonic() > deadline:
                    raise
        previous = credentials.load(client.server, answer.user.email)
        credentials.save(client.server, answer.user.email, client.tokens)
    if previous is not None:
        await _end_cli_session(server, previous)
    state.remember(server, answer.user.email)
    config.save_state(state)
    _emit(args, answer.user, text=f"logged in to {server} as {answer.user.email} ({answer.user.role})")
    return EXIT_OK


async def _logout(args: argparse.Namespace) -> int:
    state = config.load_state()
    server = _server(args, state)
    account = state.account_for(server)
    if account is None:
        raise UsageError(f"not logged in to {server}")
    tokens = credentials.load(server, account.email)
    from shared.client import Client

    try:
        if tokens is not None:
            async with Client(server, tokens=tokens, user_agent=CLI_AGENT) as client:
                await client.logout()
    finally:
        credentials.forget(server, account.email)  # even when the server could not be told
        state.forget(server, account.email)
        config.save_state(state)
    _emit(args, {"server": server, "email": account.email}, text=f"logged out of {server} ({account.email})")
    return EXIT_OK


def _secret_line(args: argparse.Namespace, prompt: str, what: str) -> str:
    """A token or a password: the next line of standard input with --stdin, else asked without echo."""
    if getattr(args, "stdin", False):
        value = sys.stdin.readline().strip()
    elif sys.stdin.isatty():
        value = getpass.getpass(prompt).strip()
    else:
        raise UsageError(f"no terminal to ask for the {what}: use --stdin")
    if not value:
        raise UsageError(f"the {what} is empty")
    return value


async def _links_by_mail(args: argparse.Namespace) -> int:
    """`bastion password forgot|reset` and `bastion email verify`: no login needed (the mail is the proof);
    `bastion email send-verification` is the logged-in user's."""
    from shared.client import Client

    if args.command == "email" and args.action == "send-verification":
        async with _client(args) as client:
            await client.request_email_verification()
        _emit(args, {"requested": True}, text="a verification link is on its way to your address")
        return EXIT_OK
    async with Client(_server(args, config.load_state()), user_agent=CLI_AGENT) as client:
        if args.action == "forgot":
            await client.request_password_reset(args.email)
            _emit(args, {"requested": True}, text=f"if {args.email} has an account there, a reset link is on its way")
        elif args.action == "reset":
            token = _secret_line(args, "Token from the mail's link (after #token=): ", "token")
            await client.reset_password(token, _secret_line(args, "New password: ", "password"))
            _emit(args, {"password_reset": True}, text="the password is changed; every session of the account ended")
        else:
            await client.verify_email(_secret_line(args, "Token from the mail's link (after #token=): ", "token"))
            _emit(args, {"email_verified": True}, text="the email address is verified")
    return EXIT_OK


async def _find_user(client: Client, who: str) -> Any:
    if "@" not in who:
        return await client.user(who)
    async for user in client.iter_users(q=who):
        if user.email.lower() == who.lower():
            return user
    raise ApiError(Code.NOT_FOUND, f"no user with the email {who}")


USER_COLUMNS = ("id", "email", "display_name", "role", "disabled", "last_login_at")
KEY_COLUMNS = ("id", "name", "scopes", "created_at", "expires_at", "last_used_at")
COLLECTION_COLUMNS = ("name", "dimension", "metric", "precision", "count", "created_at")


async def _users(args: argparse.Namespace, client: Client) -> int:
    if args.action == "list":
        users = [u async for u in client.iter_users(q=args.q, role=args.role)]
        _emit(args, users, USER_COLUMNS)
    elif args.action == "create":
        password = _password(args, f"Password for {args.email}: ")
        user = await client.create_user(args.email, password, args.role, args.display_name)
        _emit(args, user, text=f"created {user.email} ({user.id})")
    elif args.action == "mfa-reset":
        user = await _find_user(client, args.user)
        await client.reset_mfa(user.id)
        _emit(args, {"mfa_reset": user.id}, text=f"the second factor of {user.email} is removed")
    else:
        user = await client.update_user((await _find_user(client, args.user)).id, disabled=not args.enable)
        _emit(args, user, text=f"{user.email} is {'disabled' if user.disabled else 'enabled'}")
    return EXIT_OK


async def _mfa(args: argparse.Namespace, client: Client) -> int:
    password = _password(args, "Your password: ")
    if args.action == "enrol":
        _show_totp_secret(await client.start_totp(password=password))
        confirmed = await client.confirm_totp(_code(args, "The code it shows now: "))
        _emit(args, {"recovery_codes": confirmed.recovery_codes}, text=_recovery_codes_text(confirmed.recovery_codes))
    else:
        await client.disable_totp(password, _code(args, "A code from your authenticator app (or a recovery code): "))
        _emit(args, {"mfa_enabled": False}, text="TOTP is off")
    return EXIT_OK


async def _keys(args: argparse.Namespace, client: Client) -> int:
    if args.action == "list":
        _emit(args, await client.api_keys(), KEY_COLUMNS)
    elif args.action == "create":
        scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
        key = await client.create_api_key(args.name, scopes, args.expires_at)
        _emit(args, key, text=f"{key.key}\n(the key {key.name}, id {key.id}: shown this once)")
    else:
        await client.revoke_api_key(args.id)
        _emit(args, {"revoked": args.id}, text=f"revoked {args.id}")
    return EXIT_OK


async def _collections(args: argparse.Namespace, client: Client) -> int:
    if args.action == "list":
        _emit(args, await client.collections(), COLLECTION_COLUMNS)
    elif args.action == "create":
        if args.dimension is None and args.embed is None:
            raise UsageError("give --dimension, or --embed MODEL to let the model decide it")
        created = await client.create_collection(args.name, args.dimension, args.metric, args.embed, args.precision)
        _emit(args, created, text=f"created {created.name} ({created.dimension}, {created.metric}, {created.precision})")
    else:
        await client.delete_collection(args.name)
        _emit(args, {"deleted": args.name}, text=f"deleted {args.name}")
    return EXIT_OK


async def _vectors(args: argparse.Namespace, client: Client) -> int:
    if args.action == "upsert":
        total = await _upsert_file(args, client)
        _emit(args, {"upserted_count": total}, text=f"upserted {total} vectors into {args.collection}")
        return EXIT_OK
    vector = None
    if args.vector is not None:
        vector = parse_vector(args.vector, "--vector")
    elif args.vector_file is not None:
        vector = read_vector(args.vector_file)
    if vector is None and args.id is None and args.text is None:
        raise UsageError("give --text, --id, --vector or --vector-file")
    filter = read_json(args.filter, "--filter") if args.filter else None
    answer = await client.query(args.collection, vector=vector, id=args.id, text=args.text, mode=args.mode,
                                top_k=args.top_k, filter=filter, namespace=args.namespace,
                                include_values=args.include_values, include_text=args.text is not None)
    _emit(args, answer, text="\n".join(
        f"{m.score:10.4f}  {m.id}  {m.text or ''}  {json.dumps(m.metadata) if m.metadata else ''}".rstrip()
        for m in answer.matches
    ) or "no matches")
    return EXIT_OK


async def _embedders(args: argparse.Namespace, client: Client) -> int:
    answer = await client.embedders()
    _emit(args, answer, text="\n".join(
        f"{'ready' if e.available else 'absent':7} {e.dimension:5}  {e.name}" for e in answer.items
    ))
    return EXIT_OK


def _upsert_batches(path: Path, size: int, dimension: int) -> Iterable[tuple[str, list[dict[str, Any]], list[int]]]:
    """(digest of its lines, vectors, their line numbers) of each batch of a JSONL file, read as it is sent; a
    bad line stops it, named. Values of the collection's dimension go as values_b64 (little-endian float32): a
    quarter of the bytes, and the server parses no floats."""
    import base64
    import hashlib
    import struct

    import orjson

    batch: list[dict[str, Any]] = []
    line_numbers: list[int] = []
    digest = hashlib.sha256()
    number = 0
    try:
        with path.open("rb") as handle:
            for line_number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    item = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise InputError(f"{path}:{line_number}: not JSON ({exc.msg})") from None
                if not isinstance(item, dict) or "id" not in item or not (
                    isinstance(item.get("values"), list) or isinstance(item.get("text"), str)
                ):
                    raise InputError(f'{path}:{line_number}: each line is an object with "id" and "values", "text" or both')
                values = item.get("values")
                # Text alone goes as it is (the collection embeds it); values that are not all numbers, or not
                # as many as the collection holds, too: the server names what is wrong with them as written.
                if values is not None and len(values) == dimension and all(type(v) in (int, float) for v in values):
                    try:
                        item["values_b64"] = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
                        del item["values"]
                    except (struct.error, OverflowError):
                        pass
                batch.append(item)
                line_numbers.append(line_number)
                digest.update(line)
                if len(batch) == size:
                    yield digest.hexdigest(), batch, line_numbers
                    number, batch, line_numbers, digest = number + 1, [], [], hashlib.sha256()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if batch:
        yield digest.hexdigest(), batch, line_numbers
    elif number == 0:
        raise InputError(f"{path} holds no vectors")


def _upsert_progress_path(args: argparse.Namespace, server: str) -> Path:
    import hashlib

    key = json.dumps([str(args.file.resolve()), server, args.collection, args.namespace or "", args.batch])
    return config.state_path().parent / "upserts" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


async def _upsert_file(args: argparse.Namespace, client: Client) -> int:
    """Stream a JSONL file into a collection, `--parallel` batches in flight. The batches acknowledged are
    recorded by the digest of their lines, so that the same command after a failure (the file's bad line
    mended, or the server back) skips them and sends the rest."""
    from shared.client import Unreachable

    if not 1 <= args.batch <= 1000:
        raise UsageError("--batch is from 1 to 1000")
    if not 1 <= args.parallel <= 32:
        raise UsageError("--parallel is from 1 to 32")
    progress_path = _upsert_progress_path(args, client.server)
    done: set[str] = set()
    if not args.restart:
        try:
            done = set(json.loads(progress_path.read_text())["done"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    skipped = len(done)
    total_lines = _count_lines(args.file)
    shown = _Progress(total_lines, sys.stderr.isatty() and not getattr(args, "json", False))
    sent = 0

    def save() -> None:
        progress_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = progress_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"done": sorted(done)}))
        os.replace(tmp, progress_path)

    async def send(digest: str, batch: list[dict[str, Any]], line_numbers: list[int]) -> None:
        nonlocal sent
        try:
            count = await client.upsert(args.collection, batch, args.namespace)
        except ApiError as exc:
            _name_file_lines(exc, args.file, line_numbers)
            raise
        sent += count  # not `sent += await ...`: that reads `sent` before the wait, losing the others' counts
        done.add(digest)
        shown.advance(len(batch))

    in_flight: set[asyncio.Task] = set()
    try:
        dimension = (await client.collection(args.collection)).dimension
        for digest, batch, line_numbers in _upsert_batches(args.file, args.batch, dimension):
            if digest in done:
                shown.advance(len(batch))
                continue
            if len(in_flight) >= args.parallel:
                finished, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    task.result()  # the first failure stops the run
            in_flight.add(asyncio.ensure_future(send(digest, batch, line_numbers)))
        if in_flight:
            for task in (await asyncio.wait(in_flight))[0]:
                task.result()
    except BaseException as exc:
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        if len(done) > skipped:
            save()
            note = f"{len(done)} batches of {args.batch} are in; the same command resumes after them"
            if isinstance(exc, ApiError):
                exc.detail = f"{exc.detail} ({note})"
            elif isinstance(exc, Unreachable):
                raise Unreachable(f"{exc} ({note})") from None
        raise
    finally:
        shown.close()
    progress_path.unlink(missing_ok=True)
    return sent


_BATCH_FIELD = re.compile(r"vectors\.(\d+)(?:\.(.*))?")


def _name_file_lines(error: ApiError, path: Path, line_numbers: list[int]) -> None:
    """Name a refused record by its file and line, and its field as the file has it: the server sees the
    batch's `vectors.234.values_b64`, the user wrote line 1235's `values`."""
    for field_error in error.errors:
        found = _BATCH_FIELD.fullmatch(field_error.field)
        if found and int(found[1]) < len(line_numbers):
            name = "values" if found[2] == "values_b64" else found[2]
            field_error.field = f"{path}:{line_numbers[int(found[1])]}" + (f": {name}" if name else "")


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


class _Progress:
    """A one-line progress bar on standard error, on a terminal only (scripts read stdout, --json)."""

    def __init__(self, total: int, visible: bool) -> None:
        self.total, self.visible, self.count = max(total, 1), visible, 0
        self.started = time.monotonic()
        self.drawn = 0.0

    def advance(self, count: int) -> None:
        self.count += count
        now = time.monotonic()
        if self.visible and (now - self.drawn > 0.1 or self.count >= self.total):
            self.drawn = now
            share = min(1.0, self.count / self.total)
            rate = self.count / max(now - self.started, 1e-6)
            bar = "#" * int(share * 30)
            sys.stderr.write(f"\r[{bar:<30}] {self.count:,}/{self.total:,} {share:.0%} {rate:,.0f}/s")
            sys.stderr.flush()

    def close(self) -> None:
        if self.visible and self.count:
            sys.stderr.write("\n")


async def _events(args: argparse.Namespace, client: Client) -> int:
    topics = args.topic or ["users", "me"]
    feed = client.follow(topics, since=args.since)
    connected = dropped = False
    async for message in feed:
        kind = message.get("type")
        if kind == "dropped":
            if not connected:
                # The first connection: fail as every other command does (a drop later is reconnected).
                raise message["error"] or ApiError(Code.SERVICE_UNAVAILABLE, message["reason"])
            dropped = True
            print(f"bastion: the stream dropped ({message['reason']}); reconnecting in {message['retry_in']:.1f} s",
                  file=sys.stderr, flush=True)
        elif kind == "subscribed":
            if not connected and not message.get("topics"):
                # Every topic was refused (each named above): waiting would print nothing, for ever.
                raise ApiError(Code.FORBIDDEN, "none of the topics asked for can be followed")
            if dropped:
                after = f"resuming after event {feed.last_event_id}" if feed.last_event_id else "nothing to resume"
                print(f"bastion: reconnected; {after}", file=sys.stderr, flush=True)
            connected, dropped = True, False
        elif kind == "error":
            detail = message.get("detail") or message.get("code") or "refused"
            if "topic" not in message and not connected:
                # The subscription itself was refused (a malformed --topic or --since): no `subscribed` follows.
                try:
                    code = Code(message.get("code"))
                except ValueError:
                    code = Code.VALIDATION_FAILED
                raise ApiError(code, detail)
            print(f"bastion: {message.get('topic') or 'the stream'}: {detail}", file=sys.stderr, flush=True)
        elif kind == "resync":
            why = message.get("reason") or "the history no longer reaches back that far"
            print(f"bastion: some events were missed ({why})", file=sys.stderr, flush=True)
        elif kind == "event":
            if getattr(args, "json", False):
                print(json.dumps(message, separators=(",", ":")), flush=True)
            else:
                print(f"{message.get('at', '')}  {message.get('event', '')}  {message.get('topic', '')}  "
                      f"{json.dumps(message.get('data') or {}, separators=(',', ':'))}", flush=True)
    return EXIT_OK


BACKUP_COLUMNS = ("name", "size_bytes", "created_at")


async def _admin(args: argparse.Namespace, client: Client) -> int:
    if args.action == "run":
        run = await client.run_backup()
        _emit(args, run, text=f"writing {run.name}; `bastion admin backups list` shows when it is done")
        return EXIT_OK
    listing = await client.backups()
    if getattr(args, "json", False):
        _emit(args, listing)
        return EXIT_OK
    _emit(args, listing.items, BACKUP_COLUMNS)
    if listing.last_run is not None:
        run = listing.last_run
        print(f"latest run: {run.name} {run.state}" + (f": {run.error}" if run.error else ""))
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace, Client], Awaitable[int]]] = {
    "users": _users, "mfa": _mfa, "keys": _keys, "collections": _collections, "vectors": _vectors, "embedders": _embedders, "events": _events,
    "admin": _admin,
}


async def _with_client(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        try:
            return await COMMANDS[args.command](args, client)
        except ApiError as exc:
            if exc.code in (Code.UNAUTHORIZED, Code.TOKEN_REUSED) and client.tokens is not None:
                # The keyring's session is over (logged out elsewhere, revoked, a password reset, expired):
                # the server's reason alone does not say what to do next.
                account = config.load_state().account_for(client.server)
                email = account.email if account else "EMAIL"
                exc.detail = (f"{exc.detail}; the session has ended: log in again with bastion login --server "
                              f"{client.server} --email {email}")
            raise


# -- bastion up --------------------------------------------------------------------------------------


def _answers(url: str) -> bool:
    import urllib.request  # here: the console does not need it

    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2):
            return True
    except OSError:
        return False


def _bastiond(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a `bastiond` command: what only the daemon knows (its settings, its database) is asked of it, never
    read by importing it (the client stays a client)."""
    return subprocess.run([sys.executable, "-m", "daemon", *args], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def _daemon_info() -> dict[str, Any]:
    done = _bastiond("info")
    if done.returncode != 0:
        raise UsageError(done.stderr.strip().removeprefix("bastiond: ") or "bastiond info failed")
    return json.loads(done.stdout)


def _private_file(path: Path, flags: int) -> int:
    """A file in the data directory, 0600 from its first byte: the daemon holds that directory private and
    warns at start about anything in it that others may read (it would, about our log and pid files)."""
    return os.open(path, flags | os.O_CREAT, 0o600)


def _start_daemon(data_dir: Path, url: str) -> None:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    log = data_dir / "bastiond.log"
    with open(_private_file(log, os.O_WRONLY | os.O_APPEND), "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "daemon", "serve"], stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,  # it outlives this command
        )
    deadline = time.monotonic() + 30
    while not _answers(url):
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or [""]
            raise UsageError(f"bastiond stopped at start (see {log}): {tail[0][:300]}")
        if time.monotonic() > deadline:
            raise UsageError(f"bastiond did not answer within 30 s (see {log})")
        time.sleep(0.1)
    with open(_private_file(data_dir / "bastiond.pid", os.O_WRONLY | os.O_TRUNC), "w") as pid_file:
        pid_file.write(f"{process.pid}\n")
    print(f"bastiond is running at {url} (pid {process.pid}, data in {data_dir}, log {log}); "
          f"stop it with: kill $(cat {data_dir / 'bastiond.pid'})")


def _first_admin() -> tuple[str, str]:
    """Ask for the first administrator and create it with `bastiond create-admin` (password via env)."""
    if not sys.stdin.isatty():
        raise UsageError("no user exists yet and there is no terminal to ask: run "
                         "BASTION_ADMIN_PASSWORD=... bastiond create-admin --email you@example.com")
    print("\nNo user exists yet. Create the first administrator (there is no default password).")
    email = input("Email: ").strip()
    while True:
        password = getpass.getpass("Password (10 characters or more): ")
        if len(password) < 10:
            print("That is shorter than 10 characters.")
        elif getpass.getpass("Repeat it: ") != password:
            print("The two passwords differ.")
        else:
            break
    done = _bastiond("create-admin", "--email", email, env={**os.environ, "BASTION_ADMIN_PASSWORD": password})
    if done.returncode != 0:
        raise UsageError(done.stderr.strip().removeprefix("bastiond: ") or "create-admin failed")
    print(done.stdout.strip())
    return email, password


async def _log_in_after_setup(url: str, email: str, password: str) -> None:
    from shared.client import Client

    async with Client(url, user_agent=CLI_AGENT) as client:
        client.on_tokens = lambda pair: credentials.save(client.server, email, pair)
        await client.login(email, password)
    state = config.load_state()
    state.remember(client.server, email)
    config.save_state(state)


def _up(args: argparse.Namespace) -> int:
    credentials.check()  # first: with nowhere to keep the login, starting a daemon and asking questions is moot
    info = _daemon_info()  # also applies the migrations: a fresh data dir is ready before the daemon starts
    url = info["url"]
    if _answers(url):
        print(f"reusing the bastiond already running at {url}")
    else:
        _start_daemon(Path(info["data_dir"]), url)
    if info["users"] == 0:
        email, password = _first_admin()
        asyncio.run(_log_in_after_setup(url, email, password))
    if args.no_tui:
        return EXIT_OK
    return _tui(url)


def _tui(server: str | None) -> int:
    from tui.app import BastionApp

    try:
        user_config = config.load_config()
    except config.ConfigError as exc:
        raise UsageError(str(exc)) from None
    if server:
        try:
            server = normalise_server(server)
        except BadServerURL as exc:
            raise UsageError(str(exc)) from None
    credentials.check()  # no keyring: one line and exit 1, before the screen is taken over
    app = BastionApp(server, user_config=user_config)
    app.run()
    return app.return_code or EXIT_OK  # 1 after a crash (Textual has printed it): not "done" for a script


def main(argv: list[str] | None = None) -> int:
    if not (sys.argv[1:] if argv is None else argv):
        return _console(None)  # plain `bastion`: no need to build the commands' parser first
    args = _parser().parse_args(argv)
    if args.command is None:
        return _console(getattr(args, "server", None))
    return _command(args)


def _console(server: str | None) -> int:
    # Before any import of the commands' modules: the console's first screen needs none of them.
    try:
        return _tui(server)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except credentials.NoKeyring as exc:
        return _fail(str(exc), EXIT_SERVER)


def _command(args: argparse.Namespace) -> int:
    from shared.client import Unreachable

    try:
        if args.command == "up":
            return _up(args)
        if args.command == "login":
            return asyncio.run(_login(args))
        if args.command == "logout":
            return asyncio.run(_logout(args))
        if args.command in ("password", "email"):
            return asyncio.run(_links_by_mail(args))
        return asyncio.run(_with_client(args))
    except (UsageError, InputError, BadServerURL, config.ConfigError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except (ApiError, Unreachable, credentials.NoKeyring) as exc:
        return _fail(describe_error(exc), EXIT_SERVER)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


def _fail(message: str, code: int) -> int:
    print(f"bastion: {message}", file=sys.stderr)
    return code
