"""The `bastion` command line for scripts, run as a real process against a real daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.daemon_process import ADMIN_EMAIL, ADMIN_PASSWORD, ROOT, Daemon, Refused
from tui import config, credentials

pytestmark = pytest.mark.usefixtures("keyring_ready")


def bastion(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, timeout=60, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("cli-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(home / "config"))
        patch.setenv("XDG_STATE_HOME", str(home / "state"))
        yield home


@pytest.fixture
def private_dirs(cli_home: Path) -> Path:
    """This module's tests share one home, so one login serves them all (the logout test comes last)."""
    return cli_home


@pytest.fixture(scope="module")
def logged_in(daemon: Daemon, cli_home: Path) -> Daemon:
    done = bastion("login", "--server", daemon.url, "--email", ADMIN_EMAIL, "--password-stdin",
                   stdin=ADMIN_PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    return daemon


def test_login_keeps_the_tokens_in_the_keyring_and_no_secret_in_a_file(logged_in: Daemon, private_dirs: Path) -> None:
    tokens = credentials.load(logged_in.url, ADMIN_EMAIL)
    assert tokens is not None
    for path in private_dirs.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert tokens.refresh_token not in text and tokens.access_token not in text and ADMIN_PASSWORD not in text
    assert config.load_state().last == config.Account(logged_in.url, ADMIN_EMAIL)


def test_a_new_login_ends_the_previous_cli_session_and_leaves_a_console_session_alone(logged_in: Daemon) -> None:
    from shared.client import Tokens

    def log_in_again() -> None:
        done = bastion("login", "--server", logged_in.url, "--email", ADMIN_EMAIL, "--password-stdin",
                       stdin=ADMIN_PASSWORD + "\n")
        assert done.returncode == 0, done.stderr

    before = credentials.load(logged_in.url, ADMIN_EMAIL)
    assert before is not None
    log_in_again()
    with pytest.raises(Refused) as refused:
        logged_in.call("GET", "/api/v1/users/me", token=before.access_token)
    assert refused.value.status == 401
    # A console's session in the keyring entry (another client, here urllib's): the next login leaves it be.
    console = logged_in.call("POST", "/api/v1/auth/login", {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    credentials.save(logged_in.url, ADMIN_EMAIL, Tokens.issued(console))
    log_in_again()
    assert logged_in.call("GET", "/api/v1/users/me", token=console["access_token"])["email"] == ADMIN_EMAIL
    assert bastion("users", "list", "--q", "admin@").returncode == 0  # the newest login is the one in use


def test_users_are_created_listed_and_disabled_with_json_output(logged_in: Daemon, unique: str) -> None:
    email = f"cli-{unique}@example.com"
    created = bastion("users", "create", "--email", email, "--password-stdin", "--json", stdin=ADMIN_PASSWORD)
    assert created.returncode == 0, created.stderr
    user = json.loads(created.stdout)
    assert user["email"] == email and user["role"] == "user"
    listed = bastion("users", "list", "--q", f"cli-{unique}", "--json")
    assert [u["id"] for u in json.loads(listed.stdout)] == [user["id"]]
    disabled = bastion("users", "disable", email, "--json")
    assert disabled.returncode == 0, disabled.stderr
    assert json.loads(disabled.stdout)["disabled"] is True
    table = bastion("users", "list", "--q", f"cli-{unique}")
    assert table.stdout.splitlines()[0].split()[:2] == ["ID", "EMAIL"] and email in table.stdout


def test_api_keys_are_created_once_listed_without_secret_and_revoked(logged_in: Daemon, unique: str) -> None:
    created = json.loads(bastion("keys", "create", "--name", f"ci-{unique}", "--scopes", "read", "--json").stdout)
    assert created["key"]
    listing = bastion("keys", "list", "--json").stdout
    assert created["id"] in listing and created["key"] not in listing
    # The key works for scripts, without the keyring, within its scope.
    as_key = {"BASTION_API_KEY": created["key"]}
    assert bastion("collections", "list", "--json", env=as_key).returncode == 0
    refused = bastion("users", "list", "--json", env=as_key)
    assert refused.returncode == 1 and "admin" in refused.stderr
    assert bastion("keys", "revoke", created["id"]).returncode == 0
    assert created["id"] not in bastion("keys", "list", "--json").stdout


def test_collections_and_vectors_round_trip(logged_in: Daemon, unique: str, tmp_path: Path) -> None:
    name = f"cli-{unique}"
    assert bastion("collections", "create", name, "--dimension", "3").returncode == 0
    data = tmp_path / "vectors.jsonl"
    data.write_text('{"id": "a", "values": [1, 0, 0], "metadata": {"kind": "x"}}\n'
                    '{"id": "b", "values": [0, 1, 0], "metadata": {"kind": "y"}}\n')
    upserted = bastion("vectors", "upsert", name, "--file", str(data), "--json")
    assert json.loads(upserted.stdout) == {"upserted_count": 2}, upserted.stderr
    answer = json.loads(bastion("vectors", "query", name, "--vector", "[1, 0.1, 0]", "--top-k", "1", "--json").stdout)
    assert [m["id"] for m in answer["matches"]] == ["a"]
    typed = bastion("vectors", "query", name, "--vector", "0, 1,0.1", "--top-k", "1", "--json")  # as people type it
    assert [m["id"] for m in json.loads(typed.stdout)["matches"]] == ["b"], typed.stderr
    filtered = bastion("vectors", "query", name, "--id", "a", "--filter", '{"kind": "y"}', "--json")
    assert [m["id"] for m in json.loads(filtered.stdout)["matches"]] == ["b"]
    assert name in bastion("collections", "list").stdout
    assert bastion("collections", "delete", name).returncode == 0
    assert name not in bastion("collections", "list").stdout


def test_a_collection_is_made_with_the_precision_asked_for(logged_in: Daemon, unique: str) -> None:
    made = bastion("collections", "create", f"cli-i8-{unique}", "--dimension", "384", "--precision", "i8")
    assert made.returncode == 0 and made.stdout.strip() == f"created cli-i8-{unique} (384, cosine, i8)", made.stderr
    assert bastion("collections", "create", f"cli-default-{unique}", "--dimension", "8").returncode == 0
    listed = {c["name"]: c["precision"] for c in json.loads(bastion("collections", "list", "--json").stdout)}
    assert (listed[f"cli-i8-{unique}"], listed[f"cli-default-{unique}"]) == ("i8", "bf16")  # the server's default
    row = next(line for line in bastion("collections", "list").stdout.splitlines() if f"cli-i8-{unique}" in line)
    assert row.split()[:4] == [f"cli-i8-{unique}", "384", "cosine", "i8"]
    refused = bastion("collections", "create", f"cli-i4-{unique}", "--dimension", "8", "--precision", "i4")
    assert refused.returncode == 2 and "invalid choice: 'i4'" in refused.stderr
    assert f"cli-i4-{unique}" not in bastion("collections", "list").stdout


def test_a_large_upsert_streams_in_parallel_and_resumes_after_a_failure(logged_in: Daemon, unique: str,
                                                                         tmp_path: Path) -> None:
    name = f"cli-big-{unique}"
    assert bastion("collections", "create", name, "--dimension", "4").returncode == 0
    lines = [json.dumps({"id": f"v{i}", "values": [i, 1, 0.5, -2], "metadata": {"i": i}}) for i in range(2500)]
    lines[1234] = json.dumps({"id": "v1234", "values": [1, 2]})  # batch 3 of 5 (500 each) is refused
    data = tmp_path / "big.jsonl"
    data.write_text("\n".join(lines) + "\n")
    failed = bastion("vectors", "upsert", name, "--file", str(data), "--parallel", "1")
    # Named as the file has it: its line, and `values` (the CLI sends values of the right length packed).
    assert failed.returncode == 1 and f"{data}:1235: values: " in failed.stderr and "vectors." not in failed.stderr
    assert "2 batches of 500 are in; the same command resumes after them" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1

    lines[1234] = json.dumps({"id": "v1234", "values": [1234, 1, 0.5, -2], "metadata": {"i": 1234}})
    data.write_text("\n".join(lines) + "\n")
    resumed = bastion("vectors", "upsert", name, "--file", str(data), "--json")
    assert json.loads(resumed.stdout) == {"upserted_count": 1500}, resumed.stderr  # the first two batches skipped
    described = json.loads(bastion("collections", "list", "--json").stdout)
    assert next(c for c in described if c["name"] == name)["count"] == 2500
    answer = json.loads(bastion("vectors", "query", name, "--id", "v2499", "--filter", '{"i": {"$gte": 2499}}',
                                "--json").stdout)
    assert [(m["id"], m["metadata"]) for m in answer["matches"]] == [("v2499", {"i": 2499})]
    again = bastion("vectors", "upsert", name, "--file", str(data), "--json")  # done: a new run sends it all
    assert json.loads(again.stdout) == {"upserted_count": 2500}


def test_records_with_text_are_searched_by_keyword_and_hybrid(logged_in: Daemon, unique: str, tmp_path: Path) -> None:
    name = f"cli-text-{unique}"
    assert bastion("collections", "create", name, "--dimension", "3").returncode == 0
    data = tmp_path / "texts.jsonl"
    data.write_text('{"id": "a", "values": [1, 0, 0], "text": "Le Café de Flore"}\n'
                    '{"id": "b", "values": [0, 1, 0], "text": "a bakery in Lyon"}\n')
    assert bastion("vectors", "upsert", name, "--file", str(data)).returncode == 0
    keyword = json.loads(bastion("vectors", "query", name, "--text", "cafe", "--json").stdout)
    assert [(m["id"], m["text"]) for m in keyword["matches"]] == [("a", "Le Café de Flore")]
    hybrid = bastion("vectors", "query", name, "--text", "lyon", "--vector", "[1, 0, 0]", "--json")
    matches = json.loads(hybrid.stdout)["matches"]
    assert [m["id"] for m in matches] == ["b", "a"]  # b is in both rankings, a in the vector one alone
    assert {"vector_score", "keyword_score"} <= set(next(m for m in matches if m["id"] == "b"))
    refused = bastion("vectors", "query", name, "--text", "cafe", "--mode", "vector")
    assert refused.returncode == 1 and "mode" in refused.stderr
    assert bastion("vectors", "query", name).returncode == 2  # nothing to search by
    listed = json.loads(bastion("embedders", "list", "--json").stdout)
    assert {"name": "BAAI/bge-small-en-v1.5", "dimension": 384} in [
        {"name": e["name"], "dimension": e["dimension"]} for e in listed["items"]]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("users", "frobnicate"), 2, "invalid choice"),
        (("vectors", "upsert", "c", "--file", "/nonexistent/file.jsonl"), 2, "cannot read /nonexistent/file.jsonl"),
        (("vectors", "query", "c", "--vector", "[1,"), 2, "--vector is not JSON"),
        (("vectors", "query", "c", "--vector", "1,x,0"), 2, "--vector: 'x' is not a number"),
        (("vectors", "query", "c", "--vector", "1,nan,0"), 2, "--vector holds a value that is not a finite number"),
        (("vectors", "query", "c", "--vector", '["1", 0]'), 2, '--vector holds "1", which is not a number'),
        (("users", "disable", "nobody-at-all@example.com"), 1, "no user with the email"),
        (("collections", "delete", "no-such-collection"), 1, "Not found"),
    ],
)
def test_failures_exit_with_the_documented_code_and_one_line(logged_in: Daemon, args, code, message) -> None:
    done = bastion(*args)
    assert done.returncode == code
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    if code == 1:
        assert len(done.stderr.strip().splitlines()) == 1


