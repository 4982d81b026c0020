"""/api/v1/collections: collections and their vectors (docs/api.md, Vectors). The rules are the service's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from daemon.api.routing import Routes
from daemon.context import BODY, PRINCIPAL, QUERY, VECTORS
from daemon.pipeline.vector_json import decode_upsert
from daemon.services.vectors import VectorService
from shared.models import Page, PageQuery
from shared.models.vectors import (
    Collection,
    CollectionCreate,
    DeleteRequest,
    DeleteResult,
    FetchRequest,
    FetchResult,
    IdPage,
    QueryRequest,
    QueryResult,
    UpsertRequest,
    UpsertResult,
    VectorListQuery,
)

routes = Routes(prefix="/api/v1")
TAG = "vectors"


@routes.post("/collections", summary="Create a collection", tag=TAG, body=CollectionCreate, response=Collection,
             status=201, errors=(409,))
async def create_collection(request: web.Request) -> Collection:
    return await request.app[VECTORS].create(request[PRINCIPAL], request[BODY])


@routes.get("/collections", summary="The collections you may see", tag=TAG, query=PageQuery,
            response=Page[Collection])
async def list_collections(request: web.Request) -> Page[Collection]:
    query = request[QUERY]
    return await request.app[VECTORS].list(request[PRINCIPAL], query.limit, query.cursor)


@routes.get("/collections/{name}", summary="A collection, with counts per namespace", tag=TAG, response=Collection)
async def get_collection(request: web.Request) -> Collection:
    return await request.app[VECTORS].get(request[PRINCIPAL], request.match_info["name"])


@routes.delete("/collections/{name}", summary="Delete a collection and its vectors", tag=TAG, response=None,
               status=204)
async def delete_collection(request: web.Request) -> None:
    await request.app[VECTORS].delete(request[PRINCIPAL], request.match_info["name"])


@routes.post("/collections/{name}/upsert", summary="Insert or replace up to 1000 vectors, all or none", tag=TAG,
             body=UpsertRequest, response=UpsertResult, max_body="max_upsert_bytes", decode=decode_upsert)
async def upsert_vectors(request: web.Request) -> UpsertResult:
    return await request.app[VECTORS].upsert(request[PRINCIPAL], request.match_info["name"], request[BODY])


@routes.post("/collections/{name}/query", summary="The nearest vectors, optionally filtered by metadata", tag=TAG,
             body=QueryRequest, response=QueryResult, scope="read")
async def query_vectors(request: web.Request) -> dict[str, Any]:
    # QueryResult's shape in plain dicts, which cost a tenth of the models (VectorService.query).
    return await request.app[VECTORS].query(request[PRINCIPAL], request.match_info["name"], request[BODY])


@routes.post("/collections/{name}/fetch", summary="Vectors by id", tag=TAG, body=FetchRequest, response=FetchResult,
             scope="read")
async def fetch_vectors(request: web.Request) -> FetchResult:
    return await request.app[VECTORS].fetch(request[PRINCIPAL], request.match_info["name"], request[BODY])


@routes.get("/collections/{name}/vectors", summary="Vector ids, a page at a time", tag=TAG, query=VectorListQuery,
            response=IdPage)
async def list_vector_ids(request: web.Request) -> IdPage:
    return await request.app[VECTORS].list_ids(request[PRINCIPAL], request.match_info["name"], request[QUERY])


@routes.post("/collections/{name}/delete", summary="Delete vectors by ids, by filter, or all (dry_run counts)",
             tag=TAG, body=DeleteRequest, response=DeleteResult)
async def delete_vectors(request: web.Request) -> DeleteResult:
    return await request.app[VECTORS].delete_vectors(request[PRINCIPAL], request.match_info["name"], request[BODY])


def add_routes(app: web.Application) -> None:
    routes.add_to(app.router)


class IndexMetrics(Collector):
    """GET /collections/{name}'s `indexes`, per collection and namespace, read at scrape time."""

    STATES = ("exact", "building", "ready")

    def __init__(self, service: VectorService) -> None:
        self._service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["collection", "namespace"]
        state = GaugeMetricFamily("bastion_vector_index_state", "1 for how the namespace is searched now",
                                  labels=[*labels, "state"])
        size = GaugeMetricFamily("bastion_vector_index_size", "vectors in the namespace's graph", labels=labels)
        recall = GaugeMetricFamily("bastion_vector_index_recall",
                                   "recall@10 last measured on queries not in the graph", labels=labels)
        ef = GaugeMetricFamily("bastion_vector_index_ef", "the graph's search width", labels=labels)
        vectors = GaugeMetricFamily("bastion_vector_index_vectors", "vectors this replica holds in memory", labels=labels)
        memory = GaugeMetricFamily("bastion_vector_index_bytes", "memory this replica's index of the namespace holds",
                                   labels=labels)
        for collection, namespace, count, held in self._service.index_memory():
            vectors.add_metric([collection, namespace], count)
            memory.add_metric([collection, namespace], held)
        for collection, namespace, index in self._service.index_figures():
            for name in self.STATES:
                state.add_metric([collection, namespace, name], 1.0 if index.state == name else 0.0)
            size.add_metric([collection, namespace], index.size)
            if index.recall is not None:
                recall.add_metric([collection, namespace], index.recall)
            if index.ef is not None:
                ef.add_metric([collection, namespace], index.ef)
        yield from (state, size, recall, ef, vectors, memory)
