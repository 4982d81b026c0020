"""`python -m bench.text`: keyword, semantic and hybrid search at 100,000 documents, in one run.

The labelled set is made here (seeded), since no model hub or data set can be fetched on these machines:
  - 400 topics of 12 concepts each; every concept has two surface words (synonyms, e.g. `c123a`, `c123b`),
    and 20,000 general words follow a Zipf law;
  - a document belongs to one topic: 8 concept words of its topic (each in either form) among ~40 general
    words; a query names 3 concepts of one topic, each in one form;
  - a document's gain for a query is how many of the query's concepts it holds, in either form (0 outside
    the topic): keyword search finds only the forms it was given, a model that knows the synonyms finds both.
  - The model (tests/tiny_model.py's kind, a real ONNX graph run by fastembed): each concept's two forms
    share a vector near their topic's, general words are short random vectors; mean pooling, normalised.
  The figures therefore show the machinery (BM25, embedding, fusion) on a set where the two rankings disagree
  in a known way; they are not a real model's quality, which needs a real model (docs/embedders.md).

What runs, one after another, in this process unless said:
  in-process  tantivy through daemon/stores/keywords.py (ingest in committed batches of 1,000, then queries)
              and bm25s (one index build over the whole corpus, then queries); nDCG@10 of both
  HTTP        a real `bastiond` (tests/daemon_process.py) with the bench's model in BASTION_EMBED_MODEL_DIR:
              ingest of 100,000 records with text and values (1,000 per request; half one at a time, half on 4
              connections); the wait until the vector index holds them all; then in turns of 20: keyword
              queries over HTTP, GET /healthz, and the same queries in-process on tantivy (the ceiling);
              nDCG@10 of keyword, vector and hybrid over HTTP; then an embedding ingest (text alone, the daemon
              embeds) while another connection reads GET /api/v1/users/me, whose p99 is reported
  CPU         the daemon's CPU time (all its threads, from /proc) per ingested record and per keyword query
              and /healthz: unlike rates and latencies, it hardly moves with the machine's other load, so it
              is the figure to compare two runs or two commits with
  instructions  with --instructions N: another bastiond under valgrind's callgrind holding the first N
              documents; the instructions its process executes per keyword query and per /healthz, counted
              as bench/instructions.py counts them (one request at a time after a warm-up), which the
              machine's load does not move at all
Options: --n, --queries, --embed-n (records of the embedding ingest), --instructions, --json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.run import percentile
from bench.vectors import Client

TOPICS, CONCEPTS, GENERAL = 400, 12, 20_000
DOC_CONCEPTS, DOC_GENERAL = 8, 40
QUERY_CONCEPTS = 3
DIM = 32
TOP_K = 10
TURN = 20
BATCH = 1000
PARALLEL = 4
MODEL = "bench/concepts"
HTTP_SETTINGS = {"BASTION_RATE_LIMIT_PER_MINUTE": "0", "BASTION_AUTH_RATE_LIMIT_PER_MINUTE": "0",
                 "BASTION_ACCESS_TOKEN_TTL_S": "7200"}


# --- the labelled set and its model -------------------------------------------------------------------------

class LabelledSet:
    def __init__(self, n: int, queries: int, seed: int = 20261204) -> None:
        rng = np.random.default_rng(seed)
        self.general = [f"g{i}" for i in range(GENERAL)]
        zipf = 1.0 / np.arange(1, GENERAL + 1)
        self.topic_of = rng.integers(TOPICS, size=n)
        concept = rng.integers(CONCEPTS, size=(n, DOC_CONCEPTS))
        form = rng.integers(2, size=(n, DOC_CONCEPTS))
        general = rng.choice(GENERAL, size=(n, DOC_GENERAL), p=zipf / zipf.sum())
        self.doc_concepts = [set((self.topic_of[i] * CONCEPTS + concept[i]).tolist()) for i in range(n)]
        self.texts = []
        for i in range(n):
            words = [self.word(self.topic_of[i] * CONCEPTS + c, f) for c, f in zip(concept[i], form[i])]
            words += [self.general[g] for g in general[i]]
            order = rng.permutation(len(words))
            self.texts.append(" ".join(words[j] for j in order))
        self.query_topic = rng.integers(TOPICS, size=queries)
        self.query_concepts = [self.query_topic[q] * CONCEPTS + rng.choice(CONCEPTS, QUERY_CONCEPTS, replace=False)
                               for q in range(queries)]
        self.query_texts = [" ".join(self.word(c, int(rng.integers(2))) for c in cs) for cs in self.query_concepts]
        self.members = {t: np.flatnonzero(self.topic_of == t) for t in range(TOPICS)}

    @staticmethod
    def word(concept: int, form: int) -> str:
        return f"c{concept}{'ab'[form]}"

    def gains(self, q: int) -> dict[int, int]:
        wanted = set(self.query_concepts[q].tolist())
        return {int(d): len(wanted & self.doc_concepts[d]) for d in self.members[int(self.query_topic[q])]}

    def ndcg(self, q: int, ranked: list[int]) -> float:
        gains = self.gains(q)
        dcg = sum((2 ** gains.get(d, 0) - 1) / math.log2(r + 2) for r, d in enumerate(ranked[:TOP_K]))
        ideal = sorted(gains.values(), reverse=True)[:TOP_K]
        best = sum((2**g - 1) / math.log2(r + 2) for r, g in enumerate(ideal))
        return dcg / best if best else 0.0

    def write_model(self, directory: Path) -> None:
        from tests import tiny_model

        rng = np.random.default_rng(7)
        topics = rng.standard_normal((TOPICS, DIM))
        concepts = topics.repeat(CONCEPTS, axis=0) + 0.8 * rng.standard_normal((TOPICS * CONCEPTS, DIM))
        vocab = ["[PAD]", "[UNK]"] + self.general
        vectors = [np.zeros(DIM), np.zeros(DIM)] + list(0.35 * rng.standard_normal((GENERAL, DIM)))
        for c in range(TOPICS * CONCEPTS):
            for form in (0, 1):  # synonyms: the same concept, a little apart
                vocab.append(self.word(c, form))
                vectors.append(concepts[c] + 0.1 * rng.standard_normal(DIM))
        tiny_model.write(directory / MODEL, vocab=vocab, vectors=np.asarray(vectors))


def mean_ndcg(data: LabelledSet, rankings: list[list[int]]) -> float:
    return float(np.mean([data.ndcg(q, r) for q, r in enumerate(rankings)]))


def latency(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {"p50_ms": round(percentile(ms, 50), 3), "p99_ms": round(percentile(ms, 99), 3), "count": len(ms)}


# --- in-process engines -------------------------------------------------------------------------------------

async def tantivy_in_process(data: LabelledSet, directory: Path):
    from daemon.stores.keywords import KeywordIndex

    index = KeywordIndex(directory)
    started = time.perf_counter()
    for start in range(0, len(data.texts), BATCH):
        await index.write("bench", "", {f"d{i}": data.texts[i] for i in range(start, min(start + BATCH, len(data.texts)))})
    ingest = len(data.texts) / (time.perf_counter() - started)
    for text in data.query_texts[:20]:  # warm-up
        index.top("bench", "", text, TOP_K)
    times, rankings = [], []
    for text in data.query_texts:
        t = time.perf_counter()
        hits = index.top("bench", "", text, TOP_K)
        times.append(time.perf_counter() - t)
        rankings.append([int(h.id[1:]) for h in hits])
    return index, {"ingest_per_s": round(ingest), **latency(times), "ndcg10": round(mean_ndcg(data, rankings), 4)}


def bm25s_in_process(data: LabelledSet) -> dict:
    try:
        import bm25s
    except ImportError:
        return {"error": "bm25s is not installed (pip install -e '.[bench]')"}
    started = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(data.texts, stopwords=None, show_progress=False), show_progress=False)
    build = time.perf_counter() - started
    times, rankings = [], []
    for text in data.query_texts:
        t = time.perf_counter()
        found, _ = retriever.retrieve(bm25s.tokenize([text], stopwords=None, show_progress=False, return_ids=False),
                                      k=TOP_K, show_progress=False, n_threads=1)
        times.append(time.perf_counter() - t)
        rankings.append([int(d) for d in found[0]])
    return {"build_s": round(build, 2), "ingest_per_s": round(len(data.texts) / build), **latency(times),
            "ndcg10": round(mean_ndcg(data, rankings), 4),
            "note": "no incremental update: any upsert or delete rebuilds the whole index"}


# --- over HTTP ------------------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and all its threads, dead ones included (Linux /proc)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_us_each(pid: int, work, count: int) -> float:
    """The daemon's CPU time per item while `work()` runs `count` of them (ticks of 10 ms: count enough)."""
    before = cpu_seconds(pid)
    work()
    return round((cpu_seconds(pid) - before) * 1e6 / count, 1)


