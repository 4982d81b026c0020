"""The local vector store: SQL rows as the truth, numpy for exact search, usearch's HNSW for large namespaces.

- Durable and atomic: an upsert or delete is one SQL transaction in the app's Database; memory changes
  only after the commit, under the space's write lock, so readers never see half a write and a
  kill -9 loses nothing committed.
- Exact search: one float32 matrix per namespace; a query is one matrix-vector product.
- Approximate search: a namespace with more than `exact_max` vectors gets an HNSW index (usearch),
  built in a thread while exact search keeps answering. The build measures the index's own recall@10
  on a sample of the data; if it stays under RECALL_TARGET even with a wider search (data without
  structure, such as uniform random vectors), the namespace stays exact: answers stay right, at the
  brute-force cost. When it passes, a narrower search (EF_NARROW: fewer nodes visited, so it costs
  less) is measured too, and kept if it loses none of that recall. Candidates from the index are
  re-ranked exactly, so scores are always exact.
  The graph is changed in a thread (usearch releases the GIL); while it is, queries search exactly.
- Filters are evaluated exactly on every vector. When few vectors pass, those are searched exactly;
  when many pass, the index is searched wider and filtered; if that finds fewer than top_k, the exact
  search over the filtered set decides, so a filter never loses matches that exist.
- Restart: the index is saved to the data dir (on close and after each build) with the labels it
  holds; at load it is reconciled with the table (labels gone are removed, new ones added), which
  replays every change made after the snapshot without a rebuild.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import json
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from usearch.index import Index

from daemon import cursors
from daemon.stores.sql import Database
from daemon.stores.vectors import Deleted, Hit, Record, Space
from daemon.stores.vectors.filters import check

log = logging.getLogger("bastion.vectors")

EXACT_MAX = 20_000
RECALL_TARGET = 0.97  # measured at build time; the promise to callers is 0.95
RECALL_SAMPLE = 200
EF_SEARCH = (96, 128, 256)  # search widths tried in turn until the measured recall reaches the target
# Then this narrower width, kept only if it loses none of that recall on the sample. (48 lost a little in
# one of our runs: 0.998 against 1.000 on the euclidean contract test's queries.)
EF_NARROW = 64
OVERFETCH = 3  # candidates asked of the index per result, re-ranked exactly
LOAD_PAGE = 5_000
WRITE_CHUNK = 100
SORT_MAX = 256  # up to this many scores, the top k are found by one sort


def l2_norm(vector: np.ndarray) -> float:
    # What np.linalg.norm computes for a 1-d float vector, without its checks (a few microseconds a query).
    return math.sqrt(float(np.dot(vector, vector)))


class _Ann:
    """An HNSW index over one namespace's labels; candidates only, the caller re-scores them."""

    def __init__(self, index: Index, max_label: int) -> None:
        self.index = index
        self.max_label = max_label
        self.dirty = True
        # True while a thread changes the graph: a search then would wait on the graph's lock and
        # stall the event loop, so queries search exactly until it is done.
        self.busy = False

    @staticmethod
    def new(dimension: int, metric: str) -> Index:
        # The graph only proposes candidates, which are re-scored exactly from the float32 matrix, so
        # it can hold compact copies: int8 for unit vectors (cosine), float16 where magnitudes matter.
        # That quarters (halves) its memory and speeds up both the build and the search.
        kind = "l2sq" if metric == "euclidean" else "ip"
        dtype = "i8" if metric == "cosine" else "f16"
        return Index(ndim=dimension, metric=kind, dtype=dtype, connectivity=16, expansion_add=128)

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        if len(labels):
            self.index.add(labels, vectors, threads=0)
            self.max_label = max(self.max_label, int(labels.max()))
            self.dirty = True

    def remove(self, labels: list[int]) -> None:
        if labels:
            self.index.remove(np.asarray(labels, dtype=np.uint64))
            self.dirty = True

    def search(self, vector: np.ndarray, count: int) -> np.ndarray:
        # One query, on the event loop: threads=1 skips usearch's dispatch to a pool of workers.
        matches = self.index.search(vector, count, threads=1)
        return np.asarray(matches.keys, dtype=np.int64)