def test_a_bad_jsonl_line_is_named(logged_in: Daemon, unique: str, tmp_path: Path) -> None:
    name = f"cli-bad-{unique}"
    assert bastion("collections", "create", name, "--dimension", "1").returncode == 0
    data = tmp_path / "bad.jsonl"
    data.write_text('{"id": "a", "values": [1]}\nnot json\n')
    done = bastion("vectors", "upsert", name, "--file", str(data))
    assert done.returncode == 2 and f"{data}:2: not JSON" in done.stderr


def test_a_record_the_server_refuses_is_named_by_its_line_and_field(logged_in: Daemon, unique: str,
                                                                     tmp_path: Path) -> None:
    name = f"cli-refused-{unique}"
    assert bastion("collections", "create", name, "--dimension", "2").returncode == 0
    data = tmp_path / "refused.jsonl"
    data.write_text('{"id": "a", "values": [1, 0]}\n\n{"id": "b", "values": [1e39, 0]}\n'
                    '{"id": "c", "values": [0, 1], "metadata": {"$bad": 1}}\n')
    done = bastion("vectors", "upsert", name, "--file", str(data))
    assert done.returncode == 1, done.stderr
    # Both refusals, each at its line (the blank line 2 counted), and the field as the file writes it.
    assert f"{data}:3: values: " in done.stderr and f"{data}:4: metadata.$bad: " in done.stderr, done.stderr
    assert "values_b64" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    described = json.loads(bastion("collections", "list", "--json").stdout)
    assert next(c for c in described if c["name"] == name)["count"] == 0  # the batch is refused whole


