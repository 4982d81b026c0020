"""A real bastiond killed (kill -9) while upserts stream in over HTTP: after a restart every upsert it
acknowledged is there whole, and the one in flight is there whole or not at all. And killed while a
namespace's graph is being built: nothing is lost, and the restart builds the graph again to its target."""

from __future__ import annotations

import base64
import random
import signal
import threading
import time
from pathlib import Path

import numpy as np

from tests.daemon_process import start

DIM = 32
BATCH = 1000


def _all_ids(daemon, token: str) -> list[str]:
    ids, cursor = [], None
    while True:
        query = "?limit=200" + (f"&cursor={cursor}" if cursor else "")
        page = daemon.call("GET", f"/api/v1/collections/crash/vectors{query}", token=token)
        ids += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


def test_kill_9_during_http_upserts_leaves_each_one_whole_or_absent(tmp_path: Path, sql_backend: str) -> None:
    settings = {"BASTION_RATE_LIMIT_PER_MINUTE": "0"}
    if sql_backend:
        settings["BASTION_DATABASE_URL"] = sql_backend
    daemon = start(tmp_path / "data", **settings)
    acknowledged: list[int] = []
    three_done = threading.Event()
    try:
        daemon.create_admin()
        token = daemon.admin_token()
        daemon.call("POST", "/api/v1/collections", {"name": "crash", "dimension": DIM}, token=token)
        rng = random.Random(5)

        def write() -> None:
            batch = 0
            while True:
                vectors = [{"id": f"b{batch}-{i}", "values": [rng.random() for _ in range(DIM)],
                            "metadata": {"batch": batch}} for i in range(BATCH)]
                try:
                    daemon.call("POST", "/api/v1/collections/crash/upsert", {"vectors": vectors}, token=token)
                except OSError:
                    return  # the daemon is gone
                acknowledged.append(batch)
                if len(acknowledged) >= 3:
                    three_done.set()
                batch += 1

        writer = threading.Thread(target=write)
        writer.start()
        assert three_done.wait(120)
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait()
        writer.join(30)
    finally:
        daemon.stop()

    daemon = start(tmp_path / "data", port=int(daemon.url.rsplit(":", 1)[1]), **settings)
    try:
        counts: dict[int, int] = {}
        for vector_id in _all_ids(daemon, daemon.admin_token()):
            batch = int(vector_id[1:].split("-")[0])
            counts[batch] = counts.get(batch, 0) + 1
    finally:
        daemon.stop()
    assert set(acknowledged) <= set(counts)
    assert all(n == BATCH for n in counts.values()), counts
    assert len(counts) - len(acknowledged) in (0, 1)  # at most the one in flight landed, whole


BUILD_DIM = 48
BUILD_N = 30_000


def _clustered(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(50, BUILD_DIM)) * 3
    return (centres[rng.integers(50, size=n)] + rng.normal(size=(n, BUILD_DIM))).astype(np.float32)


def test_kill_9_while_the_graph_builds_loses_nothing_and_the_restart_builds_it_again(tmp_path: Path) -> None:
    settings = {"BASTION_RATE_LIMIT_PER_MINUTE": "0", "BASTION_VECTOR_EXACT_MAX": "1000"}
    daemon = start(tmp_path / "data", **settings)
    values = _clustered(1, BUILD_N)
    try:
        daemon.create_admin()
        token = daemon.admin_token()
        daemon.call("POST", "/api/v1/collections", {"name": "graph", "dimension": BUILD_DIM, "metric": "euclidean"},
                    token=token)
        for start_at in range(0, BUILD_N, 1000):  # values_b64: the test's JSON stays small
            vectors = [{"id": f"v{i}", "values_b64": base64.b64encode(values[i].astype("<f4").tobytes()).decode()}
                       for i in range(start_at, start_at + 1000)]
            daemon.call("POST", "/api/v1/collections/graph/upsert", {"vectors": vectors}, token=token)
        for _ in range(1200):  # "building" at once; the graph takes rows once the writes pause
            state = daemon.call("GET", "/api/v1/collections/graph", token=token)["indexes"][""]
            if state["state"] != "building" or state["size"] > 0:
                break
            time.sleep(0.05)
        # Killed while it builds (or, on a fast machine, while it takes in the last held-out rows).
        assert state["state"] == "building" or state["size"] < BUILD_N, state
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait()
    finally:
        daemon.stop()

    daemon = start(tmp_path / "data", port=int(daemon.url.rsplit(":", 1)[1]), **settings)
    try:
        token = daemon.admin_token()
        described = daemon.call("GET", "/api/v1/collections/graph", token=token)
        assert described["count"] == BUILD_N  # every acknowledged upsert
        for _ in range(600):  # the restarted daemon builds the graph again from the table
            index = daemon.call("GET", "/api/v1/collections/graph", token=token)["indexes"][""]
            if index["state"] == "ready" and index["size"] == BUILD_N:
                break
            time.sleep(0.5)
        assert index["state"] == "ready" and index["size"] == BUILD_N, index
        assert index["recall"] >= 0.95 and index["ef"] >= 32
        queries = _clustered(2, 30)  # drawn like the data, never stored
        found = 0
        for q in queries:
            matches = daemon.call("POST", "/api/v1/collections/graph/query", {"vector": q.tolist(), "top_k": 10},
                                  token=token)["matches"]
            truth = np.argsort(np.linalg.norm(values - q, axis=1))[:10]
            found += len({int(m["id"][1:]) for m in matches} & set(truth.tolist()))
        assert found / (10 * len(queries)) >= 0.95
    finally:
        daemon.stop()
