"""The local vector store: SQL rows as the truth, numpy for exact search, usearch's HNSW for large namespaces.

- Durable and atomic: an upsert or delete is one SQL transaction in the app's Database (one statement per
  request); memory changes only after the commit, under the space's write lock, with no await in between,
  so readers never see half a write and a kill -9 loses nothing committed.
- Exact search: one float32 matrix per namespace; a query is one matrix-vector product. From codes.MIN_ROWS
  rows on (f32 and f16 namespaces), a scan of i8 copies first names the few rows that can be in the top k,
  with a bound on each copy's error, and only those are scored in float32: the same answer (codes.py).
- Filters: metadata is kept in columns (columns.py), so a filter is a few numpy operations whatever its
  selectivity. The passing rows are then searched by whichever of three paths is expected to take least
  time, a unit of each path's work measured on the namespace (costs.py): all of them exactly; those in
  the partition's nearest lists (partition.py), as many lists as were measured for a filter of that share;
  or the graph, asked for as many more candidates as the filter turns away, then intersected. Where the
  lists or the graph find fewer than top_k (or the lists far fewer passing rows than the share promises),
  the exact search over the passing rows decides, so a filter never loses matches that exist, and no path
  costs more than a brute force.
- The graph (graph.py): a namespace over `exact_max` vectors gets one, grown by a background task per
  namespace that adds what is new (never rebuilds) in a thread. Rows not yet in the graph are searched
  exactly beside it, so a query sees every committed row. The graph answers only once its recall was
  measured on held-out queries ("ready"); before that ("building"), and while a thread changes the graph
  (usearch makes a search wait for an add), queries read the nearest lists of a coarse partition
  (partition.py) where its measured recall reaches the target, else every row.
  A sample of live queries is checked exactly in a thread; a width that falls under the target is widened,
  and a namespace where no width reaches it is searched exactly.
- Restart: the graph is saved to the data dir (after a measured build and at close) with its width; at
  load it is reconciled with the table (labels gone are dropped, new rows are added by the task). A close
  also saves the rows themselves (rows.npz: matrix, ids, metadata and its columns, and the label memory was
  synced to); the next start takes them up, applies what the table changed after that label (clock.py), and
  keeps them only if their count and the sum of their labels are the table's. Otherwise, and after a crash,
  the rows are read from the table.
- Text: a record's text is a column of its row, read from SQL when asked for (not held in memory), and
  kept in a keyword index (daemon/stores/keywords.py) that follows each write once it has committed,
  before the request answers, and is reconciled with the table at load, as the graph is.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import ctypes
import ctypes.util
import functools
import hashlib
import itertools
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson
from threadpoolctl import threadpool_limits

from daemon import cursors
from daemon.threads import lower_priority
from daemon.stores.keywords import KeywordIndex
from daemon.stores.sql import Database, marks
from daemon.stores.vectors import Deleted, Hit, IndexStatus, Record, Space
from daemon.stores.vectors import clock, codes, graph
from daemon.stores.vectors.arena import Blobs, Ids, close_up, grown
from daemon.stores.vectors.codes import Codes
from daemon.stores.vectors.columns import Columns
from daemon.stores.vectors.costs import PathCosts
from daemon.stores.vectors.graph import Graph
from daemon.stores.vectors import partition as partition_module
from daemon.stores.vectors.partition import Partition

log = logging.getLogger("bastion.vectors")

EXACT_MAX = 20_000
Texts = dict[str, dict[str, str | None]]  # namespace -> id -> text (None: none), for the keyword index
SORT_MAX = 256  # up to this many scores, the top k are found by one sort
UPSERTS_PER_TRANSACTION = 64  # requests written together at most (group commit)
ROWS_PER_STATEMENT = 1_000  # 7 parameters a row, under SQLite's 32,766
# Threads that add to a graph: all cores but one, which stays with the event loop and its queries (exact
# while the graph changes), so a build never makes them slower than a brute force on a loaded machine.
BUILD_THREADS = max(1, (os.cpu_count() or 1) - 1)
# ...and at the lowest priority (nice 19), so that where cores are short the requests' threads and every
# other process preempt the graph's work rather than share a core with it: measured on 2 cores, a build at
# normal priority made exact queries 153 ms at the median against the brute force's 94 ms, and at nice 10
# (a tenth of a core's share against a query's thread) still 1.14-1.15x the brute force, at 100k and 1M.
# nice 19 was tried (queries during a 1M build 1.06x, not 1.15x) but starved the build under a loaded CI:
# tests/e2e/test_vectors_kill9.py saw no graph within its wait. Back to 10 until a build can be paced instead.
BUILD_NICE = 10
# A namespace being written to waits for the writes to pause this long before its graph takes more rows,
# but never longer than WRITES_WAIT_MAX_S: a bulk load's requests keep the cores (its rows are searched
# exactly meanwhile) and the graph then takes them in one pass; a steady stream still gets its graph.
WRITES_QUIET_S = 0.5
WRITES_WAIT_MAX_S = 30.0
# An exact search over many rows is split into blocks scored at once, one on the caller's thread and one
# on each of these (numpy lets go of the GIL in the product). BLAS stays at one thread (see LocalVectorStore),
# so the daemon's product used one core where numpy in a client uses them all: over 100,000 x 384 it took
# 4.6 ms against the client's 3.4 ms on a quiet 2-core machine, and 1.6-2x as long on a loaded one, where
# a process's threads share out the CPU and one thread gets half of what two do. Idle, these threads sleep
# on a queue; OpenBLAS's own threads spin, which is why BLAS stays at one.
SCAN_THREADS = len(os.sched_getaffinity(0)) - 1 if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1) - 1
# ...from this many values (rows x dimension) on: below, the hand-over costs more than the half saves (at 384
# dimensions, 5,000 rows: 0.08 ms alone against 0.11 split; 10,000: 0.17 against 0.14).
SCAN_SPLIT_MIN = 1 << 22
# A namespace whose graph has this many rows to take in gets a partition (partition.py) to be searched
# through meanwhile: adding them takes the graph over ten seconds (about a millisecond a row on one thread).
PARTITION_MIN_ROWS = 10_000
# A namespace with a graph and this many rows keeps a partition for its filters too (partition.py): under it,
# scoring every passing row exactly costs at most a few milliseconds.
FILTER_PARTITION_MIN_ROWS = 50_000
EARLY_PROBE_ROWS = 40_000  # a first build of this many rows or more is measured on a quarter of them first
# A removal of a 32nd of a namespace's rows or more closes the rows up in one pass (remove_many) rather than
# taking them out one at a time: at 100,000 rows the pass took 0.06 s, and removals 16-17 us each.
BULK_REMOVAL_SHARE = 32
GATHER_ROWS = 1_024  # rows gathered and scored at once when a search is over some rows (1.5 MB at 384 dimensions)
_scan_executor: concurrent.futures.ThreadPoolExecutor | None = None


def _scan_blocks(values: int) -> int:
    return 1 + min(SCAN_THREADS, values // SCAN_SPLIT_MIN) if SCAN_THREADS > 0 else 1


def _scan_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _scan_executor
    if _scan_executor is None:
        _scan_executor = concurrent.futures.ThreadPoolExecutor(max(1, SCAN_THREADS), thread_name_prefix="vector-scan")
    return _scan_executor


_libc_path = ctypes.util.find_library("c")
_libc = ctypes.CDLL(_libc_path) if _libc_path else None


def return_free_memory() -> None:
    """Give the system back the pages malloc holds free. glibc keeps what a thread frees in that thread's
    arena, and a bulk load (each request's parsed body, the rows read at a start) leaves those arenas
    large and mostly empty; malloc_trim releases their whole free pages. Elsewhere (musl, macOS): nothing."""
    if _libc is not None and hasattr(_libc, "malloc_trim"):
        _libc.malloc_trim(0)


def _log_failure(task: asyncio.Task) -> None:
    """A background task that fails says so in the log, not at garbage collection or never."""
    if not task.cancelled() and task.exception() is not None:
        log.error("vector background task failed", exc_info=task.exception())


def l2_norm(vector: np.ndarray) -> float:
    # What np.linalg.norm computes for a 1-d float vector, without its checks (a few microseconds a query).
    return math.sqrt(float(np.dot(vector, vector)))


def nested(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Arrays named under `prefix/`, to be saved beside others in one file (np.savez)."""
    return {f"{prefix}/{name}": array for name, array in arrays.items()}


def unnested(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays nested() put under `prefix/`, by their own names."""
    start = len(prefix) + 1
    return {name[start:]: array for name, array in arrays.items() if name.startswith(prefix + "/")}


class _Grown(NamedTuple):
    """A shelf's writer-only arrays with more room (_Shelf.rows_grown)."""
    matrix: np.ndarray
    labels: np.ndarray
    norms: np.ndarray
    codes: tuple[np.ndarray, np.ndarray] | None


class _Shelf:
    """One namespace in memory: a growable matrix with ids, labels, metadata and its graph, by slot.

    Slots are dense: a removal moves the last row into the hole. `in_graph` says which slots' current
    values the graph holds; `slot_by_label` maps a label the graph returns to its slot (-1: gone)."""

    def __init__(self, space: Space, capacity: int = 16) -> None:
        self.dimension = space.dimension
        self.metric = space.metric
        self.precision = space.precision
        self.n = 0
        capacity = max(16, capacity)
        self._matrix = np.empty((capacity, space.dimension), dtype=np.float32)
        self._labels = np.empty(capacity, dtype=np.int64)
        self._norms = np.empty(capacity, dtype=np.float32)  # L2 norm (cosine) or squared norm (euclidean)
        self.in_graph = np.zeros(capacity, dtype=bool)
        self.slot_by_label = np.full(1024, -1, dtype=np.int32)
        self.ids = Ids(capacity)
        self.meta = Blobs(capacity)  # as orjson wrote it: a tenth of a dict's memory
        self.columns = Columns(capacity)
        # i8 copies for exact scans (codes.py), from codes.MIN_ROWS rows on; not where the graph is i8: that
        # precision is asked for to save memory, and the copies are a quarter of the rows' again.
        self.codes: Codes | None = None
        # The graph and what is known of it.
        self.ann: Graph | None = None
        self.state = "exact"  # "exact" | "building" | "ready"
        self.ef: int | None = None
        self.recall: float | None = None  # measured on held-out queries at the last build
        self.probed_at = 0  # the graph's size at that measurement
        self.graphed = 0  # slots whose values the graph holds
        self.dead: list[int] = []  # labels in the graph whose rows are gone or replaced
        self.busy = False  # a thread is changing the graph: a search now would wait for it
        self.dirty = False  # changed since last saved
        self.exact_checked_at = 0  # the size at which no width reached the target
        self.live = graph.LiveRecall()
        # Searched instead of every row while the graph cannot answer (partition.py); None where not made, or
        # where it did not reach the target (then not tried again before the namespace has doubled).
        self.partition: Partition | None = None
        self.partition_tried_at = 0
        self.filter_live = graph.LiveRecall()  # of filtered queries answered through the partition's lists
        self.path_costs = PathCosts()  # what a filtered query's paths have cost here
        self.builder: asyncio.Task | None = None
        self.written_at = 0.0  # time.monotonic() of the last rows put in
        self.version = 0  # bumped by every put and removal: what a kept order of the ids is of
        self._id_order: tuple[int, np.ndarray] | None = None

    @property
    def matrix(self) -> np.ndarray:
        return self._matrix[: self.n]

    @property
    def labels(self) -> np.ndarray:
        return self._labels[: self.n]

    @property
    def overfetch(self) -> int:
        return graph.OVERFETCH[self.precision]

    def searchable(self) -> bool:
        return self.state == "ready" and not self.busy

    def metadata(self, slot: int) -> dict[str, Any] | None:
        raw = self.meta[slot]
        return orjson.loads(raw) if raw is not None else None

    def room_for(self, added: int) -> int | None:
        """The capacity to grow to before `added` new rows go in; None when they fit."""
        if self.n + added <= len(self._labels):
            return None
        return max(2 * len(self._labels), self.n + added)

    def rows_grown(self, size: int) -> _Grown:
        """The arrays that only the space's writer writes (rows, labels, norms, i8 copies) with room for `size`.
        Made in a thread by the writer, under the write lock (LocalVectorStore._make_room): at a million rows a
        doubling copies 1.5 GB, which held the loop, and every request, for 2 s. Queries read the old arrays
        meanwhile, which hold the same rows. Only the rows in use are copied (np.resize made four passes)."""
        n = self.n
        return _Grown(grown(self._matrix, size, used=n), grown(self._labels, size, used=n),
                      grown(self._norms, size, used=n), self.codes.grown(size, n) if self.codes is not None else None)

    def _grow(self, size: int, rows: _Grown | None = None) -> None:
        """`rows`: rows_grown(size), when made beforehand; the small arrays (those the indexer writes too) are
        grown here, on the loop."""
        if rows is None:
            rows = self.rows_grown(size)
        self._matrix, self._labels, self._norms = rows.matrix, rows.labels, rows.norms
        if self.codes is not None:
            assert rows.codes is not None  # made under the write lock, as the copies are
            self.codes.take(rows.codes)
        self.in_graph = grown(self.in_graph, size, fill=False)
        self.columns.grow(size)
        if self.partition is not None:
            self.partition.grow(size)

    def _label_room(self, label: int) -> None:
        if label >= len(self.slot_by_label):
            self.slot_by_label = grown(self.slot_by_label, max(label + 1, 2 * len(self.slot_by_label)), fill=-1)

    def _forget_graph_copy(self, slot: int) -> None:
        if self.in_graph[slot]:
            self.in_graph[slot] = False
            self.graphed -= 1
            self.dead.append(int(self._labels[slot]))

    def put_many(self, ids: list[str], values: np.ndarray, metadata: list[dict[str, Any] | None],
                 raws: list[bytes | None], labels: np.ndarray) -> None:
        """Place vectors (new, or replacing those of their ids; no id twice) under these new labels."""
        slots = self.ids.slots(ids)
        for i in np.flatnonzero(slots >= 0).tolist():  # a replacement: its old label and metadata go
            slot = int(slots[i])
            self._forget_graph_copy(slot)
            self.slot_by_label[self._labels[slot]] = -1
            self.columns.clear(slot, self.metadata(slot))
            self.meta[slot] = raws[i]
            if self.partition is not None:
                self.partition.unlist(slot)
        fresh = np.flatnonzero(slots < 0)
        slots[fresh] = np.arange(self.n, self.n + len(fresh))
        size = self.room_for(len(fresh))  # made already by an upsert's writer (_make_room); not by a load
        if size is not None:
            self._grow(size)
        self.ids.append([ids[i] for i in fresh.tolist()])
        self.meta.extend([raws[i] for i in fresh.tolist()])
        self.n += len(fresh)
        self._matrix[slots] = values
        self._labels[slots] = labels
        self._norms[slots] = self._norms_of(values)
        if self.codes is not None:
            self.codes.put(slots, self.index_vectors(slots))
        else:
            self._code_rows()
        self._label_room(int(labels.max()))
        self.slot_by_label[labels] = slots
        self.columns.set_many(slots.tolist(), metadata)
        self.written_at = time.monotonic()
        self.version += 1

    def _code_rows(self) -> None:
        """Make the i8 copies once the namespace has rows enough for them to pay (and where they are kept)."""
        if self.codes is not None or self.precision == "i8" or self.n < codes.MIN_ROWS:
            return
        made = Codes(codes.fitted_scale(self.fit_sample()), self.dimension, len(self._labels))
        for start in range(0, self.n, graph.BLOCK):  # a restart codes up to a million rows: a block at a time
            slots = np.arange(start, min(self.n, start + graph.BLOCK))
            made.put(slots, self.index_vectors(slots))
        self.codes = made

    def fit_sample(self) -> np.ndarray:
        """Rows (as searched) spread over the namespace, that an i8 scale is fitted on."""
        return self.index_vectors(np.unique(np.linspace(0, self.n - 1, codes.FIT_SAMPLE).astype(np.int64)))

    def ids_in_order(self) -> np.ndarray:
        """Slots by id, in Python's order of strings; kept until the next write. Listing a page sorted every
        id of the namespace (about a second at a million); a kept order costs 4 bytes a row and a bisection
        a page."""
        if self._id_order is None or self._id_order[0] != self.version:
            texts = self.ids.all()
            order = np.array(sorted(range(self.n), key=texts.__getitem__), dtype=np.int32)
            self._id_order = (self.version, order)
        return self._id_order[1]

    def _norms_of(self, values: np.ndarray) -> np.ndarray:
        if self.metric == "cosine":
            return np.sqrt(np.einsum("ij,ij->i", values, values, dtype=np.float64))
        if self.metric == "euclidean":
            return np.einsum("ij,ij->i", values, values, dtype=np.float64)
        return np.zeros(len(values))

    def remove(self, record_id: str) -> None:
        """Take a vector out, moving the last one into its slot."""
        slot = self.ids.slot(record_id)
        if slot is None:
            return
        self._forget_graph_copy(slot)
        self.slot_by_label[self._labels[slot]] = -1
        self.columns.clear(slot, self.metadata(slot))
        last = self.n - 1
        if slot != last:
            last_meta = self.metadata(last)
            self.columns.clear(last, last_meta)
            self.columns.set_many([slot], [last_meta])
            self._matrix[slot] = self._matrix[last]
            self._labels[slot] = self._labels[last]
            self._norms[slot] = self._norms[last]
            if self.codes is not None:
                self.codes.move(slot, last)
            self.in_graph[slot] = self.in_graph[last]
            self.in_graph[last] = False
            self.slot_by_label[self._labels[slot]] = slot
        if self.partition is not None:
            self.partition.move(slot, last)  # slot == last: it is unlisted
        self.ids.remove(slot)  # the last id and metadata move to the slot too
        self.meta.remove(slot)
        self.n = last
        self.version += 1

    def remove_many(self, record_ids: list[str]) -> None:
        """Take many vectors out at once: the rows kept close up in their order, each array moved once.
        remove() costs about 17 us a row on the loop: 80,000 of 200,000 rows deleted by a filter held it
        1.4 s, against 0.17 s here."""
        slots = self.ids.slots(record_ids)
        gone = np.zeros(self.n, dtype=bool)
        gone[slots[slots >= 0]] = True
        if not gone.any():
            return
        labels = self.labels
        graphed = gone & self.in_graph[: self.n]
        self.dead += labels[graphed].tolist()
        self.graphed -= int(graphed.sum())
        self.slot_by_label[labels[gone]] = -1
        kept = np.flatnonzero(~gone)
        count = len(kept)
        for array in (self._matrix, self._labels, self._norms):
            close_up(array, kept, self.n)
        close_up(self.in_graph, kept, self.n, fill=False)
        if self.codes is not None:
            self.codes.keep(kept, self.n)
        self.slot_by_label[self._labels[:count]] = np.arange(count, dtype=np.int32)
        self.columns.keep(kept, self.n)
        if self.partition is not None:
            self.partition.keep(kept, self.n)
        self.ids.keep(kept)
        self.meta.keep(kept)
        self.n = count
        self.version += 1

    def saved(self) -> dict[str, np.ndarray]:
        """The rows with their ids, labels and metadata (columns too), as arrays restored() takes back."""
        return {"matrix": self.matrix, "labels": self.labels, "norms": self._norms[: self.n],
                **nested("ids", self.ids.saved()), **nested("meta", self.meta.saved()),
                **nested("columns", self.columns.saved(self.n)),
                **(nested("partition", self.partition.saved(self.n)) if self.partition is not None else {}),
                **(nested("codes", self.codes.saved(self.n)) if self.codes is not None else {}),
                "partition_tried_at": np.asarray(self.partition_tried_at)}

    @classmethod
    def restored(cls, space: Space, arrays: dict[str, np.ndarray]) -> _Shelf:
        """A namespace as saved() left it, with no graph (the graph's own snapshot is taken up after)."""
        shelf = cls(space)
        shelf._matrix, shelf._labels, shelf._norms = arrays["matrix"], arrays["labels"], arrays["norms"]
        shelf.n = len(shelf._labels)
        shelf.in_graph = np.zeros(shelf.n, dtype=bool)
        shelf._label_room(int(shelf._labels.max(initial=0)))
        shelf.slot_by_label[shelf._labels] = np.arange(shelf.n, dtype=np.int32)
        shelf.ids, shelf.meta = Ids.restored(unnested("ids", arrays)), Blobs.restored(unnested("meta", arrays))
        shelf.columns = Columns.restored(unnested("columns", arrays), shelf.n)
        if "partition/centres" in arrays:
            shelf.partition = Partition.restored(unnested("partition", arrays), shelf.metric, shelf.n)
            shelf.partition_tried_at = int(arrays["partition_tried_at"])
        if "codes/rows" in arrays:
            shelf.codes = Codes.restored(unnested("codes", arrays))
        else:  # saved by a version without them
            shelf._code_rows()
        return shelf

    def index_vectors(self, slots: np.ndarray) -> np.ndarray:
        """Rows as the graph holds them: unit length for cosine."""
        rows = self._matrix[slots]
        if self.metric == "cosine":
            rows = rows / self._norms[slots][:, None]
        return rows

    def graph_rows(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """graph.Lookup: of these labels, those still alive, and their rows as the graph holds them."""
        slots = self.slot_by_label[labels]
        alive = slots >= 0
        return labels[alive], self.index_vectors(slots[alive])

    def rows_by_slot(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._labels[slots], self.index_vectors(slots)

    def graph_scores(self, queries: np.ndarray, start: int, stop: int) -> np.ndarray:
        """graph.BlockScores: as the graph would score these queries (given as it holds them) against
        slots [start, stop), counting only the rows it holds."""
        return self.block_scores(queries, start, stop, self.in_graph)

    def block_scores(self, queries: np.ndarray, start: int, stop: int, counted: np.ndarray) -> np.ndarray:
        """graph.BlockScores over the rows where `counted` (by slot) is true (-inf elsewhere)."""
        rows = self._matrix[start:stop]
        dots = queries @ rows.T
        if self.metric == "cosine":
            dots /= self._norms[start:stop]
        elif self.metric == "euclidean":
            dots = 2.0 * dots - self._norms[start:stop]
        dots[:, ~counted[start:stop]] = -np.inf
        return dots

    def scores(self, vector: np.ndarray, slots: np.ndarray | None = None, norm: float | None = None,
               parallel: bool = True) -> np.ndarray:
        """Exact scores, higher is better (euclidean: the negated squared distance). `norm`: the vector's
        L2 norm when the caller has it already. `parallel`: many rows are scored in blocks, one on this
        thread and one on each of SCAN_THREADS (see there)."""
        matrix, norms, count = self._matrix, self._norms, self.n if slots is None else len(slots)
        if self.metric == "cosine":
            scale = np.float32(norm or l2_norm(vector))
        else:
            scale = np.float32(np.dot(vector, vector)) if self.metric == "euclidean" else np.float32(0)
        out = np.empty(count, dtype=np.float32)
        blocks = _scan_blocks(count * self.dimension) if parallel else 1
        codes.in_blocks(count, blocks, _scan_pool() if blocks > 1 else None,
                        functools.partial(self._score_block, matrix, norms, vector, slots, scale, out))
        return out

    def _score_block(self, matrix: np.ndarray, norms: np.ndarray, vector: np.ndarray, slots: np.ndarray | None,
                     scale: np.float32, out: np.ndarray, start: int, stop: int) -> None:
        """scores() of rows [start, stop) (of `slots`, or of the matrix), into out[start:stop]. The arrays are
        the caller's: an upsert that grows the matrix meanwhile replaces the shelf's, not these."""
        if slots is None:
            rows, row_norms = matrix[start:stop], norms[start:stop]
            np.matmul(rows, vector, out=out[start:stop])
        else:
            # Gathered a piece at a time, so that the product reads each piece from the cache it was just
            # copied into, not from memory again: at 1M x 384, 25,000 passing rows 7.5 -> 5.9 ms, 50,000
            # 19 -> 8 ms (two threads, 1,024 rows a piece).
            row_norms = norms[slots[start:stop]]
            for piece in range(start, stop, GATHER_ROWS):
                end = min(stop, piece + GATHER_ROWS)
                np.matmul(matrix[slots[piece:end]], vector, out=out[piece:end])
        dots = out[start:stop]
        if self.metric == "cosine":
            # float32 like the brute force it must keep up with; the ranking needs no more.
            dots /= row_norms * scale
        elif self.metric == "euclidean":
            dots *= 2.0
            dots -= row_norms
            dots -= scale

    def top(
        self, vector: np.ndarray, k: int, slots: np.ndarray | None = None, norm: float | None = None,
        parallel: bool = True,
    ) -> list[tuple[int, float]]:
        count = self.n if slots is None else len(slots)
        if self.codes is not None and count >= (codes.MIN_ROWS if slots is None else codes.MIN_GATHERED) and 0 < k < count:
            slots = self._contenders(vector, k, slots, norm, parallel)
        scores = self.scores(vector, slots, norm, parallel)
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

    def _contenders(self, vector: np.ndarray, k: int, slots: np.ndarray | None, norm: float | None,
                    parallel: bool = True) -> np.ndarray:
        """The slots (of `slots`, or all) that may hold the exact top k, found by a scan of the i8 copies
        (`parallel`: in blocks, as scores() does, counting an i8 value read in order a quarter of a float32
        one, and a gathered row's value two, which splits from about 5,500 rows of 384 dimensions. A gather
        waits on memory; rows of 100,000 x 384 not in the cache, one block against two: 4,000 rows 0.41 ms
        against 0.45-0.47, 8,000 0.76-0.78 against 0.66-0.78, 10,000 0.92-0.96 against 0.72-0.79)."""
        assert self.codes is not None
        n, query = self.n, vector  # n once: a live check runs this in a thread while writes go on
        if self.metric == "cosine":
            norm = norm or l2_norm(vector)
            query = vector * np.float32(1.0 / norm)
        count = n if slots is None else len(slots)
        blocks = _scan_blocks(count * self.dimension // 4 if slots is None else 2 * count * self.dimension) \
            if parallel else 1
        estimate, slack = self.codes.estimates(query, slots, n, blocks, _scan_pool() if blocks > 1 else None)
        magnitude = self.codes.length * float(np.linalg.norm(query))
        if self.metric == "euclidean":  # the score is 2 x.q - |x|^2 - |q|^2
            estimate *= 2.0
            estimate -= self._norms[:n] if slots is None else self._norms[slots]
            estimate -= np.float32(np.dot(vector, vector))
            slack *= 2.0
            magnitude = (self.codes.length + float(np.linalg.norm(query))) ** 2

        def exact(positions: np.ndarray) -> np.ndarray:
            return self.scores(vector, positions if slots is None else slots[positions], norm, parallel=False)

        found = codes.contenders(estimate, slack, k, exact, magnitude)
        return found if slots is None else slots[found]

    def score_for_caller(self, score: float) -> float:
        if self.metric == "euclidean":
            return math.sqrt(max(0.0, -score))
        return score

    def candidates(self, vector: np.ndarray, count: int, norm: float, through_lists: bool = False) -> np.ndarray:
        """Slots the graph proposes, and those it does not hold yet: every one of them, or with `through_lists`,
        where they are many and the partition serves, those in the query's lists (`rows_to_read`).

        A graph is measured, and ready, on the rows it held when a pass began, and a bulk load goes on meanwhile:
        at a million rows a first pass of 450,000 made it ready with 550,000 more still to add, and each query
        until the next pass had added them scored those 550,000 exactly (48 ms at the median over HTTP, where
        the lists had read them in 5.5). Filters keep every row outside the graph: the lists are measured on
        unfiltered queries (their own path through the lists is chosen in _filtered)."""
        assert self.ann is not None and self.ef is not None
        query = vector * np.float32(1.0 / norm) if self.metric == "cosine" else vector
        count = min(graph.candidate_count(count, self.ef), self.n)
        labels = self.ann.search(query, count)
        slots = self.slot_by_label[labels]
        slots = slots[slots >= 0]
        if self.graphed < self.n:
            listed = self.rows_to_read(vector) if through_lists and self.n - self.graphed >= PARTITION_MIN_ROWS else None
            outside = np.flatnonzero(~self.in_graph[: self.n]) if listed is None else listed[~self.in_graph[listed]]
            slots = np.concatenate([slots, outside])
        return slots

    def memory_bytes(self) -> int:
        """What this namespace holds in memory: its arrays at their capacity, metadata, ids and graph."""
        arrays = [self._matrix, self._labels, self._norms, self.in_graph, self.slot_by_label]
        for field in self.columns.fields.values():
            arrays += [field.present, field.code, *field.members.values()] + ([] if field.number is None else [field.number])
        held = sum(a.nbytes for a in arrays) + self.ids.nbytes + self.meta.nbytes
        held += self.partition.nbytes if self.partition is not None else 0
        held += self.codes.nbytes if self.codes is not None else 0
        return held + (self.ann.memory_usage if self.ann is not None else 0)

    def rows_to_read(self, vector: np.ndarray) -> np.ndarray | None:
        """The slots a query reads while the graph cannot answer: those the partition chooses, or all (None)
        where it has none or lists too few of the rows (a bulk load goes on: the rest are read one by one)."""
        if self.partition is None or self.state == "exact" or not self.partition.covers(self.n):
            return None
        return self.partition.slots(vector, self.n)

    def lists_for(self, passing: int) -> int | None:
        """Lists of the partition a filter passing this many rows reads, where the partition serves filters."""
        if self.partition is None or self.state == "exact" or not self.partition.covers(self.n):
            return None
        return self.partition.probes_for(passing / self.n)

    def status(self) -> IndexStatus:
        if self.state == "exact":
            return IndexStatus(state="exact", size=0, recall=1.0, ef=None)
        if self.state == "building":  # searched through the partition, or exactly
            recall = self.partition.recall if self.partition is not None else 1.0
            return IndexStatus(state="building", size=self.graphed, recall=recall, ef=None)
        live = self.live.mean() if len(self.live.window) >= graph.LIVE_MIN else None
        return IndexStatus(state=self.state, size=self.graphed, recall=live if live is not None else self.recall, ef=self.ef)


class _Upsert:
    """One request's upsert, waiting for the space's writer; `done` gets its count or its failure."""

    def __init__(self, namespace: str, records: list[Record]) -> None:
        self.namespace = namespace
        self.records = records
        # Copied to fit: orjson returns its 4 KB write buffer as the bytes object (orjson 3.13: 4,098 bytes
        # held for a 30-byte document), 4 MB for a request of a thousand while it waits for the writer.
        self.raws = [bytes(memoryview(orjson.dumps(r.metadata))) if r.metadata else None for r in records]
        self.done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        # Its failure is read even when the request has gone (not logged as never retrieved): it got it.
        self.done.add_done_callback(lambda done: done.cancelled() or done.exception())

    def fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc if isinstance(exc, Exception) else RuntimeError("the vector store closed"))


class _SpaceState:
    def __init__(self, space: Space) -> None:
        self.space = space
        self.shelves: dict[str, _Shelf] = {}
        self.synced = 0  # memory holds every write of the clock up to this label (clock.py)
        self.synced_at = time.monotonic()
        self.write_lock = asyncio.Lock()
        self.upserts: list[_Upsert] = []  # waiting for the writer task
        self.writer: asyncio.Task | None = None

    def advance(self, first: int, last: int) -> None:
        """This process wrote labels first..last: memory follows the clock on if nothing came between."""
        if self.synced == first - 1:
            self.synced = last

    def shelf(self, namespace: str, create: bool = False, capacity: int = 16) -> _Shelf | None:
        shelf = self.shelves.get(namespace)
        if shelf is None and create:
            shelf = self.shelves[namespace] = _Shelf(self.space, capacity)
        return shelf


class LocalVectorStore:
    name = "local"
    keywords = True

    def __init__(
        self, db: Database, directory: Path, exact_max: int = EXACT_MAX, recall_target: float = graph.RECALL_TARGET
    ) -> None:
        self._db = db
        self._dir = Path(directory)
        self._exact_max = exact_max
        self._recall_target = recall_target
        self._spaces: dict[str, _SpaceState] = {}
        self._loading: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task] = set()
        self._keywords = KeywordIndex(self._dir / "keywords")
        # The graphs' work (adds, removals, measurements, snapshots), one piece at a time in one thread.
        self._graph_thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="vector-graph", initializer=lower_priority, initargs=(BUILD_NICE,))
        # A query is one matrix-vector product; OpenBLAS spreads one over every core and spins while it
        # waits for them, which on a busy 2-core machine made an exact search over 3,000 rows 5x slower
        # (28 ms against 5.8 ms). Requests run side by side instead; this holds for the whole process.
        threadpool_limits(limits=1, user_api="blas")

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
                # Only now: a graph task ends at once when its space is not the current one (_current).
                for namespace, shelf in state.shelves.items():
                    self._keep_indexed(state, namespace, shelf)
        return state

    async def warm(self, spaces: list[Space]) -> None:
        """Load these spaces now rather than at their first request."""
        for space in spaces:
            await self._state(space)

    async def _load(self, space: Space) -> _SpaceState:
        state = await self._load_saved_rows(space) or await self._load_table(space)
        max_label = 0
        for namespace, shelf in state.shelves.items():
            max_label = max(max_label, await asyncio.to_thread(self._restore_snapshot, space, namespace, shelf))
        if max_label > state.synced:  # a graph saved before the clock existed holds labels beyond it
            await clock.raise_to(self._db, space.id, max_label)
        await asyncio.to_thread(return_free_memory)  # the rows as SQL gave them are gone
        return state

    async def _load_table(self, space: Space) -> _SpaceState:
        state = _SpaceState(space)
        # The clock first: a write that commits while the rows are read is read again by the next catch-up.
        state.synced = (await clock.read(self._db, [space.id])).get(space.id, 0)
        sizes = {
            row["namespace"]: int(row["n"])
            for row in await self._db.fetch_all(
                "SELECT namespace, COUNT(*) AS n FROM vectors WHERE collection_id = ? GROUP BY namespace", space.id
            )
        }
        texts = await self._read_rows(state, 0, sizes)
        await self._keywords.reconcile(
            space.id, {ns: {i: t for i, t in held.items() if t is not None} for ns, held in texts.items()})
        return state

    async def _load_saved_rows(self, space: Space) -> _SpaceState | None:
        """The rows the last close saved, brought up to date with the table; None where none were saved, or
        where they do not add up to the table (which is then read whole). Reading a million rows from SQLite
        and putting them in place row by row took most of a 26 s start; their saved arrays are read whole."""
        saved = await asyncio.to_thread(self._take_saved_rows, space)
        if saved is None:
            return None
        synced, saved_at, shelves = saved
        last = (await clock.read(self._db, [space.id])).get(space.id)
        if last is None or last < synced or time.time() - saved_at > clock.TOMBSTONE_KEEP_S / 2:
            return None  # dropped, restored from an older backup, or stopped longer than tombstones are kept
        state = _SpaceState(space)
        state.shelves, state.synced = shelves, synced
        await self._follow(state)
        state.synced = last
        # What memory holds now must be the table's rows, label for label: their count and the sum of their
        # labels are read from the label index (13 ms at 200,000 rows).
        count, total = await clock.totals(self._db, space.id)
        if (count, total) != (sum(s.n for s in shelves.values()), sum(int(s.labels.sum()) for s in shelves.values())):
            log.warning("saved vector rows do not add up to the table; reading the table", extra={"space": space.id})
            return None
        await self._keywords.reconcile(space.id, await clock.texts(self._db, space.id))
        return state

    def _rows_path(self, space: Space) -> Path:
        return self._space_dir(space) / "rows.npz"

    def _save_rows(self, state: _SpaceState) -> None:
        """At close: every namespace's rows as arrays, with the label memory is synced to, for the next start."""
        about = {"synced": state.synced, "saved_at": time.time(), "namespaces": list(state.shelves)}
        arrays = {"about": np.frombuffer(json.dumps(about).encode(), dtype=np.uint8)}
        for k, shelf in enumerate(state.shelves.values()):
            arrays |= nested(str(k), shelf.saved())
        path = self._rows_path(state.space)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        try:
            with open(tmp, "wb", opener=lambda name, flags: os.open(name, flags, 0o600)) as file:  # as the database
                np.savez(file, **arrays)
            os.replace(tmp, path)
        except OSError:  # a full disk, say: the next start reads the table, as after a crash
            log.warning("vector rows not saved at close", extra={"space": state.space.id}, exc_info=True)
            tmp.unlink(missing_ok=True)

    def _take_saved_rows(self, space: Space) -> tuple[int, float, dict[str, _Shelf]] | None:
        """The rows close() saved (synced label, when, namespaces), read and removed: they describe the table
        as of that close only, and the next close saves them again."""
        path = self._rows_path(space)
        try:
            with np.load(path, allow_pickle=False) as saved:
                arrays = {name: saved[name] for name in saved.files}
            about = json.loads(arrays.pop("about").tobytes())
            shelves = {}
            for k, namespace in enumerate(about["namespaces"]):
                shelves[namespace] = _Shelf.restored(space, unnested(str(k), arrays))
            if any(shelf.matrix.shape[1] != space.dimension for shelf in shelves.values()):
                return None
            return int(about["synced"]), float(about["saved_at"]), shelves
        except FileNotFoundError:
            return None
        except Exception:  # a torn or foreign file: the table is the truth
            log.warning("saved vector rows unreadable; reading the table", extra={"space": space.id}, exc_info=True)
            return None
        finally:
            path.unlink(missing_ok=True)

    async def _read_rows(self, state: _SpaceState, after: int, sizes: dict[str, int] | None = None) -> Texts:
        """Put the rows written after label `after` into memory (those it holds already stay); returns
        their texts by namespace and id (None: the row has none), for the keyword index."""
        texts: Texts = {}
        while True:
            rows = await clock.rows_after(self._db, state.space.id, after)
            for namespace, held in self._put_rows(state, rows, sizes).items():
                texts.setdefault(namespace, {}).update(held)
            if rows:
                after = int(rows[-1]["label"])
            if len(rows) < clock.ROWS_PAGE:
                return texts

    @staticmethod
    def _put_rows(state: _SpaceState, rows: list[dict[str, Any]], sizes: dict[str, int] | None = None) -> Texts:
        by_namespace: dict[str, dict[str, dict[str, Any]]] = {}
        for row in rows:
            by_namespace.setdefault(row["namespace"], {})[row["id"]] = row  # the latest of an id wins
        texts: Texts = {}
        for namespace, latest in by_namespace.items():
            group = list(latest.values())
            held = state.shelves.get(namespace)
            if held is not None:  # rows memory holds already, at the same label, are left as they are
                slots = held.ids.slots(list(latest)).tolist()
                group = [row for row, slot in zip(group, slots) if slot < 0 or held.labels[slot] != row["label"]]
                if not group:
                    continue
            shelf = state.shelf(namespace, create=True, capacity=(sizes or {}).get(namespace, 16))
            raws = [row["metadata"].encode() if row["metadata"] else None for row in group]
            shelf.put_many(
                [row["id"] for row in group],
                np.frombuffer(b"".join(bytes(row["embedding"]) for row in group), dtype="<f4").reshape(len(group), -1),
                [orjson.loads(raw) if raw else None for raw in raws],
                raws,
                np.asarray([row["label"] for row in group], dtype=np.int64),
            )
            texts[namespace] = {row["id"]: row["text"] for row in group}
        return texts

    def _restore_snapshot(self, space: Space, namespace: str, shelf: _Shelf) -> int:
        """Take up a saved graph, marking which rows it holds; returns the highest label it ever held."""
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
            index = Graph.restore(str(index_path), meta.get("scale"))
        except Exception:  # a torn or foreign file: rebuild rather than fail the start
            log.warning("vector index snapshot unreadable; rebuilding", extra={"space": space.id})
            return max_label
        if index is None or index.ndim != space.dimension or meta.get("precision") != space.precision:
            return max_label
        held = index.keys
        shelf.in_graph[: shelf.n] = np.isin(shelf.labels, held)
        shelf.graphed = int(shelf.in_graph[: shelf.n].sum())
        shelf.dead = np.setdiff1d(held, shelf.labels).tolist()
        shelf.ann, shelf.state, shelf.ef = index, "ready", int(meta["ef"])
        shelf.recall, shelf.probed_at = meta.get("recall"), int(meta.get("probed_at", len(held)))
        return max(max_label, int(held.max()) if len(held) else 0)

    def _save_snapshot(self, space: Space, namespace: str, shelf: _Shelf) -> None:
        index_path, meta_path = self._snapshot_paths(space, namespace)
        index_path.parent.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {"namespace": namespace, "precision": space.precision}
        if shelf.ann is None or shelf.state != "ready":
            meta |= {"mode": "exact", "checked_at": shelf.exact_checked_at, "max_label": 0}
            index_path.unlink(missing_ok=True)
        else:
            tmp = index_path.with_suffix(".tmp")
            shelf.ann.save(str(tmp))
            os.replace(tmp, index_path)
            keys = shelf.ann.keys
            meta |= {
                "mode": "hnsw", "ef": shelf.ef, "recall": shelf.recall, "probed_at": shelf.probed_at,
                "scale": shelf.ann.scale,
                "max_label": int(keys.max()) if len(keys) else 0,
            }
        shelf.dirty = False
        tmp_meta = meta_path.with_suffix(".jsontmp")
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_meta, meta_path)

    # --- the graph -----------------------------------------------------------------------------------

    def _wants_graph(self, shelf: _Shelf) -> bool:
        if shelf.n <= self._exact_max:
            return False
        # Where no width reached the target, look again only once the data has doubled.
        return not (shelf.exact_checked_at and shelf.n < 2 * shelf.exact_checked_at)

    @staticmethod
    def _give_up_graph(shelf: _Shelf) -> None:
        shelf.ann, shelf.state, shelf.ef, shelf.graphed, shelf.partition = None, "exact", None, 0, None
        shelf.in_graph[:] = False
        shelf.dead = []
        shelf.exact_checked_at = shelf.n
        shelf.dirty = True

    def _keep_indexed(self, state: _SpaceState, namespace: str, shelf: _Shelf) -> None:
        """Start the namespace's graph task if there is work for it and none runs."""
        if shelf.builder is not None:
            return
        if shelf.ann is None and not self._wants_graph(shelf):
            return
        if shelf.ann is not None and shelf.graphed == shelf.n and not shelf.dead and not self._wants_partition(shelf):
            return
        if shelf.ann is None:  # "building" from now, while the task waits for the writes to pause too
            shelf.state, shelf.ef, shelf.recall, shelf.probed_at = "building", None, None, 0
        shelf.builder = self._track(self._grow_graph(state, namespace, shelf))

    def _track(self, work: Any) -> asyncio.Task:
        """A background task of this store's: close() cancels it, settle() waits for it."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)
        return task

    def _current(self, state: _SpaceState, namespace: str, shelf: _Shelf) -> bool:
        return self._spaces.get(state.space.id) is state and state.shelves.get(namespace) is shelf

    async def _on_graph_thread(self, work: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._graph_thread, work, *args)

    async def _in_thread(self, shelf: _Shelf, work: Any, *args: Any) -> Any:
        shelf.busy = True
        try:
            return await self._on_graph_thread(work, *args)
        finally:
            shelf.busy = False

    @staticmethod
    async def _writes_paused(shelf: _Shelf) -> None:
        started = time.monotonic()
        while time.monotonic() - started < WRITES_WAIT_MAX_S and time.monotonic() - shelf.written_at < WRITES_QUIET_S:
            await asyncio.sleep(0.1)

    async def _grow_graph(self, state: _SpaceState, namespace: str, shelf: _Shelf) -> None:
        space = state.space
        try:
            measured = False
            while self._current(state, namespace, shelf):
                await self._writes_paused(shelf)
                if not self._current(state, namespace, shelf):
                    break
                if shelf.ann is None:
                    if not self._wants_graph(shelf):  # deleted down to exact_max meanwhile
                        shelf.state = "exact"
                        break
                    shelf.ann = Graph.new(space.dimension, space.metric, space.precision, shelf.fit_sample())
                dead, shelf.dead = shelf.dead, []
                if dead:
                    await self._in_thread(shelf, shelf.ann.remove, np.asarray(dead, dtype=np.uint64))
                pending = np.flatnonzero(~shelf.in_graph[: shelf.n])
                if len(pending) == 0:
                    await self._keep_partition(shelf)  # for the filters, where the graph took the rows without one
                    await self._list_new_rows(shelf)
                    break
                # Measure on points held out of what this pass adds (they join the graph in the next pass):
                # at the first build, and again each time the namespace has grown by a quarter since.
                held_count = min(graph.PROBE_QUERIES, len(pending) // 4)
                grown = shelf.n >= graph.REPROBE_GROWTH * shelf.probed_at
                probing = (shelf.state == "building" or grown) and held_count >= 10
                held = np.random.default_rng(shelf.n).choice(pending, held_count, replace=False) if probing else pending[:0]
                await self._keep_partition(shelf)
                rest = np.setdiff1d(pending, held)
                if probing and shelf.state == "building" and len(rest) >= EARLY_PROBE_ROWS:
                    # A first build takes a quarter of its rows first, chosen at random (rows written in some
                    # order would be a biased quarter), and stops there if no width serves them: recall at a
                    # width only falls as a graph grows, so that quarter speaks for the whole. Uniform data at
                    # 100k built for 139 s only to be thrown away, every query meanwhile reading every row
                    # beside the build; a quarter of 25,000 rows answered no (0.936 at the widest).
                    quarter = np.random.default_rng(shelf.n + 1).choice(rest, len(rest) // 4, replace=False)
                    await self._add(shelf, np.sort(quarter))
                    if await self._tune(shelf, held) is None:
                        self._give_up_graph(shelf)
                        log.info("vector namespace stays exact: no search width reaches the recall target on a "
                                 "quarter of its rows", extra={"space": space.id, "size": shelf.n})
                        measured = True
                        continue
                await self._add(shelf, rest)  # what the quarter holds already is skipped
                if not probing:
                    continue
                if not await self._measure(shelf, held):
                    self._give_up_graph(shelf)
                    log.info("vector namespace stays exact: no search width reaches the recall target",
                             extra={"space": space.id, "size": shelf.n})
                measured = True
            if measured and self._current(state, namespace, shelf):
                await self._on_graph_thread(self._save_snapshot, space, namespace, shelf)
            if measured:  # a bulk pass (not each small one of a steady stream): what the load's requests freed
                await self._on_graph_thread(return_free_memory)
        finally:
            shelf.builder = None
        if self._current(state, namespace, shelf):
            self._keep_indexed(state, namespace, shelf)  # written to while the last pass ran

    async def _add(self, shelf: _Shelf, slots: np.ndarray) -> None:
        """Add these slots' rows to the graph, a chunk per thread hop; rows changed meanwhile stay out."""
        assert shelf.ann is not None
        for start in range(0, len(slots), graph.ADD_CHUNK):
            chunk = slots[start : start + graph.ADD_CHUNK]
            chunk = chunk[(chunk < shelf.n) & ~shelf.in_graph[chunk]]
            labels = shelf._labels[chunk].copy()
            rows = shelf.index_vectors(chunk)
            await self._keep_partition(shelf)  # a bulk load may have doubled the namespace since the pass began
            await self._in_thread(shelf, functools.partial(shelf.ann.add, labels, rows, threads=BUILD_THREADS))
            now = shelf.slot_by_label[labels]
            alive = now >= 0
            shelf.in_graph[now[alive]] = True
            shelf.graphed += int(alive.sum())
            shelf.dead += labels[~alive].tolist()
            shelf.dirty = True

    @staticmethod
    def _wants_partition(shelf: _Shelf) -> bool:
        for_building = shelf.n - shelf.graphed >= PARTITION_MIN_ROWS  # many rows the graph cannot answer for
        for_filters = shelf.ann is not None and shelf.n >= FILTER_PARTITION_MIN_ROWS
        if not (for_building or for_filters):
            return False
        if shelf.partition is not None:
            return shelf.n >= graph.REPROBE_GROWTH * shelf.partition_tried_at
        # Where none reached the target, look again only once the data has doubled.
        return not (shelf.partition_tried_at and shelf.n < 2 * shelf.partition_tried_at)

    async def _keep_partition(self, shelf: _Shelf) -> None:
        """Make the namespace's partition (partition.py) in the graph's thread, and measure it, when its
        graph has many rows to take in and the partition is missing or the namespace has grown by a quarter
        since it was made; keep it only if it reaches the recall target."""
        if not self._wants_partition(shelf):
            return
        n, labels, matrix = shelf.n, shelf.labels.copy(), shelf.matrix
        shelf.partition_tried_at = n

        def make() -> Partition | None:
            partition = Partition.make(matrix, shelf.metric, n, seed=n)
            # Measured as the graph is, on rows not among those searched: held-out rows count in no answer.
            held = np.random.default_rng(n).choice(n, min(graph.PROBE_QUERIES, n // 4), replace=False)
            counted = np.ones(n, dtype=bool)
            counted[held] = False
            probe = graph.Probe.held_out(shelf.index_vectors(held), functools.partial(shelf.block_scores, counted=counted),
                                         n, shelf.rows_by_slot, shelf.metric, n)
            truth = [shelf.slot_by_label[np.fromiter(labels_of, dtype=np.int64)] for labels_of in probe.truth]
            truth = [slots[(slots >= 0) & (slots < n)] for slots in truth]
            if not partition.tune(probe.queries, truth, self._recall_target, partition_module.MARGIN):
                return None
            # Filters of each rung's share, at random (nested: one draw a row), over the same queries.
            draw = np.random.default_rng(n + 1).random(n)
            passes = [counted & (draw < share) for share in partition_module.FILTER_LADDER]
            tops = graph.exact_top_each(functools.partial(shelf.block_scores, counted=counted), n, probe.queries,
                                        10, passes)
            truths = [[row[keep[row]] for row in top] for top, keep in zip(tops, passes)]
            partition.tune_filtered(probe.queries, truths, self._recall_target, partition_module.MARGIN)
            return partition

        partition = await self._on_graph_thread(make)
        if partition is not None:
            # Rows replaced or moved while it was made are read by every query until the next one.
            now = shelf.labels[:n]
            partition.unlist(np.flatnonzero(now != labels[: len(now)]))
            partition.unlist(np.arange(len(now), n))
            if len(partition.cells) < len(shelf.in_graph):
                partition.grow(len(shelf.in_graph))
        shelf.partition = partition
        if partition is None:
            log.info("vector partition reaches no recall target: queries the graph cannot answer stay exact",
                     extra={"size": n})
        else:
            shelf.filter_live.reset()
            log.info("vector partition made", extra={"size": n, "probes": partition.probes, "recall": partition.recall,
                                                     "filter_probes": partition.filtered})

    async def _list_new_rows(self, shelf: _Shelf) -> None:
        """Put the rows written since the partition was made in their nearest lists, once the graph has them
        all and they are a 32nd of the namespace or more (a pass over them against the centres: 2.5 s for
        200,000 rows and 1,000 lists, in process). Assigned in the graph's thread from the rows as they are;
        a row replaced or moved meanwhile stays unlisted."""
        partition = shelf.partition
        if partition is None or partition.unlisted_count(shelf.n) < shelf.n / 32:
            return
        n = shelf.n
        slots = partition.unlisted(n)
        if len(slots) < n / 32:
            return
        labels = shelf.labels[slots].copy()
        lists = await self._on_graph_thread(partition.nearest_of, shelf.matrix, slots)
        if shelf.partition is not partition:
            return
        same = (slots < shelf.n) & (partition.cells[slots] == partition_module.UNLISTED)
        same[same] = shelf.labels[slots[same]] == labels[same]
        partition.assign(slots[same], lists[same], shelf.n)

    async def _tune(self, shelf: _Shelf, held: np.ndarray) -> tuple[int, float] | None:
        """The narrowest width (and its recall) that reaches the target on these rows, held out of the graph."""
        assert shelf.ann is not None
        held_rows = shelf.index_vectors(held)

        def measure() -> tuple[int, float] | None:
            probe = graph.Probe.held_out(held_rows, shelf.graph_scores, shelf.n, shelf.rows_by_slot, shelf.metric, shelf.n)
            return graph.tune(probe, shelf.ann, shelf.overfetch, shelf.graph_rows, shelf.metric, self._recall_target)

        # The thread reads the matrix while the loop may write to it: a row changed in between shifts the
        # figure by a hundredth of a sample at most, and the live checks correct it.
        return await self._in_thread(shelf, measure)

    async def _measure(self, shelf: _Shelf, held: np.ndarray) -> bool:
        """Choose the width from queries held out of the graph; whether one reaches the target."""
        chosen = await self._tune(shelf, held)
        if chosen is None:
            return False
        shelf.ef, shelf.recall = chosen
        # The graph's size, not the namespace's: a bulk load goes on while a pass adds and measures, and
        # the 1M run measured a graph of about a third of its rows while recording 1,000,000, so the full
        # graph was never measured (0.9775 said, 0.900 found on held-out queries over HTTP).
        shelf.state, shelf.probed_at = "ready", shelf.graphed
        shelf.live.reset()
        return True

    def _check_live(self, state: _SpaceState, namespace: str, shelf: _Shelf, vector: np.ndarray,
                    answer: list[tuple[int, float]], mask: np.ndarray | None, through_lists: bool = False) -> None:
        """Check this answer against an exact search in a thread, now and then; widen the search (or give
        up the graph) when the rolling recall falls under the target (`mask`: the rows a filter passed). An
        answer read from the partition's lists (`through_lists`) counts in a window of its own, and where that
        falls under the target, filters stop using the lists until the partition is made again."""
        window = shelf.filter_live if through_lists else shelf.live
        partition = shelf.partition
        if not answer or not window.due():
            return
        got = {int(shelf._labels[slot]) for slot, _ in answer}
        k = len(answer)

        def exact() -> set[int]:
            # Not in parallel: a background check must not hold the scan threads a query may want.
            passing = None if mask is None else np.flatnonzero(mask)
            return {int(shelf._labels[slot]) for slot, _ in shelf.top(vector, k, passing, parallel=False)}

        async def check() -> None:
            window.checking = True
            try:
                truth = await asyncio.to_thread(exact)
            finally:
                window.checking = False
            if not self._current(state, namespace, shelf):
                return
            if through_lists:
                if shelf.partition is partition and partition is not None:
                    window.record(len(got & truth) / len(truth))
                    if window.failing(self._recall_target):
                        log.info("vector filters stop reading the partition's lists: live recall under target",
                                 extra={"space": state.space.id, "recall": window.mean()})
                        window.reset()
                        partition.filtered = {}
                return
            if shelf.state != "ready" or shelf.ef is None:
                return
            shelf.live.record(len(got & truth) / len(truth))
            if shelf.live.failing(self._recall_target):
                wider = graph.next_width(shelf.ef)
                log.info("vector search widened: live recall under target",
                         extra={"space": state.space.id, "recall": shelf.live.mean(), "ef": wider})
                shelf.live.reset()
                if wider is not None:
                    shelf.ef = wider
                    shelf.dirty = True
                else:
                    self._give_up_graph(shelf)

        self._track(check())

    async def mode(self, space: Space, namespace: str) -> str:
        """How a namespace is searched now: "exact", "building" (through the partition or exactly until the
        graph is measured) or "ready"."""
        shelf = (await self._state(space)).shelf(namespace)
        return shelf.state if shelf is not None else "exact"

    async def indexes(self, space: Space) -> dict[str, IndexStatus]:
        state = await self._state(space)
        return {ns: shelf.status() for ns, shelf in state.shelves.items() if shelf.n}

    def loaded_indexes(self) -> list[tuple[str, str, IndexStatus]]:
        """(space id, namespace, status) of what is in memory, for /metrics (read without awaiting)."""
        return [
            (space_id, ns, shelf.status())
            for space_id, state in self._spaces.items()
            for ns, shelf in state.shelves.items()
            if shelf.n
        ]

    async def settle(self) -> None:
        """Wait for graph work in flight (tests and the benchmark)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    # --- the interface -------------------------------------------------------------------------------

    async def create(self, space: Space) -> None:
        self._spaces[space.id] = _SpaceState(space)

    async def drop(self, space: Space) -> None:
        async with self._db.transaction(bulk=True) as tx:
            await tx.execute("DELETE FROM vectors WHERE collection_id = ?", space.id)
            await clock.forget(tx, space.id)
        await self.forget(space)

    async def forget(self, space: Space) -> None:
        """Let go of a space's memory and snapshot, not of its rows (another process dropped it)."""
        self._spaces.pop(space.id, None)
        self._loading.pop(space.id, None)
        await self._keywords.drop(space.id)
        await asyncio.to_thread(shutil.rmtree, self._space_dir(space), True)

    async def upsert(self, space: Space, namespace: str, records: list[Record]) -> int:
        state = await self._state(space)
        upsert = _Upsert(namespace, records)
        state.upserts.append(upsert)
        if state.writer is None:
            state.writer = self._track(self._write_upserts(state))
        # Shielded: a request that goes away does not take the others of its transaction with it.
        return await asyncio.shield(upsert.done)

    async def _write_upserts(self, state: _SpaceState) -> None:
        """The space's writer: the upserts that arrived while the last transaction ran go together in the
        next one (group commit). On PostgreSQL each transaction holds the collection's clock row until it
        commits, so one per request made single-vector upserts wait on one another's round trips."""
        try:
            while state.upserts:
                async with state.write_lock:
                    batch, state.upserts = state.upserts[:UPSERTS_PER_TRANSACTION], state.upserts[UPSERTS_PER_TRANSACTION:]
                    try:
                        indexing = await self._upsert_together(state, batch)
                    except Exception as exc:
                        for upsert in batch:
                            upsert.fail(exc)
                        continue
                self._track(self._answer(batch, indexing))  # its texts indexed while the next batch is in SQL
        except BaseException as exc:  # closed: nobody waits for ever
            for upsert in state.upserts:
                upsert.fail(exc)
            raise
        finally:
            state.writer = None

    @staticmethod
    async def _make_room(state: _SpaceState, rows: list[tuple[tuple[str, str], Any]]) -> None:
        """Grow the shelves these rows will fill before they go in, the large arrays in a thread (rows_grown):
        the caller holds the write lock, so nothing writes those arrays meanwhile."""
        ids: dict[str, list[str]] = {}
        for (namespace, record_id), _ in rows:
            ids.setdefault(namespace, []).append(record_id)
        for namespace, of_namespace in ids.items():
            shelf = state.shelf(namespace)
            if shelf is None:  # a new namespace is made at its first batch's size, in put_many
                continue
            size = shelf.room_for(int(np.count_nonzero(shelf.ids.slots(of_namespace) < 0)))
            if size is not None:
                shelf._grow(size, await asyncio.to_thread(shelf.rows_grown, size))

    @staticmethod
    async def _answer(batch: list[_Upsert], indexing: list[Any]) -> None:
        try:
            for pending in indexing:  # before answering: a query for the words finds the records
                await pending()
        except BaseException as exc:
            for upsert in batch:
                upsert.fail(exc)
            raise
        for upsert in batch:
            if not upsert.done.done():
                upsert.done.set_result(len(upsert.records))

    async def _upsert_together(self, state: _SpaceState, batch: list[_Upsert]) -> list[Any]:
        """Write these upserts in one transaction, then memory and the keyword index's turn; returns the
        indexing to await. An id written twice in the batch keeps its last values (the first is replaced in
        the same transaction, so nobody could have seen it)."""
        space = state.space
        total = sum(len(upsert.records) for upsert in batch)
        latest: dict[tuple[str, str], tuple[int, Record, bytes | None]] = {}
        offset = 0
        for upsert in batch:
            for i, (record, raw) in enumerate(zip(upsert.records, upsert.raws)):
                key = (upsert.namespace, record.id)
                latest.pop(key, None)  # re-inserted at the end: the dict keeps label order
                latest[key] = (offset + i, record, raw)
            offset += len(upsert.records)
        rows = list(latest.items())
        await self._make_room(state, rows)
        async with self._db.transaction(bulk=True) as tx:
            first = await clock.take(tx, space.id, total)
            for start in range(0, len(rows), ROWS_PER_STATEMENT):
                chunk = rows[start : start + ROWS_PER_STATEMENT]
                params: list[Any] = []
                for (namespace, record_id), (i, r, raw) in chunk:
                    params += (space.id, namespace, record_id, first + i, np.asarray(r.values, dtype="<f4").tobytes(),
                               raw.decode() if raw else None, r.text)
                await tx.execute(
                    "INSERT INTO vectors (collection_id, namespace, id, label, embedding, metadata, text)"
                    f" VALUES {', '.join(['(?, ?, ?, ?, ?, ?, ?)'] * len(chunk))} ON CONFLICT (collection_id, namespace, id)"
                    " DO UPDATE SET label = excluded.label, embedding = excluded.embedding, metadata = excluded.metadata,"
                    " text = excluded.text",
                    *params,
                )
        # Committed: now memory follows, with no await in between, so readers see all or nothing.
        state.advance(first, first + total - 1)
        by_namespace: dict[str, list[tuple[int, Record, bytes | None]]] = {}
        for (namespace, _), row in rows:
            by_namespace.setdefault(namespace, []).append(row)
        for namespace, held in by_namespace.items():
            shelf = state.shelf(namespace, create=True)
            shelf.put_many([r.id for _, r, _ in held], np.stack([r.values for _, r, _ in held]),
                           [r.metadata for _, r, _ in held], [raw for _, _, raw in held],
                           np.asarray([first + i for i, _, _ in held], dtype=np.int64))
            shelf.dirty = True
            self._keep_indexed(state, namespace, shelf)
        # The keyword index's turn, taken under the lock; a replaced record's old text goes out even when
        # the new one has none.
        indexing = []
        for namespace, held in by_namespace.items():
            pending = await self._keywords.enqueue(space.id, namespace, {r.id: r.text for _, r, _ in held})
            if pending is not None:
                indexing.append(pending)
        return indexing

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
            found = self._filtered(state, namespace, shelf, vector, top_k, shelf.columns.mask(filter, shelf.n))
        elif shelf.searchable():
            norm = l2_norm(vector)
            found = shelf.top(vector, top_k, shelf.candidates(vector, top_k * shelf.overfetch, norm, through_lists=True),
                              norm)
            self._check_live(state, namespace, shelf, vector, found, None)
        else:
            found = shelf.top(vector, top_k, shelf.rows_to_read(vector))
        return [
            Hit(
                id=shelf.ids[slot],
                score=shelf.score_for_caller(score),
                values=shelf.matrix[slot].copy() if include_values else None,
                metadata=shelf.metadata(slot) if include_metadata else None,
            )
            for slot, score in found
        ]

    def _filtered(self, state: _SpaceState, namespace: str, shelf: _Shelf, vector: np.ndarray, top_k: int,
                  mask: np.ndarray) -> list[tuple[int, float]]:
        # Counted, not listed: listing the passing rows (np.flatnonzero) cost 1.8-3.7 ms for a tenth of a million,
        # more than the lists' path then costs in all; the paths that need them list them.
        passing = int(np.count_nonzero(mask))
        if passing == 0:
            return []
        # Each path's work: passing rows scored exactly, all of them; rows read through the partition's lists (a
        # share of the listed ones, and every unlisted one); or the steps of a wider walk of the graph. What a
        # unit of each costs is measured on this namespace (costs.py).
        work = {"exact": float(passing)}
        lists = shelf.lists_for(passing)
        if lists is not None:
            assert shelf.partition is not None
            unlisted = shelf.partition.unlisted_count(shelf.n) / shelf.n
            work["lists"] = passing * (lists / len(shelf.partition.centres) + unlisted)
        count = graph.wide_count(top_k, shelf.overfetch, shelf.n, passing)
        if shelf.searchable() and count < shelf.n // 4:
            assert shelf.ef is not None
            work["graph"] = float(graph.candidate_count(count, shelf.ef))
        path = shelf.path_costs.cheapest(work)
        # Listed before the clock starts: a pass over every row's mask whatever the filter passes, which would
        # make the rows of a small filter look dear for a large one.
        passing_slots = np.flatnonzero(mask) if path == "exact" else None
        started = time.perf_counter()
        if path == "lists":
            assert shelf.partition is not None and lists is not None
            read = shelf.partition.passing_slots(vector, mask, passing, shelf.n, lists)
            if read is None or len(read) < top_k:
                return shelf.top(vector, top_k, np.flatnonzero(mask))
            found = shelf.top(vector, top_k, read)
        elif path == "exact":
            found = shelf.top(vector, top_k, passing_slots)
        else:
            norm = l2_norm(vector)
            slots = shelf.candidates(vector, count, norm)
            kept = slots[mask[slots]]
            if len(kept) < top_k:
                return shelf.top(vector, top_k, np.flatnonzero(mask), norm)
            found = shelf.top(vector, top_k, kept, norm)
        shelf.path_costs.record(path, work[path], time.perf_counter() - started)
        if path != "exact":
            self._check_live(state, namespace, shelf, vector, found, mask, through_lists=path == "lists")
        return found

    async def fetch(self, space: Space, namespace: str, ids: list[str]) -> dict[str, Record]:
        state = await self._state(space)
        shelf = state.shelf(namespace)
        if shelf is None:
            return {}
        found = {}
        for record_id, slot in zip(ids, shelf.ids.slots(ids).tolist()):
            if slot >= 0:
                found[record_id] = Record(record_id, shelf.matrix[slot].copy(), shelf.metadata(slot))
        for record_id, text in (await self.texts(space, namespace, list(found))).items():
            found[record_id].text = text
        return found

    async def texts(self, space: Space, namespace: str, ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await self._db.fetch_all(
                f"SELECT id, text FROM vectors WHERE collection_id = ? AND namespace = ? AND id IN ({marks(len(chunk))})"
                " AND text IS NOT NULL",
                space.id,
                namespace,
                *chunk,
            )
            found.update((row["id"], row["text"]) for row in rows)
        return found

    async def keyword_query(
        self, space: Space, namespace: str, text: str, top_k: int, filter: dict[str, Any] | None = None
    ) -> list[Hit]:
        state = await self._state(space)  # loaded: the keyword index is reconciled with the table
        if not filter:
            return self._keywords.top(space.id, namespace, text, top_k)

        async def passes(ids: list[str]) -> list[bool]:
            shelf = state.shelf(namespace)
            if shelf is None:
                return [False] * len(ids)
            mask = shelf.columns.mask(filter, shelf.n)
            return [slot >= 0 and bool(mask[slot]) for slot in shelf.ids.slots(ids).tolist()]

        return await self._keywords.search_where(space.id, namespace, text, top_k, passes)

    async def list_ids(
        self, space: Space, namespace: str, prefix: str | None, limit: int, cursor: str | None
    ) -> tuple[list[str], str | None]:
        state = await self._state(space)
        shelf = state.shelf(namespace)
        if shelf is None:
            return [], None
        order, id_of = shelf.ids_in_order(), shelf.ids.__getitem__
        start = bisect.bisect_right(order, cursors.decode(cursor), key=id_of) if cursor else 0
        if prefix:  # the ids with it are together in the order, from the first not below it
            start = max(start, bisect.bisect_left(order, prefix, key=id_of))
        page = [id_of(slot) for slot in order[start : start + limit + 1].tolist()]
        if prefix:
            page = list(itertools.takewhile(lambda i: i.startswith(prefix), page))
        more = len(page) > limit
        page = page[:limit]
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
                named = list(dict.fromkeys(ids))
                doomed = [i for i, slot in zip(named, shelf.ids.slots(named).tolist()) if slot >= 0]
            elif filter is not None:
                doomed = [shelf.ids[slot] for slot in np.flatnonzero(shelf.columns.mask(filter, shelf.n))]
            else:
                doomed = shelf.ids.all()
            if dry_run or not doomed:
                return Deleted(len(doomed), doomed)
            async with self._db.transaction(bulk=True) as tx:
                label = await clock.take(tx, space.id, 1)
                await clock.bury(tx, space.id, namespace, label, None if delete_all else doomed)
                if delete_all:
                    await tx.execute("DELETE FROM vectors WHERE collection_id = ? AND namespace = ?", space.id, namespace)
                else:
                    for start in range(0, len(doomed), 500):
                        chunk = doomed[start : start + 500]
                        await tx.execute(
                            f"DELETE FROM vectors WHERE collection_id = ? AND namespace = ? AND id IN ({marks(len(chunk))})",
                            space.id,
                            namespace,
                            *chunk,
                        )
            state.advance(label, label)
            emptied = self._take_out(state, namespace, shelf, doomed)
            await self._unindex_texts(space, namespace, doomed, emptied)  # before answering, under the write lock
            return Deleted(len(doomed), doomed)

    def _take_out(self, state: _SpaceState, namespace: str, shelf: _Shelf, doomed: list[str]) -> bool:
        """Remove these from memory; whether the namespace went whole (with its graph)."""
        if len(doomed) == shelf.n:
            del state.shelves[namespace]
            for path in self._snapshot_paths(state.space, namespace):
                path.unlink(missing_ok=True)
            return True
        if len(doomed) >= shelf.n // BULK_REMOVAL_SHARE:
            shelf.remove_many(doomed)
        else:
            for record_id in doomed:
                shelf.remove(record_id)
        shelf.dirty = True
        self._keep_indexed(state, namespace, shelf)  # the graph drops the removed labels
        return False

    async def _unindex_texts(self, space: Space, namespace: str, doomed: list[str], emptied: bool) -> None:
        if emptied:
            await self._keywords.clear(space.id, namespace)
        else:
            await self._keywords.write(space.id, namespace, dict.fromkeys(doomed))

    # --- following other replicas (clock.py) -------------------------------------------------------

    async def catch_up(self, space: Space) -> None:
        """Apply what other processes wrote to this space since memory last followed the table. A space
        not in memory has nothing to catch up: it loads whole at its first use."""
        state = self._spaces.get(space.id)
        if state is not None:
            await self._catch_up(state, (await clock.read(self._db, [space.id])).get(space.id))

    async def reconcile(self) -> None:
        """Catch every space in memory up with the table (one read of the clock for all of them)."""
        states = list(self._spaces.values())
        last = await clock.read(self._db, [state.space.id for state in states])
        for state in states:
            await self._catch_up(state, last.get(state.space.id))

    async def _catch_up(self, state: _SpaceState, last: int | None) -> None:
        space = state.space
        if last is None:
            if (state.synced or state.shelves) and self._spaces.get(space.id) is state:
                await self.forget(space)  # written to, and its clock is gone: dropped by another process
            return
        if last <= state.synced:
            state.synced_at = time.monotonic()
            return
        async with state.write_lock:
            if self._spaces.get(space.id) is not state or last <= state.synced:
                return
            if time.monotonic() - state.synced_at > clock.TOMBSTONE_KEEP_S / 2:
                # Tombstones it needs may be pruned: load it again at its next use instead.
                self._spaces.pop(space.id, None)
                return
            emptied, texts = await self._follow(state)
            # The keyword index follows the same changes, still under the write lock; the clock moves on only
            # then, so that a read that finds nothing left to catch up finds the keywords applied too.
            for namespace, (ids, whole) in emptied.items():
                await self._unindex_texts(space, namespace, ids, whole)
            for namespace, held in texts.items():
                await self._keywords.write(space.id, namespace, held)
            state.synced, state.synced_at = last, time.monotonic()

    async def _follow(self, state: _SpaceState) -> tuple[dict[str, tuple[list[str], bool]], Texts]:
        """Apply to memory what the table holds after label state.synced: the tombstones, then the rows.
        Returns what the keyword index has to follow: by namespace, the ids removed (and whether that emptied
        it), and the texts of the rows written."""
        space = state.space
        stones = await clock.tombstones_after(self._db, space.id, state.synced)
        rows: list[dict[str, Any]] = []
        while True:
            page = await clock.rows_after(self._db, space.id, int(rows[-1]["label"]) if rows else state.synced)
            rows += page
            if len(page) < clock.ROWS_PAGE:
                break
        # Read; now applied with no await in between, so a query sees the space before or after.
        doomed: dict[str, list[str]] = {}
        for stone in stones:
            shelf = state.shelves.get(stone.namespace)
            if shelf is None:
                continue
            if stone.id is None:  # the namespace emptied: what was written before it goes
                older = shelf.labels < stone.label
                doomed.setdefault(stone.namespace, []).extend(i for i, old in zip(shelf.ids.all(), older) if old)
            else:
                slot = shelf.ids.slot(stone.id)
                if slot is not None and shelf.labels[slot] < stone.label:
                    doomed.setdefault(stone.namespace, []).append(stone.id)
        emptied = {}
        for namespace, ids in doomed.items():
            ids = list(dict.fromkeys(ids))
            emptied[namespace] = (ids, self._take_out(state, namespace, state.shelves[namespace], ids))
        texts = self._put_rows(state, rows)
        for namespace in texts:
            shelf = state.shelves[namespace]
            shelf.dirty = True
            self._keep_indexed(state, namespace, shelf)
        return emptied, texts

    def memory(self) -> list[tuple[str, str, int, int]]:
        """(space id, namespace, vectors, bytes) of what this process holds in memory, for /metrics."""
        return [
            (space_id, ns, shelf.n, shelf.memory_bytes())
            for space_id, state in self._spaces.items()
            for ns, shelf in state.shelves.items()
            if shelf.n
        ]

    async def namespaces(self, space: Space) -> dict[str, int]:
        state = await self._state(space)
        return {ns: shelf.n for ns, shelf in state.shelves.items() if shelf.n}

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        await self._keywords.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for state in self._spaces.values():
            for namespace, shelf in state.shelves.items():
                if shelf.dirty:  # after any add still running: the graph's thread runs one thing at a time
                    await self._on_graph_thread(self._save_snapshot, state.space, namespace, shelf)
            if state.shelves:
                await self._on_graph_thread(self._save_rows, state)
        self._graph_thread.shutdown(wait=True)