def test_an_unreachable_server_is_one_line_and_exit_1() -> None:
    done = bastion("login", "--server", f"http://127.0.0.1:{free_port()}", "--email", "a@example.com",
                   "--password-stdin", stdin="whatever-password")
    assert done.returncode == 1 and done.stderr.startswith("bastion: cannot reach http://127.0.0.1:")
    assert len(done.stderr.strip().splitlines()) == 1


def test_events_tail_fails_at_once_when_it_cannot_start(daemon: Daemon) -> None:
    """Reconnecting is for drops: a server that is not there, or a refused key, is one line and exit 1."""
    nobody = bastion("events", "tail", "--server", f"http://127.0.0.1:{free_port()}", env={"BASTION_API_KEY": "x"})
    refused = bastion("events", "tail", "--server", daemon.url, env={"BASTION_API_KEY": "bst_not_a_real_key"})
    assert nobody.returncode == 1 and nobody.stderr.startswith("bastion: cannot reach http://127.0.0.1:")
    assert refused.returncode == 1 and "the API key was refused" in refused.stderr
    assert len(nobody.stderr.strip().splitlines()) == len(refused.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--since", "not-an-id"), "subscribe.since"),
        (("--topic", "nonsense"), "subscribe.topics.0"),
        (("--topic", "collections/no-such-collection"), "none of the topics asked for can be followed"),
    ],
)
def test_events_tail_exits_when_its_subscription_is_refused(logged_in: Daemon, args, says) -> None:
    """A tail that can follow nothing says why and exits 1, instead of waiting in silence for ever."""
    done = bastion("events", "tail", *args)
    assert done.returncode == 1, done.stderr
    assert says in done.stderr.splitlines()[-1] and "Traceback" not in done.stderr


