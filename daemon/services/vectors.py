"""The vector service: who may see and change a collection, what a valid vector is, and what to announce.

- Visibility: a collection's owner and admins see it; to anyone else it does not exist (404).
- Scopes: an API key needs `read` to look (get, list, query, fetch) and `write` to change anything.
- Input: the right number of finite values (and not all zero for cosine), metadata of strings,
  numbers, booleans and lists of strings within 40 KB, well-formed filters; each fault is a 422 naming
  the field, checked before anything is written.
- Events on `collections/<name>`: ids and counts, never values or metadata.
- Text (records' text, embedding models, keyword and hybrid search): the rules are services/text.py's.
- Queries on the embedded database use the collection's row as this process last read it (`keep_rows`):
  there this daemon is the only writer of the table, as the local vector store already assumes (it
  follows no other process's writes), so the row changes only here: a delete forgets it first and last,
  and a read in flight across a delete is not kept. With PostgreSQL other replicas delete and recreate
  collections, and they learn of each other's writes by reading (the vector clock, read on every query)
  while events only say when to look; a row kept until an event came would let a replica that has not read
  the event yet serve a deleted or recreated collection after its delete answered, so each query reads it.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import time
from typing import TYPE_CHECKING, Any

import orjson

from daemon import cursors
from daemon.services.fusion import fuse
from daemon.services.principal import Principal
from daemon.services.text import TextService, choose_mode, record_errors
from daemon.stores.errors import UniqueViolation
from daemon.stores.events import EventBus
from daemon.stores.vectors import Hit, Record, Refused, VectorStore
from daemon.stores.vectors.catalog import Catalog, CollectionRow
from daemon.stores.vectors.filters import FilterError, check
from shared.errors import ApiError, Code, FieldError
from shared.models import Page
from shared.models.vectors import (
    Collection,
    IndexState,
    CollectionCreate,
    Embed,
    DeleteRequest,
    DeleteResult,
    FetchedVector,
    FetchRequest,
    FetchResult,
    IdPage,
    QueryRequest,
    UpsertRequest,
    UpsertResult,
    VectorIn,
    VectorListQuery,
)

if TYPE_CHECKING:
    import numpy as np

MAX_METADATA_BYTES = 40 * 1024
MAX_REPORTED_ERRORS = 20
MAX_EVENT_IDS = 1000
# Kept rows (embedded database only) are read again after this, for a write this process cannot see (an
# operator's SQL): the owner's id, set to NULL when the owner is deleted, matters only to that owner, who can
# no longer sign in.
ROW_TTL_S = 10.0
MAX_KEPT_ROWS = 10_000


def topic(name: str) -> str:
    return f"collections/{name}"


def _invalid(errors: list[FieldError], detail: str = "the request is not valid") -> ApiError:
    return ApiError(Code.VALIDATION_FAILED, detail, errors=errors[:MAX_REPORTED_ERRORS])


def _vector_faults(vectors: np.ndarray, metric: str) -> list[tuple[int, str]]:
    """(row, what is wrong) for rows that are not finite float32 values, or zero in a cosine collection."""
    import numpy as np

    finite = np.isfinite(vectors).all(axis=1)
    zero = ~vectors.any(axis=1) if metric == "cosine" else np.zeros(len(vectors), dtype=bool)
    return [
        (i, "values must be finite float32 numbers (no NaN, infinity or beyond ±3.4e38)" if not finite[i]
         else "a cosine collection cannot hold or search for the zero vector")
        for i in np.flatnonzero(~finite | zero)[:MAX_REPORTED_ERRORS].tolist()
    ]


def _as_vector(values: list[float], dimension: int, metric: str, field: str, errors: list[FieldError]) -> np.ndarray:
    """A query's vector as stored (float32), adding to `errors` what is wrong with it. The model made its
    values floats already (strict), so only the length and the range are left: _as_matrix's look at each
    value's type was a tenth of a filtered query's time in the daemon."""
    import numpy as np

    if len(values) != dimension:
        errors.append(FieldError(field, f"expected {dimension} values, got {len(values)}"))
        return np.zeros(dimension, dtype=np.float32)
    with np.errstate(over="ignore"):  # 1e300 is a float but no float32: it becomes inf, refused below
        vector = np.array(values, dtype=np.float32)
    if not np.isfinite(vector).all() or (metric == "cosine" and not vector.any()):
        errors += [FieldError(field, message) for _, message in _vector_faults(vector[None], metric)]
    return vector


def _is_number(value: Any) -> bool:
    return type(value) in (float, int)


def _as_matrix(rows: list[Any], dimension: int, metric: str, fields: list[str], errors: list[FieldError]) -> np.ndarray:
    """Lists of numbers as one float32 matrix, checked all at once (the common case costs a few C loops,
    not a Python call per value); `fields` names each row for the errors."""
    import numpy as np  # here, not at the top: a daemon serving no vectors does not load numpy

    bad = False
    for row, field in zip(rows, fields):
        # An array: JSON numbers only, as the upsert route's decoder gives them (pipeline/vector_json.py).
        if not isinstance(row, (list, np.ndarray)):
            errors.append(FieldError(field, "expected a list of numbers"))
            bad = True
        elif len(row) != dimension:
            errors.append(FieldError(field, f"expected {dimension} values, got {len(row)}"))
            bad = True
    listed = [(row, field) for row, field in zip(rows, fields) if isinstance(row, list)]
    if not bad and not set(map(type, itertools.chain.from_iterable(row for row, _ in listed))) <= {float, int}:
        for row, field in listed:  # the slow way, only to name them
            wrong = next((j for j, value in enumerate(row) if not _is_number(value)), None)
            if wrong is not None:
                errors.append(FieldError(f"{field}.{wrong}", "expected a number"))
        bad = True
    if bad:
        return np.zeros((len(rows), dimension), dtype=np.float32)
    with np.errstate(over="ignore"):  # 1e300 is valid JSON but no float32: it becomes inf, refused below
        try:
            matrix = np.array(rows, dtype=np.float32)
        except OverflowError:  # an integer beyond any float
            matrix = np.full((len(rows), dimension), np.inf, dtype=np.float32)
    errors += [FieldError(fields[i], message) for i, message in _vector_faults(matrix, metric)]
    return matrix


def _unpacked(vectors: list[VectorIn], rows: list[int], dimension: int, errors: list[FieldError]) -> np.ndarray | None:
    """The values_b64 of these vectors as one float32 matrix, or None after adding to `errors`."""
    import numpy as np

    texts = [vectors[i].values_b64 or "" for i in rows]
    width = 4 * ((4 * dimension + 2) // 3)  # characters of one vector's base64
    if (4 * dimension) % 3 == 0 and set(map(len, texts)) == {width}:
        # Whole groups, so no padding inside: the request's vectors decode as one text, in one C call.
        try:
            return np.frombuffer(base64.b64decode("".join(texts), validate=True), dtype="<f4").reshape(len(rows), dimension)
        except (binascii.Error, ValueError):
            pass  # the slow way below names the culprit
    raws = []
    for i, text in zip(rows, texts):
        field = f"vectors.{i}.values_b64"
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            errors.append(FieldError(field, "not base64"))
            continue
        if len(raw) != 4 * dimension:
            errors.append(FieldError(field, f"expected {dimension} little-endian float32 values ({4 * dimension} bytes), got {len(raw)} bytes"))
            continue
        raws.append(raw)
    if len(raws) < len(rows):
        return None
    return np.frombuffer(b"".join(raws), dtype="<f4").reshape(len(rows), dimension)


def _upsert_matrix(vectors: list[VectorIn], dimension: int, metric: str, errors: list[FieldError]) -> np.ndarray:
    """Every vector's values, from JSON numbers or from values_b64, as one checked float32 matrix (zeros
    for a record with neither: its text is embedded later)."""
    import numpy as np

    listed = [i for i, v in enumerate(vectors) if v.values is not None]
    matrix = np.zeros((len(vectors), dimension), dtype=np.float32)
    if listed:
        matrix[listed] = _as_matrix(
            [vectors[i].values for i in listed], dimension, metric, [f"vectors.{i}.values" for i in listed], errors
        )
    packed = [i for i, v in enumerate(vectors) if v.values_b64 is not None]
    if packed:
        unpacked = _unpacked(vectors, packed, dimension, errors)
        if unpacked is not None:
            matrix[packed] = unpacked
            faults = _vector_faults(unpacked, metric)
            errors += [FieldError(f"vectors.{packed[i]}.values_b64", message) for i, message in faults]
    return matrix


def _metadata_errors(metadata: dict[str, Any], field: str) -> list[FieldError]:
    errors = []
    for key, value in metadata.items():
        where = f"{field}.{key}"
        if not key or key.startswith("$"):
            errors.append(FieldError(where, "a metadata key must be non-empty and not start with '$'"))
        elif isinstance(value, float) and not math.isfinite(value):
            errors.append(FieldError(where, "numbers must be finite"))
        elif isinstance(value, list):
            if not all(isinstance(item, str) for item in value):
                errors.append(FieldError(where, "a list may hold strings only"))
        elif not isinstance(value, (str, int, float, bool)):
            errors.append(FieldError(where, "expected a string, number, boolean or list of strings"))
    if not errors and len(orjson.dumps(metadata)) > MAX_METADATA_BYTES:
        errors.append(FieldError(field, f"metadata is over {MAX_METADATA_BYTES // 1024} KB"))
    return errors


def _filter(raw: dict[str, Any], field: str = "filter") -> dict[str, Any]:
    try:
        check(raw, field)
    except FilterError as exc:
        raise _invalid([FieldError(exc.path, exc.message)], "the filter is not valid") from None
    return raw


def _cursor_in(cursor: str) -> str:
    try:
        return cursors.decode(cursor)
    except ValueError:
        raise _invalid([FieldError("cursor", "not a cursor this service gave out")]) from None


class VectorService:
    def __init__(
        self, catalog: Catalog, store: VectorStore, events: EventBus, text: TextService, keep_rows: bool = False
    ) -> None:
        """`keep_rows`: this process is the table's only writer (the embedded database), so queries may use
        the collection rows it read (see the module's docstring)."""
        self.catalog = catalog
        self.store = store
        self.events = events
        self.text = text
        self._names: dict[str, str] = {}  # collection id -> name, for the figures of /metrics
        # name -> (read at, monotonic; the row), for queries; None: each query reads the row.
        self._rows: dict[str, tuple[float, CollectionRow]] | None = {} if keep_rows else None
        self._forgotten = 0  # counts every row forgotten, so that a read can tell whether one was meanwhile

    async def warm(self) -> None:
        rows = await self.catalog.all()
        self._names.update((row.id, row.name) for row in rows)
        warm = getattr(self.store, "warm", None) if rows else None
        if warm is not None:
            await warm([row.space for row in rows])

    def index_figures(self) -> list[tuple[str, str, IndexState]]:
        """(collection, namespace, index) of every namespace in memory, read without I/O for /metrics."""
        return [
            (self._names[space_id], ns, IndexState(**vars(status)))
            for space_id, ns, status in self.store.loaded_indexes()
            if space_id in self._names
        ]

    def index_memory(self) -> list[tuple[str, str, int, int]]:
        """(collection, namespace, vectors, bytes) this replica holds in memory, read without I/O."""
        return [(self._names[space_id], ns, count, size) for space_id, ns, count, size in self.store.memory()
                if space_id in self._names]

    # --- rules ----------------------------------------------------------------------------------------

    @staticmethod
    def _need(principal: Principal, scope: str) -> None:
        if not principal.can(scope):
            raise ApiError(Code.FORBIDDEN, f"this credential lacks the '{scope}' scope")

    async def _visible(self, principal: Principal, name: str, scope: str, kept: bool = False) -> CollectionRow:
        """`kept`: the row as this process last read it will do, where rows are kept (a query's)."""
        self._need(principal, scope)
        row = await (self._kept_row(name) if kept and self._rows is not None else self.catalog.get(name))
        if row is None or not (principal.is_admin or row.owner_id == principal.user_id):
            raise ApiError(Code.NOT_FOUND, f"no collection named '{name}'")
        self._names[row.id] = row.name
        return row

    async def _kept_row(self, name: str) -> CollectionRow | None:
        """The SQL read a keyword query would otherwise spend most on after the search itself (22 us of ~180
        inside the daemon, bench/RESULTS.md)."""
        assert self._rows is not None
        entry = self._rows.get(name)
        now = time.monotonic()
        if entry is not None and now - entry[0] < ROW_TTL_S:
            return entry[1]
        forgotten = self._forgotten
        row = await self.catalog.get(name)
        if row is not None and forgotten == self._forgotten:  # else a delete came meanwhile: it may be gone
            if len(self._rows) >= MAX_KEPT_ROWS:
                self._rows.clear()
            self._rows[name] = (now, row)
        return row

    async def _unlist(self, row: CollectionRow) -> bool:
        """Delete the collection's row. A kept copy goes before and after: a query that read it meanwhile
        does not keep it."""
        self._forget_row(row.name)
        try:
            return await self.catalog.delete(row)
        finally:
            self._forget_row(row.name)

    def _forget_row(self, name: str) -> None:
        self._forgotten += 1
        if self._rows is not None:
            self._rows.pop(name, None)

    async def can_read(self, principal: Principal, name: str) -> bool:
        """Whether this principal may see collection `name` (and so subscribe to `collections/<name>`)."""
        try:
            await self._visible(principal, name, "read")
        except ApiError:
            return False
        return True

    async def _describe(self, row: CollectionRow) -> Collection:
        namespaces = await self.store.namespaces(row.space)
        indexes = await self.store.indexes(row.space)
        return Collection(
            name=row.name,
            dimension=row.dimension,
            metric=row.metric,  # type: ignore[arg-type]
            precision=row.precision,  # type: ignore[arg-type]
            count=sum(namespaces.values()),
            namespaces=namespaces,
            indexes={ns: IndexState(**vars(status)) for ns, status in indexes.items()},
            embed=Embed(model=row.embed_model) if row.embed_model else None,
            owner_id=row.owner_id,
            created_at=row.created_at,  # type: ignore[arg-type]
        )

    # --- collections ----------------------------------------------------------------------------------

    async def create(self, principal: Principal, body: CollectionCreate) -> Collection:
        self._need(principal, "write")
        dimension = body.dimension
        if body.embed is not None:
            if not self.store.keywords:
                raise _invalid([FieldError("embed", "this vector backend keeps no text to embed")])
            dimension = self.text.model_dimension(body.embed.model)
            if body.dimension not in (None, dimension):
                raise _invalid([FieldError("dimension", f"the model '{body.embed.model}' gives {dimension} values")])
        elif dimension is None:
            raise _invalid([FieldError("dimension", "give a dimension, or an embedding model (embed) to decide it")])
        try:
            row = await self.catalog.create(
                body.name, dimension, body.metric, principal.user_id, body.precision,
                body.embed.model if body.embed else None,
            )
        except UniqueViolation:
            raise ApiError(Code.CONFLICT, f"a collection named '{body.name}' exists") from None
        self._forget_row(row.name)  # a row kept under this name is of one gone by a way this process did not see
        try:
            await self.store.create(row.space)
        except Refused as exc:
            await self._unlist(row)
            raise _invalid([FieldError("dimension", str(exc))], "this vector backend cannot hold the collection") from None
        except BaseException:
            await self._unlist(row)
            raise
        await self.events.publish(
            topic(row.name),
            "collection.created",
            {"name": row.name, "dimension": row.dimension, "metric": row.metric, "owner_id": row.owner_id},
        )
        return await self._describe(row)

    async def list(self, principal: Principal, limit: int, cursor: str | None) -> Page[Collection]:
        self._need(principal, "read")
        after = _cursor_in(cursor) if cursor else None
        rows = await self.catalog.page(None if principal.is_admin else principal.user_id, after, limit + 1)
        items = [await self._describe(row) for row in rows[:limit]]
        return Page[Collection](items=items, next_cursor=cursors.encode(rows[limit - 1].name) if len(rows) > limit else None)

    async def get(self, principal: Principal, name: str) -> Collection:
        return await self._describe(await self._visible(principal, name, "read"))

    async def delete(self, principal: Principal, name: str) -> None:
        row = await self._visible(principal, name, "write")
        # The name goes first, so nobody reaches the vectors while they are being removed.
        if await self._unlist(row):
            self._names.pop(row.id, None)
            await self.store.drop(row.space)
            await self.events.publish(topic(name), "collection.deleted", {"name": name, "owner_id": row.owner_id})

    # --- vectors ----------------------------------------------------------------------------------------

    async def upsert(self, principal: Principal, name: str, body: UpsertRequest) -> UpsertResult:
        row = await self._visible(principal, name, "write")
        errors: list[FieldError] = record_errors(body.vectors, row.embed_model, self.store.keywords)
        seen: set[str] = set()
        matrix = _upsert_matrix(body.vectors, row.dimension, row.metric, errors)
        records = []
        for i, v in enumerate(body.vectors):
            records.append(Record(v.id, matrix[i], v.metadata or None, v.text))
            if v.metadata:
                errors += _metadata_errors(v.metadata, f"vectors.{i}.metadata")
            if v.id in seen:
                errors.append(FieldError(f"vectors.{i}.id", f"'{v.id}' appears twice in this request"))
            seen.add(v.id)
        if errors:
            raise _invalid(errors, "some vectors are not valid; nothing was written")
        missing = [i for i, v in enumerate(body.vectors) if not v.has_values]
        if missing:  # once every record is known to be valid
            assert row.embed_model is not None  # record_errors refused text without values elsewhere
            embedded = await self.text.embed_documents(row.embed_model, [body.vectors[i].text for i in missing])
            checked = _as_matrix(
                [values.tolist() for values in embedded], row.dimension, row.metric,
                [f"vectors.{i}.text" for i in missing], errors,
            )
            if errors:
                raise _invalid(errors, "the model gave some texts no usable vector; nothing was written")
            for i, values in zip(missing, checked):
                records[i].values = values
        count = await self.store.upsert(row.space, body.namespace, records)
        await self.events.publish(
            topic(name),
            "vectors.upserted",
            {"collection": name, "namespace": body.namespace, "count": count, "ids": [r.id for r in records],
             "owner_id": row.owner_id},  # whom the event may reach (services/realtime.py)
        )
        return UpsertResult(upserted_count=count)

    async def query(self, principal: Principal, name: str, body: QueryRequest) -> dict[str, Any]:
        """A QueryResult's shape (the route's response model) in plain dicts and lists: the shape is fixed, and
        the models cost a keyword query 17 us to make and 11 to serialise where these take 2 (ten matches),
        of ~180 us inside the daemon (bench/RESULTS.md). Each match: id, score, then vector_score and
        keyword_score (hybrid, where ranked by each), values, metadata and text (as asked), None left out."""
        row = await self._visible(principal, name, "read", kept=True)
        mode, errors = choose_mode(body, row.embed_model, self.store.keywords)
        vector = None
        if body.vector is not None:
            vector = _as_vector(body.vector, row.dimension, row.metric, "vector", errors)
        if errors:
            raise _invalid(errors)
        filter = _filter(body.filter) if body.filter else None
        if mode != "keyword" and vector is None:
            if body.id is not None:
                found = await self.store.fetch(row.space, body.namespace, [body.id])
                # As in Pinecone: nothing is near a vector that is not there (hybrid keeps its keywords).
                vector = found[body.id].values if body.id in found else None
            else:
                assert body.text is not None and row.embed_model is not None  # choose_mode checked
                vector = await self.text.embed_query(row.embed_model, body.text)
        by_vector: list[Hit] = []
        if vector is not None:
            by_vector = await self.store.query(
                row.space, body.namespace, vector, body.top_k, filter, body.include_values, body.include_metadata
            )
        by_keyword: list[Hit] = []
        if mode != "vector":
            assert body.text is not None
            by_keyword = await self.store.keyword_query(row.space, body.namespace, body.text, body.top_k, filter)
        ranked: list[dict[str, Any]]
        if mode == "hybrid":
            vector_scores = {h.id: float(h.score) for h in by_vector}
            keyword_scores = {h.id: float(h.score) for h in by_keyword}
            ranked = []
            for i, score in fuse([list(vector_scores), list(keyword_scores)])[: body.top_k]:
                match = {"id": i, "score": float(score)}
                if i in vector_scores:
                    match["vector_score"] = vector_scores[i]
                if i in keyword_scores:
                    match["keyword_score"] = keyword_scores[i]
                ranked.append(match)
        else:
            ranked = [{"id": h.id, "score": float(h.score)} for h in (by_keyword if mode == "keyword" else by_vector)]
        if body.include_values or body.include_metadata or body.include_text:
            await self._include(row, body, ranked, {h.id: h for h in by_vector})
        return {"matches": ranked, "namespace": body.namespace}

    async def _include(
        self, row: CollectionRow, body: QueryRequest, matches: list[dict[str, Any]], hits: dict[str, Hit]
    ) -> None:
        """Values, metadata and text as asked for: from the vector search's hits where it had them, else read."""
        wanted = body.include_values or body.include_metadata
        unread = [m["id"] for m in matches if wanted and m["id"] not in hits]
        records = await self.store.fetch(row.space, body.namespace, unread) if unread else {}
        texts = {}
        if body.include_text and self.store.keywords:  # a backend without keywords keeps no text
            texts = await self.store.texts(row.space, body.namespace, [m["id"] for m in matches])
        for match in matches:
            source = hits.get(match["id"]) or records.get(match["id"])
            if body.include_values and source is not None and source.values is not None:
                match["values"] = source.values.tolist()
            if body.include_metadata:
                match["metadata"] = (source.metadata if source is not None else None) or {}
            if body.include_text and match["id"] in texts:
                match["text"] = texts[match["id"]]

    async def fetch(self, principal: Principal, name: str, body: FetchRequest) -> FetchResult:
        row = await self._visible(principal, name, "read")
        found = await self.store.fetch(row.space, body.namespace, list(dict.fromkeys(body.ids)))
        vectors = {
            i: FetchedVector(id=i, values=r.values.tolist(), metadata=r.metadata or {}, text=r.text)
            for i, r in found.items()
        }
        return FetchResult(vectors=vectors, namespace=body.namespace)

    async def list_ids(self, principal: Principal, name: str, query: VectorListQuery) -> IdPage:
        row = await self._visible(principal, name, "read")
        try:
            ids, cursor = await self.store.list_ids(row.space, query.namespace, query.prefix, query.limit, query.cursor)
        except ValueError:
            raise _invalid([FieldError("cursor", "not a cursor this service gave out")]) from None
        return IdPage(items=ids, next_cursor=cursor)

    async def delete_vectors(self, principal: Principal, name: str, body: DeleteRequest) -> DeleteResult:
        row = await self._visible(principal, name, "write")
        if body.filter is not None and not body.filter:
            raise _invalid([FieldError("filter", "an empty filter; use delete_all to empty a namespace")])
        deleted = await self.store.delete(
            row.space,
            body.namespace,
            ids=body.ids,
            filter=_filter(body.filter) if body.filter else None,
            delete_all=body.delete_all,
            dry_run=body.dry_run,
        )
        if deleted.count and not body.dry_run:
            data: dict[str, Any] = {"collection": name, "namespace": body.namespace, "count": deleted.count,
                                    "owner_id": row.owner_id}
            if deleted.ids is not None:
                data["ids"] = deleted.ids[:MAX_EVENT_IDS]
                data["ids_truncated"] = len(deleted.ids) > MAX_EVENT_IDS
            await self.events.publish(topic(name), "vectors.deleted", data)
        return DeleteResult(deleted_count=deleted.count, dry_run=body.dry_run)
