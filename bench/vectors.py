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
                 (VectorService.query)
  bastion-load   a new process opening the same data dir: time until the app is started and ready,
                 then the same queries through the service layer
  HTTP           a real `bastiond` (started as the tests start it) on that data dir, and beside it a bare
                 aiohttp server on uvloop that parses the same JSON body and answers a result of the same
                 size (the HTTP baseline). The parent process is the client, as a real client is a
                 process of its own: one keep-alive connection each, one query at a time, latency from
                 sending the request to having read the answer. The two servers take turns of TURN
                 queries, so both see the same moments of a shared machine's load; --repeat passes over
                 the queries (after a warm-up); then the numpy brute force is timed on the same queries.
  chroma         chromadb's in-process client (PersistentClient in a temp dir), its default HNSW settings
Latency is per query, sequential; memory is the RSS growth of the worker past holding the raw data.
The workers run one after another, so on a shared machine their load differs: the Bastion worker also
times the brute force in turns with its own queries, and the ratio to that is printed too.

Options: --n, --queries (smaller runs for a quick look; under 20,001 vectors the namespace is searched
exactly, not through HNSW), --datasets a,b, --skip-chroma, --repeat, --keep DIR (reuse the data and the
built data dir between runs while iterating: the build is then not measured, and the table says so),
--json (the HTTP rows, as `python -m bench` prints rows: scenario, mode, connections, rps, p50_ms, p99_ms,
errors, ratio, note; the table then goes to stderr).
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
    from daemon.context import USERS, VECTORS
    from daemon.services.principal import ALL_SCOPES, Principal
    from shared.models.vectors import CollectionCreate, UpsertRequest

    data, queries, truth = np.load(work / "data.npy"), np.load(work / "queries.npy"), np.load(work / "truth.npy")
    base = rss_mb()
    app, runner, port = await _start(work / "bastion")
    user = await app[USERS].create("bench@example.com", secrets.token_urlsafe(16), "admin", "", None, "bench")
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


def worker_bare(work: Path) -> dict:
    """The HTTP baseline, served until terminated: a bare aiohttp handler on uvloop (as bastiond runs) that
    parses the same JSON body and answers a result of the same shape and size as Bastion's (10 ids and
    scores), with no middlewares, no auth and no search."""
    import orjson
    from aiohttp import web

    from daemon.cli import _use_uvloop

    result = orjson.loads((work / "bare-result.json").read_bytes())

    async def answer(request: web.Request) -> web.Response:
        query = orjson.loads(await request.read())
        if len(query["vector"]) != DIM:
            raise web.HTTPUnprocessableEntity()
        return web.Response(body=orjson.dumps(result), content_type="application/json", charset="utf-8")

    app = web.Application()
    app.router.add_post("/query", answer)
    _use_uvloop()
    web.run_app(app, host="127.0.0.1", port=int((work / "bare-port").read_text()), access_log=None, print=None)
    return {}


class Client:
    """One keep-alive connection, one request at a time: the latency a sequential client sees, measured
    in this process (neither server's) from sending the request to having read the whole answer."""

    def __init__(self, url: str, path: str, headers: dict[str, str]) -> None:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.path = path
        self.headers = {"Content-Type": "application/json", **headers}

    def post(self, body: bytes) -> tuple[float, int, bytes]:
        started = time.perf_counter()
        self.connection.request("POST", self.path, body=body, headers=self.headers)
        response = self.connection.getresponse()
        answer = response.read()
        return time.perf_counter() - started, response.status, answer

    def close(self) -> None:
        self.connection.close()


HTTP_SETTINGS = {  # as bench/run.py starts bastiond: limits high enough never to refuse, but on
    "BASTION_RATE_LIMIT_PER_MINUTE": "10000000",
    "BASTION_AUTH_RATE_LIMIT_PER_MINUTE": "10000000",
    "BASTION_ACCESS_TOKEN_TTL_S": "7200",
}
WARM_UP = 20