class _Shelf:
    """One namespace in memory: a growable matrix with ids, labels and metadata by slot."""

    def __init__(self, dimension: int, metric: str) -> None:
        self.dimension = dimension
        self.metric = metric
        self.n = 0
        self._matrix = np.empty((16, dimension), dtype=np.float32)
        self._labels = np.empty(16, dtype=np.int64)
        self._norms = np.empty(16, dtype=np.float64)  # L2 norm (cosine) or squared norm (euclidean)
        self.ids: list[str] = []
        self.meta: list[dict[str, Any] | None] = []
        self.slot_of: dict[str, int] = {}
        self.slot_of_label: dict[int, int] = {}
        self.ann: _Ann | None = None
        self.building = False
        self.exact_checked_at = 0  # the size at which the index last failed its recall check

    @property
    def matrix(self) -> np.ndarray:
        return self._matrix[: self.n]

    @property
    def labels(self) -> np.ndarray:
        return self._labels[: self.n]

    def _norm(self, values: np.ndarray) -> float:
        if self.metric == "cosine":
            return float(np.linalg.norm(values.astype(np.float64)))
        if self.metric == "euclidean":
            return float(np.dot(values.astype(np.float64), values.astype(np.float64)))
        return 0.0

    def _grow(self) -> None:
        size = len(self._labels) * 2
        self._matrix = np.resize(self._matrix, (size, self.dimension))
        self._labels = np.resize(self._labels, size)
        self._norms = np.resize(self._norms, size)

    def index_vectors(self, slots: np.ndarray) -> np.ndarray:
        """Rows as the HNSW index holds them: unit length for cosine."""
        rows = self._matrix[slots]
        if self.metric == "cosine":
            rows = (rows / self._norms[slots][:, None]).astype(np.float32)
        return rows

    def put(self, record_id: str, values: np.ndarray, metadata: dict[str, Any] | None, label: int) -> int | None:
        """Place a vector; returns the label it replaced, if any."""
        slot = self.slot_of.get(record_id)
        old = None
        if slot is None:
            if self.n == len(self._labels):
                self._grow()
            slot = self.n
            self.n += 1
            self.ids.append(record_id)
            self.meta.append(metadata)
            self.slot_of[record_id] = slot
        else:
            old = int(self._labels[slot])
            del self.slot_of_label[old]
            self.meta[slot] = metadata
        self._matrix[slot] = values
        self._labels[slot] = label
        self._norms[slot] = self._norm(values)
        self.slot_of_label[label] = slot
        return old

    def remove(self, record_id: str) -> int | None:
        """Take a vector out, moving the last one into its slot; returns its label."""
        slot = self.slot_of.pop(record_id, None)
        if slot is None:
            return None
        label = int(self._labels[slot])
        del self.slot_of_label[label]
        last = self.n - 1
        if slot != last:
            moved = self.ids[last]
            self._matrix[slot] = self._matrix[last]
            self._labels[slot] = self._labels[last]
            self._norms[slot] = self._norms[last]
            self.ids[slot] = moved
            self.meta[slot] = self.meta[last]
            self.slot_of[moved] = slot
            self.slot_of_label[int(self._labels[slot])] = slot
        self.ids.pop()
        self.meta.pop()
        self.n = last
        return label

    def scores(self, vector: np.ndarray, slots: np.ndarray | None = None, norm: float | None = None) -> np.ndarray:
        """Exact scores, higher is better (euclidean: the negated squared distance). `norm`: the vector's
        L2 norm when the caller has it already."""
        rows = self.matrix if slots is None else self._matrix[slots]
        norms = self._norms[: self.n] if slots is None else self._norms[slots]
        dots = rows @ vector
        if self.metric == "cosine":
            # float32 like the brute force it must keep up with; the ranking needs no more.
            dots /= (norms * (norm or l2_norm(vector))).astype(np.float32)
            return dots
        if self.metric == "euclidean":
            return 2.0 * dots - norms - float(np.dot(vector, vector))
        return dots

    def top(
        self, vector: np.ndarray, k: int, slots: np.ndarray | None = None, norm: float | None = None
    ) -> list[tuple[int, float]]:
        scores = self.scores(vector, slots, norm)
        k = min(k, len(scores))
        if k == 0:
            return []
        if len(scores) <= SORT_MAX:  # a few candidates: one sort costs less than partition + sort
            best = np.argsort(-scores, kind="stable")[:k]
        else:
            best = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
            best = best[np.argsort(-scores[best], kind="stable")]
        chosen = best if slots is None else slots[best]
        return [(int(s), float(scores[b])) for s, b in zip(chosen, best)]

    def score_for_caller(self, score: float) -> float:
        if self.metric == "euclidean":
            return math.sqrt(max(0.0, -score))
        return score

    def mask(self, filter: dict[str, Any]) -> np.ndarray:
        predicate = check(filter)
        empty: dict[str, Any] = {}
        return np.fromiter((predicate(m or empty) for m in self.meta), dtype=bool, count=self.n)


