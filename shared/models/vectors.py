"""The models of docs/api.md's Vectors section: collections, upsert, query, fetch, list and delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SkipValidation, Strict, model_validator

from shared.models import Strict as StrictModel
from shared.models import Text

Metric = Literal["cosine", "dot", "euclidean"]
Precision = Literal["f32", "f16", "bf16", "i8"]
# The default graph copies: as compact as f16 and as accurate for the graph's part (proposing candidates, which
# are re-ranked from the float32 rows), and walked in 0.6-0.75 of f16's time where the CPU has bf16 dot products
# (AVX-512 BF16), in the same time where it has AVX2 only (bench/RESULTS.md: "bf16, the default graph", and
# "An AVX2 machine").
DEFAULT_PRECISION: Precision = "bf16"
COLLECTION_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
# Ids and namespaces are printable ASCII of a bounded size, which both backends accept (Pinecone's rule).
ID_PATTERN = r"^[\x20-\x7e]{1,512}$"
VectorId = Field(pattern=ID_PATTERN)
Namespace = Field("", pattern=r"^[\x20-\x7e]{0,256}$")
MAX_UPSERT = 1000
MAX_TOP_K = 1000
MAX_IDS = 1000
MAX_TEXT_BYTES = 32 * 1024  # of UTF-8, per record
QueryMode = Literal["vector", "keyword", "hybrid"]
# Numbers only: "1.5" or true are not coerced into a vector.
Values = list[Annotated[float, Strict()]]



class Embed(StrictModel):
    model: Text = Field(min_length=1, max_length=200)


class CollectionCreate(StrictModel):
    name: str = Field(pattern=COLLECTION_NAME)
    # May be left out when `embed` names a model: the model decides it (the service checks the two agree).
    dimension: int | None = Field(None, ge=1, le=4096)
    metric: Metric = "cosine"
    embed: Embed | None = None
    # Of the copies the search graph holds; results are re-ranked from full-precision rows either way.
    precision: Precision = DEFAULT_PRECISION


class IndexState(BaseModel):
    """How a namespace is searched (docs/api.md, Vectors: the index of a namespace)."""

    state: Literal["exact", "building", "ready"]
    size: int
    recall: float | None
    ef: int | None


class Collection(BaseModel):
    name: str
    dimension: int
    metric: Metric
    precision: Precision = DEFAULT_PRECISION
    count: int
    namespaces: dict[str, int]
    indexes: dict[str, IndexState] = {}
    embed: Embed | None = None
    owner_id: str | None
    created_at: datetime


class VectorIn(StrictModel):
    id: str = VectorId
    # Numbers only ("1.5" or true are refused), checked in the service for all vectors at once with numpy:
    # validating 384,000 floats one by one here cost more than the rest of an upsert.
    values: SkipValidation[Values] | None = None
    # The same as little-endian float32, base64: a quarter of the JSON, and no float parsing at all.
    values_b64: str | None = None
    # With neither values form, the values are computed from the text by the collection's model (the
    # service checks that there is one, and that a record gives values, text or both).
    text: Text | None = None
    # Checked in the service (types, size) so a bad value is named by its key.
    metadata: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> VectorIn:
        if self.values is not None and self.values_b64 is not None:
            raise ValueError("give 'values' or 'values_b64', not both")
        return self

    @property
    def has_values(self) -> bool:
        return self.values is not None or self.values_b64 is not None


class UpsertRequest(StrictModel):
    vectors: list[VectorIn] = Field(min_length=1, max_length=MAX_UPSERT)
    namespace: str = Namespace


class UpsertResult(BaseModel):
    upserted_count: int


class QueryRequest(StrictModel):
    vector: Values | None = None
    id: str | None = Field(None, pattern=ID_PATTERN)
    # Words to search for: by keyword, by their embedding, or both (`mode`; the service picks the default).
    text: Text | None = Field(None, min_length=1, max_length=MAX_TEXT_BYTES)
    mode: QueryMode | None = None
    top_k: int = Field(10, ge=1, le=MAX_TOP_K)
    filter: dict[str, Any] | None = None
    namespace: str = Namespace
    include_values: bool = False
    include_metadata: bool = False
    include_text: bool = False

    @model_validator(mode="after")
    def _one_selector(self) -> QueryRequest:
        if self.vector is not None and self.id is not None:
            raise ValueError("give 'vector' or 'id', not both")
        if self.vector is None and self.id is None and self.text is None:
            raise ValueError("give 'vector', 'id' or 'text' to search by")
        return self


class Match(BaseModel):
    id: str
    score: float
    # Hybrid only, where each ranking held the record: its score there.
    vector_score: float | None = Field(None, exclude_if=lambda v: v is None)
    keyword_score: float | None = Field(None, exclude_if=lambda v: v is None)
    # Present only when asked for (include_values / include_metadata / include_text), as in Pinecone.
    values: list[float] | None = Field(None, exclude_if=lambda v: v is None)
    metadata: dict[str, Any] | None = Field(None, exclude_if=lambda v: v is None)
    text: str | None = Field(None, exclude_if=lambda v: v is None)


class QueryResult(BaseModel):
    matches: list[Match]
    namespace: str


class FetchRequest(StrictModel):
    ids: list[Annotated[str, VectorId]] = Field(min_length=1, max_length=MAX_IDS)
    namespace: str = Namespace


class FetchedVector(BaseModel):
    id: str
    values: list[float]
    metadata: dict[str, Any] | None = None
    text: str | None = Field(None, exclude_if=lambda v: v is None)


class FetchResult(BaseModel):
    vectors: dict[str, FetchedVector]
    namespace: str


class VectorListQuery(StrictModel):
    namespace: str = Namespace
    prefix: str | None = Field(None, pattern=ID_PATTERN)
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=1000)


class IdPage(BaseModel):
    items: list[str]
    next_cursor: str | None = None


class DeleteRequest(StrictModel):
    ids: list[Annotated[str, VectorId]] | None = Field(None, min_length=1, max_length=MAX_IDS)
    filter: dict[str, Any] | None = None
    delete_all: bool = False
    namespace: str = Namespace
    dry_run: bool = False

    @model_validator(mode="after")
    def _one_selector(self) -> DeleteRequest:
        chosen = sum((self.ids is not None, self.filter is not None, self.delete_all))
        if chosen != 1:
            raise ValueError("give exactly one of 'ids', 'filter' or 'delete_all: true'")
        return self


class DeleteResult(BaseModel):
    deleted_count: int
    dry_run: bool = False