def test_a_session_ended_elsewhere_says_to_log_in_again(logged_in: Daemon, unique: str, tmp_path: Path) -> None:
    """Another account's login, in a home of its own, so that this module's shared login stays alive."""
    email = f"ended-{unique}@example.com"
    logged_in.call("POST", "/api/v1/users", {"email": email, "password": ADMIN_PASSWORD},
                   token=logged_in.admin_token())
    home = {"XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    assert bastion("login", "--server", logged_in.url, "--email", email, "--password-stdin",
                   stdin=ADMIN_PASSWORD + "\n", env=home).returncode == 0
    tokens = credentials.load(logged_in.url, email)
    assert tokens is not None
    logged_in.call("POST", "/api/v1/auth/logout", token=tokens.access_token)  # as from another terminal
    try:
        done = bastion("keys", "list", env=home)
    finally:
        credentials.forget(logged_in.url, email)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"bastion: Authentication required: the refresh token is not valid; the session has ended: log in again "
        f"with bastion login --server {logged_in.url} --email {email}"]


def test_without_a_login_commands_say_how_to_log_in() -> None:
    server = f"http://127.0.0.1:{free_port()}"
    done = bastion("users", "list", "--server", server)
    assert done.returncode == 2 and f"not logged in to {server}" in done.stderr


def test_help_documents_the_exit_codes() -> None:
    done = bastion("--help")
    assert done.returncode == 0
    assert "exit codes:" in done.stdout and "2  usage" in done.stdout