class _SpaceState:
    def __init__(self, space: Space) -> None:
        self.space = space
        self.shelves: dict[str, _Shelf] = {}
        self.next_label = 1
        self.write_lock = asyncio.Lock()

    def shelf(self, namespace: str, create: bool = False) -> _Shelf | None:
        shelf = self.shelves.get(namespace)
        if shelf is None and create:
            shelf = self.shelves[namespace] = _Shelf(self.space.dimension, self.space.metric)
        return shelf


class _RecallProbe:
    """recall@10 of the query path (candidates from the index, re-ranked exactly) against exact search,
    with data points as queries, each one's self left out. The exact answers are found once, so several
    search widths (ef) can be measured for little more than the searches."""

    def __init__(self, index: Index, labels: np.ndarray, rows: np.ndarray, metric: str, sample: np.ndarray) -> None:
        self.index = index
        self.rows = rows
        self.squares = np.einsum("ij,ij->i", rows, rows) if metric == "euclidean" else None
        self.position = {int(label): i for i, label in enumerate(labels)}
        self.truth = []
        for row in sample:
            scores = self._scores(rows[row], None)
            scores[row] = -np.inf
            self.truth.append((int(row), set(np.argpartition(-scores, 9)[:10].tolist())))

    def _scores(self, q: np.ndarray, positions: np.ndarray | None) -> np.ndarray:
        rows = self.rows if positions is None else self.rows[positions]
        dots = rows @ q
        if self.squares is None:
            return dots
        return 2.0 * dots - (self.squares if positions is None else self.squares[positions])

    def recall(self, ef: int) -> float:
        self.index.expansion_search = ef
        found = 0
        for row, truth in self.truth:
            candidates = [self.position[int(k)] for k in self.index.search(self.rows[row], 11 * OVERFETCH).keys]
            candidates = np.asarray([c for c in candidates if c != row], dtype=np.int64)
            ranked = candidates[np.argsort(-self._scores(self.rows[row], candidates), kind="stable")[:10]]
            found += len(truth.intersection(ranked.tolist()))
        return found / (10 * len(self.truth))


