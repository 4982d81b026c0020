"""`python -m bench.vectors`: the vector service beside numpy brute force and Chroma, same data, same run.

100,000 vectors of dimension 384, cosine, 200 queries, top_k=10, on two seeded data sets:
  (a) structured like real embeddings: 1,000 Gaussian clusters in a 48-d latent space, mapped to 384-d
      by a fixed random projection, plus a little noise; queries drawn the same way, not from the data;
  (b) uniform random vectors in [-1, 1]^384: no structure, where every approximate index loses recall.

Each system runs in a process of its own (so memory is its own): the parent writes the data and the
exact answers (float64 brute force) to a temporary directory and starts one worker per measurement:
  numpy          exact brute force over a normalised float32 matrix, one query at a time
  bastion        the real app (create_app) on SQLite in a fresh data dir: upsert through the vector
                 service (build = upserts + index build), then queries through the service layer
                 (VectorService.query) and through HTTP (POST /collections/{name}/query, an aiohttp
                 client in the same process, so HTTP latency includes the client's side)
  bastion-load   a new process opening the same data dir: time until the app is started and ready,
                 then the same queries through the service layer
  chroma         chromadb's in-process client (PersistentClient in a temp dir), its default HNSW settings
Latency is per query, sequential; memory is the RSS growth of the worker past holding the raw data.
The workers run one after another, so on a shared machine their load differs: the Bastion worker also
times the brute force in turns with its own queries, and the ratio to that is printed too.

Options: --n, --queries (smaller runs for a quick look), --datasets a,b, --skip-chroma.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIM = 384
TOP_K = 10
ROOT = Path(__file__).resolve().parents[1]


# --- data ---------------------------------------------------------------------------------------------

def structured(rng: np.random.Generator, n: int, centres: np.ndarray, projection: np.ndarray) -> np.ndarray:
    latent = centres[rng.integers(len(centres), size=n)] + rng.normal(scale=0.35, size=(n, centres.shape[1]))
    return (latent @ projection + rng.normal(scale=0.05, size=(n, DIM))).astype(np.float32)


def make_data(name: str, n: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20261125)
    if name == "a":
        centres = rng.normal(size=(1000, 48))
        projection = rng.normal(size=(48, DIM)) / np.sqrt(48)
        return structured(rng, n, centres, projection), structured(rng, queries, centres, projection)
    return rng.uniform(-1, 1, size=(n, DIM)).astype(np.float32), rng.uniform(-1, 1, size=(queries, DIM)).astype(np.float32)


def exact_top(data: np.ndarray, queries: np.ndarray) -> np.ndarray:
    x = data.astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = queries.astype(np.float64)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    scores = q @ x.T
    return np.argsort(-scores, axis=1)[:, :TOP_K]


# --- measuring ----------------------------------------------------------------------------------------

def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def summary(latencies: list[float], found: list[list[int]], truth: np.ndarray) -> dict:
    recall = np.mean([len(set(f) & set(t.tolist())) / TOP_K for f, t in zip(found, truth)])
    ms = np.asarray(latencies) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "recall": float(recall)}


def ids_to_rows(ids: list[str]) -> list[int]:
    return [int(i[1:]) for i in ids]


# --- workers (each in its own process) -------------------------------------------------------------------

def worker_numpy(work: Path) -> dict:
    data, queries, truth = np.load(work / "data.npy"), np.load(work / "queries.npy"), np.load(work / "truth.npy")
    base = rss_mb()
    started = time.perf_counter()
    matrix = data / np.linalg.norm(data, axis=1, keepdims=True)
    build = time.perf_counter() - started
    latencies, found = [], []
    for q in queries:
        t = time.perf_counter()
        best = brute_force_query(matrix, q)
        latencies.append(time.perf_counter() - t)
        found.append(best.tolist())
    return {"build_s": build, "memory_mb": rss_mb() - base, **summary(latencies, found, truth)}


def worker_chroma(work: Path) -> dict:
    import chromadb

    data, queries, truth = np.load(work / "data.npy"), np.load(work / "queries.npy"), np.load(work / "truth.npy")
    base = rss_mb()
    client = chromadb.PersistentClient(path=str(work / "chroma"))
    collection = client.create_collection("bench", metadata={"hnsw:space": "cosine"})
    started = time.perf_counter()
    step = 5000
    for s in range(0, len(data), step):
        collection.add(ids=[f"v{i}" for i in range(s, min(len(data), s + step))], embeddings=data[s : s + step])
    build = time.perf_counter() - started
    latencies, found = [], []
    for q in queries:
        t = time.perf_counter()
        result = collection.query(query_embeddings=[q], n_results=TOP_K)
        latencies.append(time.perf_counter() - t)
        found.append(ids_to_rows(result["ids"][0]))
    return {"build_s": build, "memory_mb": rss_mb() - base, **summary(latencies, found, truth)}


async def _start(data_dir: Path):
    from aiohttp import web

    from daemon.app import create_app
    from daemon.settings import Settings

    settings = Settings.from_env({}, data_dir=data_dir, rate_limit_per_minute=0, auth_rate_limit_per_minute=0,
                                 log_level="warning")
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()  # runs every cleanup_ctx: the database, then the vector store loads
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return app, runner, port


def brute_force_query(matrix: np.ndarray, q: np.ndarray) -> np.ndarray:
    scores = matrix @ (q / np.linalg.norm(q))
    best = np.argpartition(-scores, TOP_K)[:TOP_K]
    return best[np.argsort(-scores[best])]


TURN = 20  # queries per turn when the brute force and the service take turns


async def _service_queries(app, principal, queries: np.ndarray, beside: np.ndarray | None = None):
    """Service-layer latencies; with `beside` (a normalised matrix), the brute force timed in turns of
    TURN queries with the service, so both see the same moments of a shared machine's load (turns, not
    single queries: a brute-force pass flushes the CPU caches the next query would otherwise use)."""
    from daemon.context import VECTORS
    from shared.models.vectors import QueryRequest

    service = app[VECTORS]
    requests = [QueryRequest(vector=q.tolist(), top_k=TOP_K) for q in queries]
    latencies, found, brute = [], [], []
    for start in range(0, len(queries), TURN):
        if beside is not None:
            for q in queries[start : start + TURN]:
                t = time.perf_counter()
                brute_force_query(beside, q)
                brute.append(time.perf_counter() - t)
        for request in requests[start : start + TURN]:
            t = time.perf_counter()
            result = await service.query(principal, "bench", request)
            latencies.append(time.perf_counter() - t)
            found.append(ids_to_rows([m.id for m in result.matches]))
    return latencies, found, brute


async def _bastion(work: Path) -> dict:
    import aiohttp

    from daemon.context import USERS, VECTORS
    from daemon.services.principal import ALL_SCOPES, Principal
    from shared.models.vectors import CollectionCreate, UpsertRequest

    data, queries, truth = np.load(work / "data.npy"), np.load(work / "queries.npy"), np.load(work / "truth.npy")
    base = rss_mb()
    app, runner, port = await _start(work / "bastion")
    password = secrets.token_urlsafe(16)
    user = await app[USERS].create("bench@example.com", password, "admin", "", None, "bench")
    principal = Principal(user.id, "admin", scopes=ALL_SCOPES)
    service = app[VECTORS]
    started = time.perf_counter()
    await service.create(principal, CollectionCreate(name="bench", dimension=DIM, metric="cosine"))
    for s in range(0, len(data), 1000):
        body = UpsertRequest.model_validate(
            {"vectors": [{"id": f"v{i}", "values": data[i].tolist()} for i in range(s, min(len(data), s + 1000))]}
        )
        await service.upsert(principal, "bench", body)
    upserted = time.perf_counter() - started
    await service.store.settle()
    build = time.perf_counter() - started
    row = await service.catalog.get("bench")
    mode = await service.store.mode(row.space, "")
    memory = rss_mb() - base
    matrix = data / np.linalg.norm(data, axis=1, keepdims=True)
    latencies, found, brute = await _service_queries(app, principal, queries, beside=matrix)
    del matrix
    result = {"upsert_s": upserted, "build_s": build, "mode": mode, "memory_mb": memory,
              "brute_p50_ms": float(np.percentile(np.asarray(brute) * 1000, 50)), **summary(latencies, found, truth)}

    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
        async with http.post("/api/v1/auth/login", json={"email": "bench@example.com", "password": password}) as r:
            token = (await r.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        latencies, found = [], []
        for q in queries:
            t = time.perf_counter()
            async with http.post("/api/v1/collections/bench/query", json={"vector": q.tolist(), "top_k": TOP_K},
                                 headers=headers) as r:
                body = await r.json()
            latencies.append(time.perf_counter() - t)
            found.append(ids_to_rows([m["id"] for m in body["matches"]]))
    result["http"] = summary(latencies, found, truth)
    await runner.cleanup()  # closes the store, which saves the index beside the database
    return result


async def _bastion_load(work: Path) -> dict:
    from daemon.context import VECTORS
    from daemon.services.principal import ALL_SCOPES, Principal

    queries, truth = np.load(work / "queries.npy"), np.load(work / "truth.npy")
    base = rss_mb()
    started = time.perf_counter()
    app, runner, _ = await _start(work / "bastion")
    load = time.perf_counter() - started
    memory = rss_mb() - base
    service = app[VECTORS]
    row = await service.catalog.get("bench")
    principal = Principal(row.owner_id, "admin", scopes=ALL_SCOPES)
    mode = await service.store.mode(row.space, "")
    latencies, found, _ = await _service_queries(app, principal, queries)
    await runner.cleanup()
    return {"load_s": load, "mode": mode, "memory_mb": memory, **summary(latencies, found, truth)}


WORKERS = {
    "numpy": worker_numpy,
    "chroma": worker_chroma,
    "bastion": lambda work: asyncio.run(_bastion(work)),
    "bastion-load": lambda work: asyncio.run(_bastion_load(work)),
}


# --- the parent --------------------------------------------------------------------------------------------

def run_worker(name: str, work: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "bench.vectors", "--worker", name, "--work", str(work)],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def row(system: str, r: dict, build_key: str = "build_s") -> str:
    if "error" in r:
        return f"| {system} | failed: {r['error']} | | | | |"
    build = f"{r[build_key]:.1f} s" if build_key in r else ""
    memory = f"{r['memory_mb']:.0f} MB" if "memory_mb" in r else ""
    return f"| {system} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['recall']:.3f} | {build} | {memory} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--datasets", default="a,b")
    parser.add_argument("--skip-chroma", action="store_true")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.work)))
        return 0

    print(f"vectors: n={args.n:,} dim={DIM} cosine, {args.queries} queries, top_k={TOP_K}, "
          f"{os.cpu_count()} cores; latency per query, sequential")
    ok = True
    for name in args.datasets.split(","):
        title = {"a": "(a) structured: 1,000 clusters in 48-d, projected to 384-d", "b": "(b) uniform random"}[name]
        with tempfile.TemporaryDirectory(prefix="bench-vectors-") as tmp:
            work = Path(tmp)
            data, queries = make_data(name, args.n, args.queries)
            np.save(work / "data.npy", data)
            np.save(work / "queries.npy", queries)
            np.save(work / "truth.npy", exact_top(data, queries))
            results = {system: run_worker(system, work) for system in ("numpy", "bastion", "bastion-load")}
            if not args.skip_chroma:
                results["chroma"] = run_worker("chroma", work)
        print(f"\n{title}")
        print("| system | p50 ms | p99 ms | recall@10 | build / load | memory |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        print(row("numpy brute force", results["numpy"]))
        bastion, loaded = results["bastion"], results["bastion-load"]
        print(row(f"bastion, service layer ({bastion.get('mode', '?')})", bastion))
        if "http" in bastion:
            print(row("bastion, HTTP", bastion["http"]))
        print(row(f"bastion after restart, service layer ({loaded.get('mode', '?')})", loaded, "load_s"))
        if "chroma" in results:
            print(row("chroma (defaults)", results["chroma"]))
        if "error" in bastion or "error" in loaded:
            ok = False
            continue
        brute = results["numpy"]
        verdicts = [f"recall@10 {bastion['recall']:.3f} (target >= 0.95)",
                    f"service p50 {brute['p50_ms'] / bastion['p50_ms']:.1f}x brute force's "
                    f"({bastion['brute_p50_ms'] / bastion['p50_ms']:.1f}x the brute force timed in turns with it, "
                    f"p50 {bastion['brute_p50_ms']:.3f} ms)"]
        if "chroma" in results and "error" not in results["chroma"]:
            chroma = results["chroma"]
            verdicts.append(f"{chroma['p50_ms'] / bastion['p50_ms']:.1f}x Chroma's p50 at recall "
                            f"{bastion['recall']:.3f} vs {chroma['recall']:.3f}")
        verdicts.append(f"upserts {bastion['upsert_s']:.1f} s of the build")
        print("  " + "; ".join(verdicts))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