def ids_of(answer: bytes) -> list[int]:
    return [int(m["id"][1:]) for m in json.loads(answer)["matches"]]


def _with_collection(daemon) -> tuple[str, Client, Client]:
    """A new admin's token and client on this daemon, with the collection `text` made; a client without a token."""
    import orjson

    email, password = f"bench-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(16)
    daemon.create_admin(email, password)
    token = daemon.call("POST", "/api/v1/auth/login", {"email": email, "password": password})["access_token"]
    client = Client(daemon.url, {"Authorization": f"Bearer {token}"})
    client.call("POST", "/api/v1/collections", orjson.dumps({"name": "text", "dimension": DIM}))
    return token, client, Client(daemon.url, {})


def over_http(data: LabelledSet, work: Path, index, doc_vectors: np.ndarray, query_vectors: np.ndarray,
              embed_n: int) -> dict:
    import orjson

    from tests.daemon_process import start

    out: dict = {}
    daemon = start(work / "bastion", BASTION_EMBED_MODEL_DIR=str(work / "models"), **HTTP_SETTINGS)
    try:
        token, client, health = _with_collection(daemon)
        bodies = [orjson.dumps({"vectors": [
            {"id": f"d{i}", "values": doc_vectors[i].tolist(), "text": data.texts[i]}
            for i in range(s, min(s + BATCH, len(data.texts)))
        ]}) for s in range(0, len(data.texts), BATCH)]
        half = len(bodies) // 2
        # The first half one request at a time, the second with PARALLEL connections (as `bastion vectors
        # upsert` sends by default); only the requests are timed.
        pid = daemon.process.pid
        started = time.perf_counter()
        out["ingest_cpu_us_per_record_sequential"] = cpu_us_each(
            pid, lambda: upsert_all([client], bodies[:half]), sum_records(bodies[:half]))
        out["ingest_text_sequential_per_s"] = round(sum_records(bodies[:half]) / (time.perf_counter() - started))
        writers = [Client(daemon.url, {"Authorization": f"Bearer {token}"}) for _ in range(PARALLEL)]
        started = time.perf_counter()
        out[f"ingest_cpu_us_per_record_{PARALLEL}_connections"] = cpu_us_each(
            pid, lambda: upsert_all(writers, bodies[half:]), sum_records(bodies[half:]))
        out[f"ingest_text_{PARALLEL}_connections_per_s"] = round(sum_records(bodies[half:]) / (time.perf_counter() - started))
        out["index_settled_s"] = settle(client, len(data.texts))

        path = "/api/v1/collections/text/query"
        bodies = {
            "keyword": [orjson.dumps({"text": t, "top_k": TOP_K}) for t in data.query_texts],
            "vector": [orjson.dumps({"vector": v.tolist(), "top_k": TOP_K}) for v in query_vectors],
            "hybrid": [orjson.dumps({"vector": v.tolist(), "text": t, "top_k": TOP_K})
                       for v, t in zip(query_vectors, data.query_texts)],
        }
        for body in bodies["keyword"][:20]:
            client.call("POST", path, body)
        http, healthz, engine, rankings = [], [], [], []
        for first in range(0, len(data.query_texts), TURN):
            for q in range(first, min(first + TURN, len(data.query_texts))):
                seconds, _, answer = client.call("POST", path, bodies["keyword"][q])
                http.append(seconds)
                rankings.append(ids_of(answer))
            healthz += [health.call("GET", "/healthz")[0] for _ in range(TURN)]
            for q in range(first, min(first + TURN, len(data.query_texts))):
                t = time.perf_counter()
                index.top("bench", "", data.query_texts[q], TOP_K)
                engine.append(time.perf_counter() - t)
        out["keyword_http"] = {**latency(http), "ndcg10": round(mean_ndcg(data, rankings), 4)}
        out["healthz"] = latency(healthz)
        out["engine_in_turns"] = latency(engine)
        out["keyword_ratio"] = round(out["keyword_http"]["p50_ms"] / (out["engine_in_turns"]["p50_ms"] + out["healthz"]["p50_ms"]), 2)
        # Each query a few times more (at least 600 requests: /proc counts CPU in 10 ms ticks).
        passes = max(1, -(-600 // len(bodies["keyword"])))
        count = passes * len(bodies["keyword"])
        out["keyword_daemon_cpu_us"] = cpu_us_each(
            pid, lambda: [client.call("POST", path, b) for _ in range(passes) for b in bodies["keyword"]], count)
        out["healthz_daemon_cpu_us"] = cpu_us_each(pid, lambda: [health.call("GET", "/healthz") for _ in range(count)], count)
        for mode in ("vector", "hybrid"):
            times, rankings = [], []
            for body in bodies[mode]:
                seconds, _, answer = client.call("POST", path, body)
                times.append(seconds)
                rankings.append(ids_of(answer))
            out[f"{mode}_http"] = {**latency(times), "ndcg10": round(mean_ndcg(data, rankings), 4)}
        out["embedding_ingest"] = embedding_ingest(data, daemon.url, token, embed_n)
    finally:
        daemon.stop()
    return out


def keyword_instructions(data: LabelledSet, work: Path, doc_vectors: np.ndarray, n: int, requests: int) -> dict:
    """Instructions per keyword query (bench.text's queries in turn) and per GET /healthz, in a bastiond under
    callgrind whose collection holds the first `n` documents (ingest under valgrind is slow: keep n small)."""
    import itertools
    import shutil

    import orjson

    from bench.instructions import callgrind, per_request
    from tests.daemon_process import start

    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        return {"error": "valgrind is not installed (apt-get install valgrind)"}
    out = work / "text.callgrind"
    daemon = start(work / "bastion-callgrind", command_prefix=callgrind(out), **HTTP_SETTINGS)
    try:
        token, client, health = _with_collection(daemon)
        upsert_all([client], [orjson.dumps({"vectors": [
            {"id": f"d{i}", "values": doc_vectors[i].tolist(), "text": data.texts[i]} for i in range(s, min(s + BATCH, n))
        ]}) for s in range(0, n, BATCH)])
        queries = itertools.cycle([orjson.dumps({"text": t, "top_k": TOP_K}) for t in data.query_texts])

        def keyword() -> None:
            _, status, answer = client.call("POST", "/api/v1/collections/text/query", next(queries))
            if status != 200:
                raise RuntimeError(f"a keyword query answered {status}: {answer[:300]!r}")

        keyword_count = per_request(daemon.process.pid, out, keyword, requests)
        healthz_count = per_request(daemon.process.pid, out, lambda: health.call("GET", "/healthz"), requests)
    finally:
        daemon.stop()
    return {"documents": n, "requests": requests, "keyword_query": round(keyword_count),
            "healthz": round(healthz_count), "keyword_over_healthz": round(keyword_count / healthz_count, 2)}


def sum_records(bodies: list[bytes]) -> int:
    return sum(body.count(b'"id"') for body in bodies)


def upsert_all(clients: list[Client], bodies: list[bytes]) -> None:
    """Each client (a connection) sends its share of the bodies in a thread of its own."""
    failures: list[str] = []

    def send(client: Client, share: list[bytes]) -> None:
        for body in share:
            _, status, answer = client.call("POST", "/api/v1/collections/text/upsert", body)
            if status != 200:
                failures.append(f"upsert answered {status}: {answer[:300]!r}")

    threads = [threading.Thread(target=send, args=(c, bodies[i :: len(clients)])) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(failures[0])


def settle(client: Client, n: int) -> float:
    """Seconds until the vector index of the namespace has every record (or searches exactly), so that the
    vector and hybrid figures are not those of a build in progress."""
    started = time.perf_counter()
    while True:
        index = json.loads(client.call("GET", "/api/v1/collections/text")[2]).get("indexes", {}).get("", {})
        if index.get("state") == "exact" or (index.get("state") == "ready" and index.get("size") == n):
            return round(time.perf_counter() - started, 1)
        time.sleep(0.5)


def embedding_ingest(data: LabelledSet, url: str, token: str, n: int) -> dict:
    """Text alone into a collection that embeds it (200 per request, from a thread), while this thread reads
    GET /users/me one request at a time on its own connection."""
    import orjson

    writer = Client(url, {"Authorization": f"Bearer {token}"})
    writer.call("POST", "/api/v1/collections", orjson.dumps({"name": "embedded", "embed": {"model": MODEL}}))
    result: dict = {}

    def ingest() -> None:
        started, failures = time.perf_counter(), 0
        for s in range(0, n, 200):
            body = orjson.dumps({"vectors": [{"id": f"d{i}", "text": data.texts[i]} for i in range(s, min(s + 200, n))]})
            failures += writer.call("POST", "/api/v1/collections/embedded/upsert", body)[1] != 200
        result.update(per_s=round(n / (time.perf_counter() - started)), failures=failures)

    reader = Client(url, {"Authorization": f"Bearer {token}"})
    quiet = [reader.call("GET", "/api/v1/users/me")[0] for _ in range(200)]
    thread = threading.Thread(target=ingest)
    thread.start()
    during = []
    while thread.is_alive():
        during.append(reader.call("GET", "/api/v1/users/me")[0])
        time.sleep(0.005)
    thread.join()
    return {**result, "records": n, "users_me_quiet": latency(quiet), "users_me_during": latency(during)}


# --- the run ------------------------------------------------------------------------------------------------

async def embed_all(data: LabelledSet, models: Path) -> tuple[np.ndarray, np.ndarray]:
    from daemon.stores.embedders import Embedders

    embedders = Embedders(models, threads=1)
    try:
        docs = np.concatenate([await embedders.embed_documents(MODEL, data.texts[s : s + 5000])
                               for s in range(0, len(data.texts), 5000)])
        queries = np.stack([await embedders.embed_query(MODEL, t) for t in data.query_texts])
    finally:
        embedders.close()
    return docs, queries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.text", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--embed-n", type=int, default=5_000)
    parser.add_argument("--instructions", type=int, default=0, metavar="N",
                        help="also count instructions per keyword query under callgrind, with N documents (5000: ~1 min)")
    parser.add_argument("--instructions-requests", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    data = LabelledSet(args.n, args.queries)
    with tempfile.TemporaryDirectory(prefix="bench-text-") as tmp:
        work = Path(tmp)
        data.write_model(work / "models")
        doc_vectors, query_vectors = asyncio.run(embed_all(data, work / "models"))
        index, tantivy = asyncio.run(tantivy_in_process(data, work / "keywords"))
        exact = np.argsort(-(query_vectors @ doc_vectors.T), axis=1)[:, :TOP_K]
        results = {"n": args.n, "queries": args.queries, "tantivy": tantivy, "bm25s": bm25s_in_process(data),
                   "vector_exact_in_process_ndcg10": round(mean_ndcg(data, [list(map(int, r)) for r in exact]), 4)}
        results["http"] = over_http(data, work, index, doc_vectors, query_vectors, args.embed_n)
        if args.instructions:
            results["instructions"] = keyword_instructions(
                data, work, doc_vectors, min(args.instructions, args.n), args.instructions_requests)
        asyncio.run(index.close())
    results["seconds"] = round(time.perf_counter() - started)
    print(json.dumps(results, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
