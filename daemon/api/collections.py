"""/api/v1/collections: collections and their vectors (docs/api.md, Vectors). The rules are the service's."""

from __future__ import annotations

from aiohttp import web

from daemon.api.routing import Routes
from daemon.context import BODY, PRINCIPAL, QUERY, VECTORS
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
             body=UpsertRequest, response=UpsertResult, max_body="max_upsert_bytes")
async def upsert_vectors(request: web.Request) -> UpsertResult:
    return await request.app[VECTORS].upsert(request[PRINCIPAL], request.match_info["name"], request[BODY])


@routes.post("/collections/{name}/query", summary="The nearest vectors, optionally filtered by metadata", tag=TAG,
             body=QueryRequest, response=QueryResult, scope="read")
async def query_vectors(request: web.Request) -> QueryResult:
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
