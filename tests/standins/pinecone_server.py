"""A STAND-IN for Pinecone's data-plane REST API: only the calls our adapter makes, in Pinecone's shapes.

Pinecone cannot be reached from here, so the Pinecone vector store runs its contract suite against
this small aiohttp server instead (and against real Pinecone when PINECONE_API_KEY is set). It is a
test double, not an implementation: one index of a fixed dimension and metric, brute-force search,
everything in memory. Shapes follow Pinecone's API (camelCase, `Api-Key` header, euclidean scored as
the squared distance, `dotproduct` for dot); metadata filters reuse the daemon's evaluator.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from aiohttp import web

from daemon.stores.vectors.filters import FilterError, check

METRIC_NAMES = {"cosine": "cosine", "dot": "dotproduct", "euclidean": "euclidean"}


class PineconeStandIn:
    def __init__(self, api_key: str, dimension: int, metric: str) -> None:
        self.api_key = api_key
        self.dimension = dimension
        self.metric = metric
        self.namespaces: dict[str, dict[str, dict[str, Any]]] = {}
        self.requests: list[str] = []  # paths called, so a test can see which API the adapter used

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_post("/vectors/upsert", self.upsert)
        app.router.add_post("/query", self.query)
        app.router.add_get("/vectors/fetch", self.fetch)
        app.router.add_post("/vectors/fetch_by_metadata", self.fetch_by_metadata)
        app.router.add_post("/vectors/delete", self.delete)
        app.router.add_get("/vectors/list", self.list)
        app.router.add_post("/describe_index_stats", self.stats)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(request.path)
        if request.headers.get("Api-Key") != self.api_key:
            return web.json_response({"code": 16, "message": "Invalid API Key"}, status=401)
        try:
            return await handler(request)
        except (FilterError, ValueError, KeyError) as exc:
            return web.json_response({"code": 3, "message": str(exc)}, status=400)

    def _match(self, namespace: str, filter: dict | None) -> list[dict[str, Any]]:
        rows = list(self.namespaces.get(namespace, {}).values())
        if filter:
            predicate = check(filter)
            rows = [r for r in rows if predicate(r.get("metadata") or {})]
        return rows

    async def upsert(self, request: web.Request) -> web.Response:
        body = await request.json()
        vectors = body["vectors"]
        for v in vectors:
            if len(v["values"]) != self.dimension:
                raise ValueError(f"Vector dimension {len(v['values'])} does not match the dimension of the index {self.dimension}")
        space = self.namespaces.setdefault(body.get("namespace", ""), {})
        for v in vectors:
            space[v["id"]] = {"id": v["id"], "values": [float(x) for x in v["values"]], "metadata": v.get("metadata")}
        return web.json_response({"upsertedCount": len(vectors)})

    def _score(self, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
        if self.metric == "cosine":
            return rows @ q / (np.linalg.norm(rows, axis=1) * np.linalg.norm(q))
        if self.metric == "euclidean":
            return ((rows - q) ** 2).sum(axis=1)
        return rows @ q

    async def query(self, request: web.Request) -> web.Response:
        body = await request.json()
        namespace = body.get("namespace", "")
        if "id" in body:
            stored = self.namespaces.get(namespace, {}).get(body["id"])
            if stored is None:
                return web.json_response({"matches": [], "namespace": namespace})
            q = np.asarray(stored["values"], dtype=np.float64)
        else:
            q = np.asarray(body["vector"], dtype=np.float64)
        candidates = self._match(namespace, body.get("filter"))
        matches = []
        if candidates:
            scores = self._score(np.asarray([r["values"] for r in candidates], dtype=np.float64), q)
            order = np.argsort(scores if self.metric == "euclidean" else -scores, kind="stable")[: body["topK"]]
            for i in order:
                row = candidates[int(i)]
                match: dict[str, Any] = {"id": row["id"], "score": float(scores[i])}
                if body.get("includeValues"):
                    match["values"] = row["values"]
                if body.get("includeMetadata") and row["metadata"]:
                    match["metadata"] = row["metadata"]
                matches.append(match)
        return web.json_response({"matches": matches, "namespace": namespace, "usage": {"readUnits": 1}})

    async def fetch(self, request: web.Request) -> web.Response:
        namespace = request.query.get("namespace", "")
        space = self.namespaces.get(namespace, {})
        found = {i: space[i] for i in request.query.getall("ids", []) if i in space}
        return web.json_response({"vectors": found, "namespace": namespace, "usage": {"readUnits": 1}})

    async def fetch_by_metadata(self, request: web.Request) -> web.Response:
        body = await request.json()
        namespace = body.get("namespace", "")
        rows = sorted(self._match(namespace, body["filter"]), key=lambda r: r["id"])
        start = int(body.get("paginationToken") or 0)
        limit = int(body.get("limit", 100))
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        answer: dict[str, Any] = {"vectors": {r["id"]: r for r in page}, "namespace": namespace}
        if more:
            answer["pagination"] = {"next": str(start + limit)}
        return web.json_response(answer)

    async def delete(self, request: web.Request) -> web.Response:
        body = await request.json()
        namespace = body.get("namespace", "")
        space = self.namespaces.get(namespace, {})
        if body.get("deleteAll"):
            space.clear()
        elif "ids" in body:
            for i in body["ids"]:
                space.pop(i, None)
        else:
            for row in self._match(namespace, body["filter"]):
                space.pop(row["id"], None)
        if not space:
            self.namespaces.pop(namespace, None)
        return web.json_response({})

    async def list(self, request: web.Request) -> web.Response:
        namespace = request.query.get("namespace", "")
        prefix = request.query.get("prefix", "")
        limit = int(request.query.get("limit", 100))
        ids = sorted(i for i in self.namespaces.get(namespace, {}) if i.startswith(prefix))
        token = request.query.get("paginationToken")
        after = base64.b64decode(token).decode() if token else None
        if after is not None:
            ids = [i for i in ids if i > after]
        page = ids[:limit]
        answer: dict[str, Any] = {"vectors": [{"id": i} for i in page], "namespace": namespace}
        if len(ids) > limit:
            answer["pagination"] = {"next": base64.b64encode(page[-1].encode()).decode()}
        return web.json_response(answer)

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "namespaces": {ns: {"vectorCount": len(v)} for ns, v in self.namespaces.items() if v},
                "dimension": self.dimension,
                "metric": METRIC_NAMES[self.metric],
                "indexFullness": 0.0,
                "totalVectorCount": sum(len(v) for v in self.namespaces.values()),
            }
        )
