"""Vectors on two real `bastiond` processes sharing PostgreSQL (a schema of this test's own) and Redis (a key
prefix of its own), each with a data directory and an index of its own, as two pods have (issue 22).

What a replica holds in memory is read from its /metrics (`bastion_vector_index_vectors`), which does not
make it catch up the way a query does. To cut the event bus between the two without stopping the machine's
Redis, B is given a key prefix of its own: it then hears none of A's events."""

from __future__ import annotations

import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.daemon_process import Daemon, Refused, start
from tests.daemon_process import replicas as two_replicas

WAIT_S = 20  # the reconciliation bound is 2 s; this is the test's patience on a busy machine
DIM = 8


@pytest.fixture
def shared(pg_url: str, redis_url: str, redis_prefix: str) -> dict[str, str]:
    return {"BASTION_DATABASE_URL": pg_url, "BASTION_REDIS_URL": redis_url, "BASTION_REDIS_PREFIX": redis_prefix,
            "BASTION_SECRET_KEY": "replicas-share-this-at-rest-key-0123456789"}


@pytest.fixture
def replicas(tmp_path: Path, shared: dict[str, str]) -> Iterator[tuple[Daemon, Daemon]]:
    with two_replicas(tmp_path, shared) as pair:
        yield pair


def _vectors(ids: list[str], seed: int) -> list[dict]:
    values = np.random.default_rng(seed).normal(size=(len(ids), DIM)).round(4).tolist()
    return [{"id": i, "values": v, "metadata": {"batch": seed, "even": n % 2 == 0}} for n, (i, v) in
            enumerate(zip(ids, values))]


def _query(daemon: Daemon, token: str, collection: str, vector: list[float], **extra) -> list[str]:
    body = {"vector": vector, "top_k": 1000, **extra}
    return [m["id"] for m in daemon.call("POST", f"/api/v1/collections/{collection}/query", body, token)["matches"]]


def _held(daemon: Daemon, collection: str, namespace: str = "") -> int | None:
    """How many vectors of the namespace the replica holds in memory (None: it holds none)."""
    with urllib.request.urlopen(daemon.url + "/metrics", timeout=15) as response:
        text = response.read().decode()
    found = re.search(rf'bastion_vector_index_vectors{{collection="{collection}",namespace="{namespace}"}} (\S+)', text)
    return int(float(found[1])) if found else None