def test_events_tail_prints_events_as_they_happen(logged_in: Daemon, unique: str) -> None:
    import queue
    import threading
    import time

    tail = subprocess.Popen([sys.executable, "-m", "tui", "events", "tail", "--json"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in tail.stdout], daemon=True).start()  # type: ignore[union-attr]
    token = logged_in.admin_token()
    emails = []
    try:
        # Until tail has subscribed, an event can pass it by: create users until one is printed.
        deadline = time.monotonic() + 30
        while True:
            emails.append(f"tail-{unique}-{len(emails)}@example.com")
            logged_in.call("POST", "/api/v1/users", {"email": emails[-1], "password": ADMIN_PASSWORD}, token)
            try:
                event = json.loads(lines.get(timeout=1))
                break
            except queue.Empty:
                assert time.monotonic() < deadline, "events tail printed nothing"
    finally:
        tail.terminate()
        tail.wait(timeout=10)
        tail.stdout.close()  # type: ignore[union-attr]
        tail.stderr.close()  # type: ignore[union-attr]
    assert event["type"] == "event" and event["event"] == "user.created" and event["data"]["email"] in emails


def test_events_tail_reconnects_after_a_drop_and_resumes(logged_in: Daemon, proxy, unique: str) -> None:
    import queue
    import threading
    import time

    token = logged_in.admin_token()
    key = logged_in.call("POST", "/api/v1/auth/api-keys", {"name": f"tail-{unique}", "scopes": ["read", "admin"]},
                         token)["key"]
    # Through the proxy, with an API key (the keyring's login is for the daemon's own URL).
    tail = subprocess.Popen([sys.executable, "-m", "tui", "events", "tail", "--json", "--server", proxy.url],
                            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "BASTION_API_KEY": key})
    out: queue.Queue[str] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    for stream, lines in ((tail.stdout, out), (tail.stderr, err)):
        threading.Thread(target=lambda s=stream, q=lines: [q.put(line) for line in s], daemon=True).start()

    def create(email: str) -> None:
        logged_in.call("POST", "/api/v1/users", {"email": email, "password": ADMIN_PASSWORD}, token)

    def next_line(lines: queue.Queue[str], what: str) -> str:
        try:
            return lines.get(timeout=30)
        except queue.Empty:
            raise AssertionError(f"events tail printed no {what}; exit code {tail.poll()}") from None

    try:
        deadline = time.monotonic() + 30
        while True:  # until tail has subscribed an event can pass it by: create users until one is printed
            create(f"tail-before-{unique}-{time.monotonic()}@example.com")
            try:
                last = json.loads(out.get(timeout=1))
                break
            except queue.Empty:
                assert time.monotonic() < deadline, "events tail printed nothing"
        proxy.cut()
        assert "the stream dropped" in next_line(err, "line about the drop")
        during = f"tail-during-{unique}@example.com"
        create(during)  # straight to the daemon, which stays up
        proxy.restore()
        while "reconnected" not in (line := next_line(err, "line about the reconnect")):
            assert "the stream dropped" in line  # attempts made while the proxy was still cut
        # Nothing is printed while cut: the event before the one made meanwhile is the last one seen before it.
        while (event := json.loads(next_line(out, "event after the reconnect")))["data"].get("email") != during:
            last = event
        assert event["event"] == "user.created"
        assert f"resuming after event {last['id']}" in line
    finally:
        tail.terminate()
        tail.wait(timeout=10)
        tail.stdout.close()  # type: ignore[union-attr]
        tail.stderr.close()  # type: ignore[union-attr]


# Last: it ends the session the tests above share.
def test_logout_revokes_the_session_and_deletes_the_keyring_entry(logged_in: Daemon) -> None:
    tokens = credentials.load(logged_in.url, ADMIN_EMAIL)
    assert tokens is not None
    done = bastion("logout")
    assert done.returncode == 0, done.stderr
    assert credentials.load(logged_in.url, ADMIN_EMAIL) is None
    with pytest.raises(Refused) as refused:
        logged_in.call("GET", "/api/v1/users/me", token=tokens.access_token)
    assert refused.value.status == 401
    # The server is still the default: a command says how to log in again there, not that none is known.
    after = bastion("users", "list")
    assert after.returncode == 2
    assert after.stderr.strip() == f"bastion: not logged in to {logged_in.url}: run bastion login --server {logged_in.url} --email EMAIL"