class LocalVectorStore:
    name = "local"

    def __init__(
        self, db: Database, directory: Path, exact_max: int = EXACT_MAX, recall_target: float = RECALL_TARGET
    ) -> None:
        self._db = db
        self._dir = Path(directory)
        self._exact_max = exact_max
        self._recall_target = recall_target
        self._spaces: dict[str, _SpaceState] = {}
        self._loading: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task] = set()

    # --- loading and snapshots -------------------------------------------------------------------

    def _space_dir(self, space: Space) -> Path:
        return self._dir / space.id

    def _snapshot_paths(self, space: Space, namespace: str) -> tuple[Path, Path]:
        stem = hashlib.sha256(namespace.encode()).hexdigest()[:32]
        base = self._space_dir(space)
        return base / f"{stem}.usearch", base / f"{stem}.json"

    async def _state(self, space: Space) -> _SpaceState:
        state = self._spaces.get(space.id)
        if state is not None:
            return state
        lock = self._loading.setdefault(space.id, asyncio.Lock())
        async with lock:
            state = self._spaces.get(space.id)
            if state is None:
                state = await self._load(space)
                self._spaces[space.id] = state
        return state

    async def warm(self, spaces: list[Space]) -> None:
        """Load these spaces now rather than at their first request."""
        for space in spaces:
            await self._state(space)

    async def _load(self, space: Space) -> _SpaceState:
        state = _SpaceState(space)
        last = 0
        while True:
            rows = await self._db.fetch_all(
                "SELECT namespace, id, label, embedding, metadata FROM vectors"
                " WHERE collection_id = ? AND label > ? ORDER BY label LIMIT ?",
                space.id,
                last,
                LOAD_PAGE,
            )
            for row in rows:
                shelf = state.shelf(row["namespace"], create=True)
                values = np.frombuffer(bytes(row["embedding"]), dtype="<f4")
                metadata = orjson.loads(row["metadata"]) if row["metadata"] else None
                shelf.put(row["id"], values, metadata, int(row["label"]))
            if rows:
                last = int(rows[-1]["label"])
            if len(rows) < LOAD_PAGE:
                break
        state.next_label = last + 1
        for namespace, shelf in state.shelves.items():
            max_label = await asyncio.to_thread(self._restore_snapshot, space, namespace, shelf)
            state.next_label = max(state.next_label, max_label + 1)
            self._maybe_build(state, namespace, shelf)
        return state

    def _restore_snapshot(self, space: Space, namespace: str, shelf: _Shelf) -> int:
        """Bring a saved index up to date with the table; returns the highest label it ever held."""
        index_path, meta_path = self._snapshot_paths(space, namespace)
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return 0
        max_label = int(meta.get("max_label", 0))
        if meta.get("mode") == "exact":
            shelf.exact_checked_at = int(meta.get("checked_at", 0))
            return max_label
        try:
            index = Index.restore(str(index_path))
        except Exception:  # a torn or foreign file: rebuild rather than fail the start
            log.warning("vector index snapshot unreadable; rebuilding", extra={"space": space.id})
            return max_label
        if index is None or index.ndim != space.dimension:
            return max_label
        index.expansion_search = int(meta.get("ef", EF_SEARCH[0]))
        ann = _Ann(index, max_label)
        ann.dirty = self._reconcile(shelf, ann)  # saved again at close only if it had to catch up
        shelf.ann = ann
        return max_label

    @staticmethod
    def _change_index(ann: _Ann, removed: list[int], labels: np.ndarray, vectors: np.ndarray) -> None:
        ann.remove(removed)
        ann.add(labels, vectors)

    @staticmethod
    def _reconcile(shelf: _Shelf, ann: _Ann) -> bool:
        """Make the index hold exactly the shelf's labels; whether it had to change."""
        held = np.asarray(ann.index.keys, dtype=np.int64)
        current = shelf.labels
        stale = np.setdiff1d(held, current, assume_unique=True)
        missing = np.setdiff1d(current, held, assume_unique=True)
        ann.remove(stale.tolist())
        if len(missing):
            slots = np.asarray([shelf.slot_of_label[int(label)] for label in missing], dtype=np.int64)
            ann.add(missing, shelf.index_vectors(slots))
        return bool(len(stale) or len(missing))

    def _save_snapshot(self, space: Space, namespace: str, shelf: _Shelf, ann: _Ann | None) -> None:
        index_path, meta_path = self._snapshot_paths(space, namespace)
        index_path.parent.mkdir(parents=True, exist_ok=True)
        if ann is None:
            meta = {"namespace": namespace, "mode": "exact", "checked_at": shelf.exact_checked_at, "max_label": 0}
        else:
            tmp = index_path.with_suffix(".tmp")
            ann.index.save(str(tmp))
            os.replace(tmp, index_path)
            meta = {"namespace": namespace, "mode": "hnsw", "ef": ann.index.expansion_search, "max_label": ann.max_label}
            ann.dirty = False
        tmp_meta = meta_path.with_suffix(".jsontmp")
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_meta, meta_path)

    # --- the approximate index ---------------------------------------------------------------------

    def _maybe_build(self, state: _SpaceState, namespace: str, shelf: _Shelf) -> None:
        if shelf.ann is not None or shelf.building or shelf.n <= self._exact_max:
            return
        if shelf.exact_checked_at and shelf.n < 2 * shelf.exact_checked_at:
            return  # the data had no structure an index could use; look again when it has doubled
        shelf.building = True
        task = asyncio.get_running_loop().create_task(self._build(state, namespace, shelf))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _build(self, state: _SpaceState, namespace: str, shelf: _Shelf) -> None:
        space = state.space
        labels = shelf.labels.copy()
        rows = shelf.index_vectors(np.arange(shelf.n))
        try:
            index = await asyncio.to_thread(self._build_index, space, labels, rows, self._recall_target)
        finally:
            shelf.building = False
        if state.shelves.get(namespace) is not shelf or self._spaces.get(space.id) is not state:
            return  # dropped while building
        if index is None:
            shelf.exact_checked_at = len(labels)
            shelf.ann = None
            await asyncio.to_thread(self._save_snapshot, space, namespace, shelf, None)
            log.info("vector namespace stays exact: an index would lose recall", extra={"space": space.id, "size": len(labels)})
            self._maybe_build(state, namespace, shelf)  # it may have doubled meanwhile
            return
        ann = _Ann(index, int(labels.max()))
        async with state.write_lock:  # the changes made while it was building, with writers held back
            if state.shelves.get(namespace) is not shelf:
                return
            await asyncio.to_thread(self._reconcile, shelf, ann)
            shelf.ann = ann
        await asyncio.to_thread(self._save_snapshot, space, namespace, shelf, ann)

    @staticmethod
    def _build_index(space: Space, labels: np.ndarray, rows: np.ndarray, recall_target: float) -> Index | None:
        index = _Ann.new(space.dimension, space.metric)
        index.add(labels, rows, threads=0)
        sample = np.random.default_rng(len(rows)).choice(len(rows), size=min(RECALL_SAMPLE, len(rows)), replace=False)
        probe = _RecallProbe(index, labels, rows, space.metric, sample)
        for ef in EF_SEARCH:
            recall = probe.recall(ef)
            if recall >= recall_target:
                # A narrower search visits fewer nodes of the graph, so it costs less (the search is most
                # of a query's time): keep it if it finds every neighbour this width found.
                index.expansion_search = EF_NARROW if ef > EF_NARROW and probe.recall(EF_NARROW) >= recall else ef
                return index
        return None

    async def mode(self, space: Space, namespace: str) -> str:
        """How a namespace is searched now: "hnsw", "exact", or "building" (exact until the index is ready)."""
        shelf = (await self._state(space)).shelf(namespace)
        if shelf is not None and shelf.building:
            return "building"
        return "hnsw" if shelf is not None and shelf.ann is not None else "exact"

    async def settle(self) -> None:
        """Wait for index builds in flight (tests and the benchmark)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    # --- the interface -------------------------------------------------------------------------------

    async def create(self, space: Space) -> None:
        self._spaces[space.id] = _SpaceState(space)

    async def drop(self, space: Space) -> None:
        async with self._db.transaction(bulk=True) as tx:
            await tx.execute("DELETE FROM vectors WHERE collection_id = ?", space.id)
        self._spaces.pop(space.id, None)
        self._loading.pop(space.id, None)
        await asyncio.to_thread(shutil.rmtree, self._space_dir(space), True)

    async def upsert(self, space: Space, namespace: str, records: list[Record]) -> int:
        state = await self._state(space)
        async with state.write_lock:
            first = state.next_label
            rows = [
                (
                    space.id,
                    namespace,
                    r.id,
                    first + i,
                    np.asarray(r.values, dtype="<f4").tobytes(),
                    orjson.dumps(r.metadata).decode() if r.metadata else None,
                )
                for i, r in enumerate(records)
            ]
            async with self._db.transaction(bulk=True) as tx:
                for start in range(0, len(rows), WRITE_CHUNK):
                    chunk = rows[start : start + WRITE_CHUNK]
                    placeholders = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))
                    await tx.execute(
                        "INSERT INTO vectors (collection_id, namespace, id, label, embedding, metadata)"
                        f" VALUES {placeholders} ON CONFLICT (collection_id, namespace, id) DO UPDATE SET"
                        " label = excluded.label, embedding = excluded.embedding, metadata = excluded.metadata",
                        *[value for row in chunk for value in row],
                    )
            # Committed: now memory follows, with no await in between, so readers see all or nothing.
            state.next_label = first + len(records)
            shelf = state.shelf(namespace, create=True)
            replaced = []
            for i, r in enumerate(records):
                old = shelf.put(r.id, np.asarray(r.values, dtype=np.float32), r.metadata, first + i)
                if old is not None:
                    replaced.append(old)
            ann = shelf.ann
            if ann is not None:
                labels = np.arange(first, first + len(records), dtype=np.int64)
                vectors = shelf.index_vectors(np.asarray([shelf.slot_of_label[int(x)] for x in labels]))
                # usearch lets go of the GIL while it inserts, so the loop keeps serving meanwhile.
                ann.busy = True
                try:
                    await asyncio.to_thread(self._change_index, ann, replaced, labels, vectors)
                finally:
                    ann.busy = False
            self._maybe_build(state, namespace, shelf)
        return len(records)

    async def query(
        self,
        space: Space,
        namespace: str,
        vector: np.ndarray,
        top_k: int,
        filter: dict[str, Any] | None = None,
        include_values: bool = False,
        include_metadata: bool = False,
    ) -> list[Hit]:
        state = await self._state(space)
        shelf = state.shelf(namespace)
        if shelf is None or shelf.n == 0:
            return []
        vector = np.asarray(vector, dtype=np.float32)
        if filter:
            found = self._filtered(shelf, vector, top_k, shelf.mask(filter))
        elif shelf.ann is not None and not shelf.ann.busy:
            found = self._approximate(shelf, vector, top_k)
        else:
            found = shelf.top(vector, top_k)
        return [
            Hit(
                id=shelf.ids[slot],
                score=shelf.score_for_caller(score),
                values=shelf.matrix[slot].copy() if include_values else None,
                metadata=shelf.meta[slot] if include_metadata else None,
            )
            for slot, score in found
        ]

    def _candidates(self, shelf: _Shelf, vector: np.ndarray, count: int, norm: float) -> np.ndarray:
        assert shelf.ann is not None
        query = vector * np.float32(1.0 / norm) if shelf.metric == "cosine" else vector
        labels = shelf.ann.search(query, min(count, shelf.n))
        slot_of = shelf.slot_of_label
        return np.asarray([slot_of[label] for label in labels.tolist() if label in slot_of], dtype=np.int64)

    def _approximate(self, shelf: _Shelf, vector: np.ndarray, top_k: int) -> list[tuple[int, float]]:
        norm = l2_norm(vector)
        slots = self._candidates(shelf, vector, top_k * OVERFETCH, norm)
        return shelf.top(vector, top_k, slots, norm)

    def _filtered(self, shelf: _Shelf, vector: np.ndarray, top_k: int, mask: np.ndarray) -> list[tuple[int, float]]:
        passing = np.flatnonzero(mask)
        if len(passing) == 0:
            return []
        if shelf.ann is None or shelf.ann.busy or len(passing) <= self._exact_max:
            return shelf.top(vector, top_k, passing)
        # Many pass: search the index wider, in proportion to how many the filter turns away.
        widen = math.ceil(top_k * OVERFETCH * shelf.n / len(passing) * 2) + 10
        slots = self._candidates(shelf, vector, widen, l2_norm(vector))
        kept = slots[mask[slots]]
        if len(kept) >= top_k:
            return shelf.top(vector, top_k, kept)
        return shelf.top(vector, top_k, passing)

    async def fetch(self, space: Space, namespace: str, ids: list[str]) -> dict[str, Record]:
        state = await self._state(space)
        shelf = state.shelf(namespace)
        if shelf is None:
            return {}
        found = {}
        for record_id in ids:
            slot = shelf.slot_of.get(record_id)
            if slot is not None:
                found[record_id] = Record(record_id, shelf.matrix[slot].copy(), shelf.meta[slot])
        return found

    async def list_ids(
        self, space: Space, namespace: str, prefix: str | None, limit: int, cursor: str | None
    ) -> tuple[list[str], str | None]:
        state = await self._state(space)
        shelf = state.shelf(namespace)
        if shelf is None:
            return [], None
        ids = sorted(i for i in shelf.ids if i.startswith(prefix)) if prefix else sorted(shelf.ids)
        start = bisect.bisect_right(ids, cursors.decode(cursor)) if cursor else 0
        page = ids[start : start + limit]
        more = start + limit < len(ids)
        return page, cursors.encode(page[-1]) if more and page else None

    async def delete(
        self,
        space: Space,
        namespace: str,
        ids: list[str] | None = None,
        filter: dict[str, Any] | None = None,
        delete_all: bool = False,
        dry_run: bool = False,
    ) -> Deleted:
        state = await self._state(space)
        async with state.write_lock:
            shelf = state.shelf(namespace)
            if shelf is None:
                return Deleted(0, [])
            if ids is not None:
                doomed = [i for i in dict.fromkeys(ids) if i in shelf.slot_of]
            elif filter is not None:
                doomed = [shelf.ids[slot] for slot in np.flatnonzero(shelf.mask(filter))]
            else:
                doomed = list(shelf.ids)
            if dry_run or not doomed:
                return Deleted(len(doomed), doomed)
            async with self._db.transaction(bulk=True) as tx:
                if delete_all:
                    await tx.execute("DELETE FROM vectors WHERE collection_id = ? AND namespace = ?", space.id, namespace)
                else:
                    for start in range(0, len(doomed), 500):
                        chunk = doomed[start : start + 500]
                        marks = ", ".join("?" * len(chunk))
                        await tx.execute(
                            f"DELETE FROM vectors WHERE collection_id = ? AND namespace = ? AND id IN ({marks})",
                            space.id,
                            namespace,
                            *chunk,
                        )
            labels = [shelf.remove(record_id) for record_id in doomed]
            if shelf.ann is not None:
                shelf.ann.remove([label for label in labels if label is not None])
            if shelf.n == 0:
                del state.shelves[namespace]
                for path in self._snapshot_paths(space, namespace):
                    path.unlink(missing_ok=True)
            return Deleted(len(doomed), doomed)

    async def namespaces(self, space: Space) -> dict[str, int]:
        state = await self._state(space)
        return {ns: shelf.n for ns, shelf in state.shelves.items() if shelf.n}

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for state in self._spaces.values():
            for namespace, shelf in state.shelves.items():
                if shelf.ann is not None and shelf.ann.dirty:
                    await asyncio.to_thread(self._save_snapshot, state.space, namespace, shelf, shelf.ann)