def measure_http(work: Path, repeat: int) -> dict:
    """Sequential queries over HTTP from this process to a real bastiond on the data dir the bastion worker
    built, in turns of TURN queries with the bare-HTTP baseline, so both see the same moments of a shared
    machine's load; then the numpy brute force over the same queries. `repeat` passes over the queries."""
    import orjson

    from tests.conftest import free_port
    from tests.daemon_process import Daemon, start

    data, queries, truth = np.load(work / "data.npy"), np.load(work / "queries.npy"), np.load(work / "truth.npy")
    matrix = data / np.linalg.norm(data, axis=1, keepdims=True)
    bodies = [orjson.dumps({"vector": q.tolist(), "top_k": TOP_K}) for q in queries]
    daemon: Daemon | None = None
    bare = None
    try:
        daemon = start(work / "bastion", **HTTP_SETTINGS)
        email, password = f"bench-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(16)  # new each run (--keep)
        daemon.create_admin(email, password)
        token = daemon.call("POST", "/api/v1/auth/login", {"email": email, "password": password})["access_token"]
        bastion = Client(daemon.url, "/api/v1/collections/bench/query", {"Authorization": f"Bearer {token}"})
        status, answer = bastion.post(bodies[0])[1:]
        if status != 200:
            return {"error": f"bastiond answered {status}: {answer[:200]!r}"}
        (work / "bare-result.json").write_bytes(answer)  # the baseline answers a result of the same size
        port = free_port()
        (work / "bare-port").write_text(str(port))
        bare = subprocess.Popen([sys.executable, "-m", "bench.vectors", "--worker", "bare", "--work", str(work)],
                                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
        _wait_port(port)
        baseline = Client(f"http://127.0.0.1:{port}", "/query", {})
        for body in bodies[:WARM_UP]:
            bastion.post(body)
            baseline.post(body)
        times: dict[str, list[float]] = {"bastion": [], "bare": [], "brute": []}
        found, errors = [], {"bastion": 0, "bare": 0}
        clients = [("bare", baseline), ("bastion", bastion)]
        for _ in range(repeat):
            for start_at in range(0, len(queries), TURN):
                clients.reverse()  # neither always goes first
                for name, client in clients:
                    for i in range(start_at, min(len(queries), start_at + TURN)):
                        took, status, answer = client.post(bodies[i])
                        times[name].append(took)
                        if status != 200:
                            errors[name] += 1
                        elif name == "bastion" and len(found) < len(queries):
                            found.append(ids_to_rows([m["id"] for m in orjson.loads(answer)["matches"]]))
        bastion.close()
        baseline.close()
        # The brute force comes after, not in turns: each pass over 150 MB (on both cores) flushes the
        # caches the servers' next queries would use (measured in turns: bastiond's p50 4.0 ms right
        # after a brute-force turn, 2.6 ms after none, in the same run).
        for _ in range(repeat):
            for q in queries:
                t = time.perf_counter()
                brute_force_query(matrix, q)
                times["brute"].append(time.perf_counter() - t)
        result = {}
        for name, latencies in times.items():
            ms = np.asarray(latencies) * 1000
            result[name] = {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
                            "rps": len(ms) / (ms.sum() / 1000), "errors": errors.get(name, 0), "count": len(ms)}
        result["bastion"]["recall"] = summary(times["bastion"][: len(found)], found, truth)["recall"]
        result["bastion_pid"] = daemon.process.pid
        return result
    except Exception as exc:  # a table with the failure in it beats no table
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        if bare is not None:
            bare.terminate()
            bare.wait(timeout=20)
        if daemon is not None:
            daemon.stop()


def _wait_port(port: int, timeout_s: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


WORKERS = {
    "numpy": worker_numpy,
    "bare": worker_bare,
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
    recall = f"{r['recall']:.3f}" if "recall" in r else ""
    return f"| {system} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {recall} | {build} | {memory} |"


def json_rows(title: str, http: dict) -> list[dict]:
    """The rows for `python -m bench`'s table (its Row fields): the HTTP query, its bare-HTTP baseline and
    the brute force, all timed in the same run; connections 1 = sequential, rps = 1 / mean latency."""
    if "error" in http:
        return [{"scenario": f"vector query, {title}", "mode": "embedded", "connections": 1, "rps": 0.0,
                 "p50_ms": 0.0, "p99_ms": 0.0, "errors": 1, "ratio": "", "note": f"failed: {http['error']}"}]
    bastion, bare, brute = http["bastion"], http["bare"], http["brute"]
    extra = bastion["p50_ms"] - bare["p50_ms"]
    return [
        {"scenario": f"vector query over HTTP, {title}", "mode": "embedded", "connections": 1,
         "rps": bastion["rps"], "p50_ms": bastion["p50_ms"], "p99_ms": bastion["p99_ms"], "errors": bastion["errors"],
         "ratio": f"{bastion['rps'] / bare['rps']:.0%} of bare",
         "note": f"recall@10 {bastion['recall']:.3f}; p50 {extra:+.3f} ms over bare HTTP"},
        {"scenario": "bare aiohttp, same JSON in and out", "mode": f"uvloop, in turns with the query on {title}",
         "connections": 1,
         "rps": bare["rps"], "p50_ms": bare["p50_ms"], "p99_ms": bare["p99_ms"], "errors": bare["errors"],
         "ratio": "100%", "note": "parses the query's JSON, answers 10 ids and scores; no search"},
        {"scenario": f"numpy brute force, {title}", "mode": "in the client's process after it, no HTTP", "connections": 1,
         "rps": brute["rps"], "p50_ms": brute["p50_ms"], "p99_ms": brute["p99_ms"], "errors": 0,
         "ratio": f"{brute['p50_ms'] / bastion['p50_ms']:.1f}x the HTTP query's p50",
         "note": "recall@10 1.000 (exact)"},
    ]


def prepare(work: Path, name: str, n: int, queries: int) -> bool:
    """Write the data set and its exact answers; whether a Bastion data dir built from them is there already."""
    if (work / "bastion.json").exists() and (work / "truth.npy").exists():
        return True
    data, q = make_data(name, n, queries)
    np.save(work / "data.npy", data)
    np.save(work / "queries.npy", q)
    np.save(work / "truth.npy", exact_top(data, q))
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--datasets", default="a,b")
    parser.add_argument("--skip-chroma", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the queries over HTTP (default 3)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the data and Bastion's built data dir in DIR and reuse them on the next run "
                             "(for iterating: the build is then not measured, the table says so)")
    parser.add_argument("--json", action="store_true",
                        help="print the HTTP rows (query, bare baseline, brute force) as JSON; the table goes to stderr")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.work)))
        return 0

    out = sys.stderr if args.json else sys.stdout

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    say(f"vectors: n={args.n:,} dim={DIM} cosine, {args.queries} queries, top_k={TOP_K}, "
        f"{os.cpu_count()} cores; latency per query, sequential")
    ok = True
    rows: list[dict] = []
    for name in args.datasets.split(","):
        title = {"a": "(a) structured: 1,000 clusters in 48-d, projected to 384-d", "b": "(b) uniform random"}[name]
        short = {"a": "structured", "b": "uniform"}[name] + f" {args.n:,}x{DIM}"
        with tempfile.TemporaryDirectory(prefix="bench-vectors-") as tmp:
            work = Path(tmp)
            if args.keep:
                work = args.keep / f"{name}-n{args.n}-q{args.queries}"
                work.mkdir(parents=True, exist_ok=True)
            reused = prepare(work, name, args.n, args.queries)
            results = {"numpy": run_worker("numpy", work)}
            if reused:
                results["bastion"] = json.loads((work / "bastion.json").read_text())
            else:
                results["bastion"] = run_worker("bastion", work)
                if args.keep and "error" not in results["bastion"]:
                    (work / "bastion.json").write_text(json.dumps(results["bastion"]))
            results["bastion-load"] = run_worker("bastion-load", work)
            results["http"] = measure_http(work, args.repeat)
            if not args.skip_chroma:
                results["chroma"] = run_worker("chroma", work)
        say(f"\n{title}" + (f" (Bastion's build reused from {work}: its figures are from the run that built it)"
                            if reused else ""))
        say("| system | p50 ms | p99 ms | recall@10 | build / load | memory |")
        say("| --- | ---: | ---: | ---: | ---: | ---: |")
        say(row("numpy brute force", results["numpy"]))
        bastion, loaded, http = results["bastion"], results["bastion-load"], results["http"]
        say(row(f"bastion, service layer ({bastion.get('mode', '?')})", bastion))
        say(row(f"bastion after restart, service layer ({loaded.get('mode', '?')})", loaded, "load_s"))
        if "error" in http:
            say(row("bastion, HTTP", http))
        else:
            say(row("bastiond, HTTP from another process", http["bastion"]))
            say(row("bare aiohttp, same JSON in and out", http["bare"]))
            say(row("numpy brute force, right after the HTTP queries", http["brute"]))
        if "chroma" in results:
            say(row("chroma (defaults)", results["chroma"]))
        rows += json_rows(short, http)
        if "error" in bastion or "error" in loaded or "error" in http:
            ok = False
            continue
        brute = results["numpy"]
        verdicts = [f"recall@10 {bastion['recall']:.3f} (target >= 0.95)",
                    f"service p50 {brute['p50_ms'] / bastion['p50_ms']:.1f}x brute force's "
                    f"({bastion['brute_p50_ms'] / bastion['p50_ms']:.1f}x the brute force timed in turns with it, "
                    f"p50 {bastion['brute_p50_ms']:.3f} ms)",
                    f"HTTP p50 {http['bastion']['p50_ms']:.3f} ms (target < 2 ms), "
                    f"{http['bastion']['p50_ms'] - http['bare']['p50_ms']:+.3f} ms over bare HTTP's "
                    f"{http['bare']['p50_ms']:.3f} ms, recall@10 {http['bastion']['recall']:.3f}"]
        if "chroma" in results and "error" not in results["chroma"]:
            chroma = results["chroma"]
            verdicts.append(f"{chroma['p50_ms'] / bastion['p50_ms']:.1f}x Chroma's p50 at recall "
                            f"{bastion['recall']:.3f} vs {chroma['recall']:.3f}")
        verdicts.append(f"upserts {bastion['upsert_s']:.1f} s of the build")
        say("  " + "; ".join(verdicts))
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