def _eventually(check, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_write_on_either_replica_is_read_on_the_other_at_once(replicas):
    a, b = replicas
    token = a.admin_token()
    a.call("POST", "/api/v1/collections", {"name": "docs", "dimension": DIM, "metric": "cosine"}, token)
    probe = [1.0] * DIM
    assert _query(b, token, "docs", probe) == []  # B holds the collection in memory from here on

    upserted = _vectors([f"a{i}" for i in range(20)], seed=1)
    a.call("POST", "/api/v1/collections/docs/upsert", {"vectors": upserted}, token)
    assert sorted(_query(b, token, "docs", probe)) == sorted(v["id"] for v in upserted)  # no wait in between
    assert b.call("POST", "/api/v1/collections/docs/fetch", {"ids": ["a3"]}, token)["vectors"]["a3"]["values"] == \
        pytest.approx(upserted[3]["values"], abs=1e-6)

    b.call("POST", "/api/v1/collections/docs/delete", {"ids": ["a0", "a1"]}, token)
    b.call("POST", "/api/v1/collections/docs/delete", {"filter": {"even": False}}, token)
    left = sorted(f"a{i}" for i in range(2, 20, 2))
    assert sorted(_query(a, token, "docs", probe)) == left
    # Namespaces and filters answer alike on both.
    a.call("POST", "/api/v1/collections/docs/upsert", {"vectors": _vectors(["n1", "n2"], seed=2), "namespace": "other"},
           token)
    for daemon in (a, b):
        assert daemon.call("GET", "/api/v1/collections/docs", None, token)["namespaces"] == {"": len(left), "other": 2}
        assert sorted(_query(daemon, token, "docs", probe, filter={"batch": 2}, namespace="other")) == ["n1", "n2"]
        assert _query(daemon, token, "docs", probe, filter={"batch": 2}) == []
    b.call("POST", "/api/v1/collections/docs/delete", {"delete_all": True, "namespace": "other"}, token)
    assert a.call("GET", "/api/v1/collections/docs", None, token)["namespaces"] == {"": len(left)}

    # A collection dropped on A and made again on B under the same name holds nothing of the old one.
    a.call("DELETE", "/api/v1/collections/docs", None, token)
    with pytest.raises(Refused) as gone:
        _query(b, token, "docs", probe)
    assert gone.value.status == 404
    b.call("POST", "/api/v1/collections", {"name": "docs", "dimension": DIM, "metric": "cosine"}, token)
    assert _query(a, token, "docs", probe) == []


def test_a_replica_follows_writes_elsewhere_without_being_asked(replicas):
    a, b = replicas
    token = a.admin_token()
    a.call("POST", "/api/v1/collections", {"name": "docs", "dimension": DIM}, token)
    a.call("POST", "/api/v1/collections/docs/upsert", {"vectors": _vectors(["first"], seed=1)}, token)
    _query(b, token, "docs", [1.0] * DIM)
    assert _held(b, "docs") == 1
    a.call("POST", "/api/v1/collections/docs/upsert", {"vectors": _vectors([f"v{i}" for i in range(30)], seed=3)}, token)
    _eventually(lambda: _held(b, "docs") == 31, "B did not apply A's upsert")
    a.call("POST", "/api/v1/collections/docs/delete", {"ids": ["first", "v0"]}, token)
    _eventually(lambda: _held(b, "docs") == 29, "B did not apply A's delete")


def test_a_replica_cut_off_from_the_event_bus_heals_by_reconciliation(tmp_path, shared, redis_prefix):
    # B's prefix lies under the test's, so the fixture's clean-up takes its keys too.
    with two_replicas(tmp_path, shared, {"BASTION_REDIS_PREFIX": f"{redis_prefix}b:"}) as (a, b):
        token = a.admin_token()
        a.call("POST", "/api/v1/collections", {"name": "docs", "dimension": DIM}, token)
        a.call("POST", "/api/v1/collections/docs/upsert", {"vectors": _vectors([f"v{i}" for i in range(10)], seed=1)},
               token)
        _query(b, token, "docs", [1.0] * DIM)
        assert _held(b, "docs") == 10
        a.call("POST", "/api/v1/collections/docs/upsert", {"vectors": _vectors([f"w{i}" for i in range(15)], seed=2)},
               token)
        a.call("POST", "/api/v1/collections/docs/delete", {"ids": ["v0", "v1", "v2"]}, token)
        _eventually(lambda: _held(b, "docs") == 22, "B did not reconcile with the table without the events")
        assert sorted(_query(b, token, "docs", [1.0] * DIM)) == sorted(
            [f"v{i}" for i in range(3, 10)] + [f"w{i}" for i in range(15)])


def test_a_replica_restarted_under_write_load_loses_nothing(replicas, tmp_path, shared):
    a, b = replicas
    token = a.admin_token()
    a.call("POST", "/api/v1/collections", {"name": "docs", "dimension": DIM}, token)
    _query(b, token, "docs", [1.0] * DIM)
    acknowledged: list[str] = []
    stop = threading.Event()

    def write() -> None:
        batch = 0
        while not stop.is_set():
            ids = [f"b{batch}-{i}" for i in range(10)]
            a.call("POST", "/api/v1/collections/docs/upsert", {"vectors": _vectors(ids, seed=batch)}, token)
            acknowledged.extend(ids)
            batch += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        _eventually(lambda: len(acknowledged) >= 100, "the writer did not get going")
        port = int(b.url.rsplit(":", 1)[1])
        b.stop()
        during = len(acknowledged)
        b = start(tmp_path / "b", port, **shared)
        _eventually(lambda: len(acknowledged) >= during + 100, "the writer stalled while B restarted")
    finally:
        stop.set()
        writer.join()
    try:
        everything = sorted(acknowledged)
        seen, cursor = [], None
        while True:
            after = f"&cursor={urllib.parse.quote(cursor)}" if cursor else ""
            page = b.call("GET", f"/api/v1/collections/docs/vectors?limit=200{after}", None, token)
            seen += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == everything
        assert len(_query(b, token, "docs", [1.0] * DIM)) == min(1000, len(everything))
        assert _held(b, "docs") == len(everything)
    finally:
        b.stop()


def test_keyword_search_on_either_replica_follows_writes_on_the_other(replicas):
    a, b = replicas
    token = a.admin_token()
    a.call("POST", "/api/v1/collections", {"name": "notes", "dimension": DIM}, token)

    def keyword(daemon: Daemon, words: str) -> list[str]:
        body = {"text": words, "mode": "keyword", "top_k": 10}
        return sorted(m["id"] for m in daemon.call("POST", "/api/v1/collections/notes/query", body, token)["matches"])

    assert keyword(b, "harbour") == []  # B holds the collection from here on
    records = [{**v, "text": text} for v, text in zip(_vectors(["n1", "n2", "n3"], seed=4),
                                                      ["the harbour at night", "a café by the harbour", "mountains"])]
    a.call("POST", "/api/v1/collections/notes/upsert", {"vectors": records}, token)
    assert keyword(b, "harbour") == ["n1", "n2"]
    b.call("POST", "/api/v1/collections/notes/upsert", {"vectors": [{**records[0], "text": "the mountains at night"}]},
           token)
    b.call("POST", "/api/v1/collections/notes/delete", {"ids": ["n2"]}, token)
    assert keyword(a, "harbour") == []
    assert keyword(a, "mountains") == ["n1", "n3"]


def test_a_collection_deleted_and_made_again_on_one_replica_is_queried_as_such_on_the_other_at_once(
        tmp_path, shared, redis_prefix):
    # B hears none of A's events (a prefix of its own): what it answers comes from SQL, not from what it heard.
    with two_replicas(tmp_path, shared, {"BASTION_REDIS_PREFIX": f"{redis_prefix}b:"}) as (a, b):
        token = a.admin_token()

        def keyword(daemon: Daemon, words: str) -> list[str]:
            body = {"text": words, "mode": "keyword"}
            return [m["id"] for m in daemon.call("POST", "/api/v1/collections/notes/query", body, token)["matches"]]

        a.call("POST", "/api/v1/collections", {"name": "notes", "dimension": DIM}, token)
        a.call("POST", "/api/v1/collections/notes/upsert",
               {"vectors": [{**_vectors(["old"], seed=5)[0], "text": "the harbour at night"}]}, token)
        assert keyword(b, "harbour") == ["old"]
        a.call("DELETE", "/api/v1/collections/notes", None, token)
        with pytest.raises(Refused) as gone:
            keyword(b, "harbour")
        assert gone.value.status == 404
        a.call("POST", "/api/v1/collections", {"name": "notes", "dimension": DIM}, token)
        a.call("POST", "/api/v1/collections/notes/upsert",
               {"vectors": [{**_vectors(["new"], seed=6)[0], "text": "a new harbour"}]}, token)
        assert keyword(b, "harbour") == ["new"]
