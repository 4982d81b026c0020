"""The HNSW graph over one namespace (usearch), and how its recall is measured: on queries it has never seen.

The graph only proposes candidates: each query asks it for `candidate_count` labels (at least
`overfetch × top_k`, and as many as the search width), which the caller re-ranks exactly from the
full-precision rows, so scores are always exact and the graph may hold compact copies (`precision`: f32,
f16, bf16 or i8). The coarser the copy, the more candidates it takes to keep the true neighbours among them, and
the more so the larger the graph: on the issue's mixture with i8 as usearch cast it, 100 candidates held 99%
of the true top 10 at 100,000 points and 79% at 1,000,000, at any width (32 to 128), while 400 held 96.5%
and 800 98.7% (the graph's own ranking is what the i8 copies blurred; its walk was not the limit). Hence the
i8 codes of `Graph`, and the width tuned below being also the number of candidates re-ranked: widening it
buys recall whatever limits it, walk or copies.

Recall is measured, never assumed:
- at build time, on points held out of the graph (they are added after the measurement) and on those points
  moved by half the distance to their nearest neighbour: a stored point is found far more easily than a
  query that is not in the graph, so a probe with stored points passes where real queries fail;
- in service, on a sample of live queries checked exactly in a background thread (`LiveRecall`).
The search width (ef) is the narrowest on the ladder whose measured recall reaches the target; where no width
reaches it, the namespace is searched exactly.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from daemon.stores.vectors import codes

# ONNX Runtime (the embedders' engine) must be loaded before usearch, or not in this process at all:
# usearch's extension links its own copy of libstdc++, whose unique locale symbols the loader binds for
# the whole process, and onnxruntime loaded after it crashes in its C++ initialisation (SIGSEGV,
# usearch 2.26 with onnxruntime 1.32; the other order is fine). This module is the one place that
# imports usearch, so the order holds wherever the daemon, a test or a benchmark loads the index.
try:
    import onnxruntime  # noqa: F401
except ImportError:  # an install without the text extras: nothing to order
    pass
from usearch.index import Index  # noqa: E402

# Candidates re-ranked per result, by precision (shared.models.vectors.Precision): the coarser, the more.
OVERFETCH = {"f32": 2, "f16": 3, "bf16": 3, "i8": 10}
# Widths a build tries in turn (and a live check widens by): from 48 on, each rung a quarter to a third above
# the last, since a query costs about its width. With 256 -> 384 the only step, the 1M i8 namespace of
# bench/vectors.py took 384 (3.1 ms at the median over HTTP) where a width between could have been enough.
EF_LADDER = (32, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 448, 512, 640, 768, 1024)
RECALL_TARGET = 0.95  # the promise to callers
PROBE_MARGIN = 0.01  # a width must measure this much above the target at build time: the sample is small
PROBE_QUERIES = 100  # held-out points, and as many moved ones
REPROBE_GROWTH = 1.25  # measure again once the namespace has grown by a quarter: recall at a width falls with size
LIVE_WINDOW = 200  # live checks in the rolling figure
LIVE_MIN = 30  # checks before the rolling figure may change the width
LIVE_INTERVAL_S = 1.0  # at most one live query checked per interval (an exact search costs a brute force)
ADD_CHUNK = 2_000  # rows added to the graph per thread hop, so state and cancellation stay responsive

# Labels (or row numbers) -> the labels, and rows as the graph holds them (of those still alive).
Lookup = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def candidate_count(wanted: int, ef: int) -> int:
    """Labels to ask the graph for (and to re-rank exactly): the whole search width, at least `wanted`
    (overfetch × top_k, more through a filter). usearch walks with max(width, count) anyway, so the wider
    answer costs the walk nothing; the re-ranking costs a dot product a candidate."""
    return max(wanted, ef)


class Graph:
    """usearch's index over one namespace, and how rows are coded for it.

    i8 copies are coded here, on a scale fitted to the namespace's values, not by usearch's own cast, which
    multiplies a float by 127 and truncates: unit vectors at 384 dimensions have components of about 0.05,
    which that cast leaves a dozen levels, and at a million points of the issue's mixture the graph's ranking
    then needed 400-512 candidates re-ranked to hold 95% of the true top 10. One scale for all rows (not
    one per row) keeps usearch's inner product and squared distance on the codes in the order of the
    floats', so the metric stays as fast as on its own casts. A graph saved before the scale existed
    (`scale` None) keeps usearch's cast, which its copies were made with."""

    def __init__(self, index: Index, scale: float | None) -> None:
        self.index = index
        self.scale = scale

    @staticmethod
    def new(dimension: int, metric: str, precision: str, sample: np.ndarray) -> Graph:
        """A graph for these metric and precision; `sample`: rows as the graph will hold them, which fit
        the i8 scale."""
        kind = "l2sq" if metric == "euclidean" else "ip"
        index = Index(ndim=dimension, metric=kind, dtype=precision, connectivity=16, expansion_add=128)
        return Graph(index, codes.fitted_scale(sample) if precision == "i8" else None)

    @staticmethod
    def restore(path: str, scale: float | None) -> Graph | None:
        index = Index.restore(path)
        return Graph(index, scale) if index is not None else None

    def code(self, rows: np.ndarray) -> np.ndarray:
        if self.scale is None:
            return rows
        return np.clip(np.rint(rows * np.float32(self.scale)), -127, 127).astype(np.int8)

    def add(self, labels: np.ndarray, rows: np.ndarray, threads: int) -> None:
        self.index.add(labels, self.code(rows), threads=threads)

    def search(self, query: np.ndarray, count: int) -> np.ndarray:
        """The labels of `count` candidates for one query (given as the graph holds rows), walking as wide."""
        self.index.expansion_search = count
        return np.asarray(self.index.search(self.code(query), count, threads=1).keys, dtype=np.int64)

    def remove(self, labels: np.ndarray) -> None:
        self.index.remove(labels)

    def save(self, path: str) -> None:
        self.index.save(path)

    @property
    def ndim(self) -> int:
        return self.index.ndim

    @property
    def size(self) -> int:
        return self.index.size

    @property
    def keys(self) -> np.ndarray:
        return np.asarray(self.index.keys, dtype=np.int64)

    @property
    def memory_usage(self) -> int:
        return int(self.index.memory_usage)


# Scores of some queries against rows [start, stop) of a namespace (higher is better), -inf where a row
# must not count (not in the graph).
BlockScores = Callable[[np.ndarray, int, int], np.ndarray]
BLOCK = 65_536


def exact_top(block_scores: BlockScores, n: int, queries: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k best for each query, in blocks so memory stays bounded at a million rows."""
    return exact_top_each(block_scores, n, queries, k, [None])[0]


def exact_top_each(
    block_scores: BlockScores, n: int, queries: np.ndarray, k: int, passes: list[np.ndarray | None]
) -> list[np.ndarray]:
    """exact_top among the rows each of `passes` (by row; None: all) lets through, each query scored once
    and each pass ranking only its own rows: a million-row partition's whole measurement (the held-out probe,
    then seven passes of halving shares, 200 queries) took 26 s with every pass ranking every row, 16 s so."""
    best = [np.empty((len(queries), 0), dtype=np.int64) for _ in passes]
    best_scores = [np.empty((len(queries), 0), dtype=np.float32) for _ in passes]
    for start in range(0, n, BLOCK):
        stop = min(n, start + BLOCK)
        block = block_scores(queries, start, stop).astype(np.float32)
        for i, keep in enumerate(passes):
            rows = np.arange(start, stop) if keep is None else start + np.flatnonzero(keep[start:stop])
            scores = np.concatenate([best_scores[i], block if keep is None else block[:, rows - start]], axis=1)
            rows = np.concatenate([best[i], np.broadcast_to(rows, (len(queries), len(rows)))], axis=1)
            if scores.shape[1] == 0:
                continue
            top = np.argpartition(-scores, min(k, scores.shape[1]) - 1, axis=1)[:, : min(k, scores.shape[1])]
            best_scores[i] = np.take_along_axis(scores, top, axis=1)
            best[i] = np.take_along_axis(rows, top, axis=1)
    return best


@dataclass
class Probe:
    """Queries not in the graph, with their exact answers among the graph's rows (as labels)."""

    queries: np.ndarray
    truth: list[set[int]]

    @staticmethod
    def held_out(held: np.ndarray, block_scores: BlockScores, n: int, rows: Lookup, metric: str, seed: int) -> Probe:
        """`held`: points (as the graph holds them) not added to it; `block_scores` over the n rows of the
        namespace, counting only those in the graph; `rows` gives labels and rows by row number."""
        nearest = exact_top(block_scores, n, held, 10)
        labels, first = rows(nearest[:, 0])
        # Moved points: each held-out point shifted by half the distance to its nearest stored neighbour,
        # in a random direction: near the data, yet equal to nothing in it.
        gaps = np.linalg.norm(held - first, axis=1)
        directions = np.random.default_rng(seed).normal(size=held.shape).astype(np.float32)
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        moved = (held + directions * (0.5 * gaps)[:, None]).astype(np.float32)
        if metric == "cosine":
            moved /= np.linalg.norm(moved, axis=1, keepdims=True)
        truth = np.concatenate([nearest, exact_top(block_scores, n, moved, 10)])
        return Probe(np.concatenate([held, moved]), [set(rows(t)[0].tolist()) for t in truth])

    def recall(self, index: Graph, ef: int, overfetch: int, lookup: Lookup, metric: str) -> float:
        """recall@10 of the query path: candidates from the graph, re-ranked exactly."""
        count = candidate_count(10 * overfetch, ef)
        found = 0
        for query, truth in zip(self.queries, self.truth):
            candidates, vectors = lookup(index.search(query, count))
            if len(candidates) == 0:
                continue
            scores = vectors @ query
            if metric == "euclidean":
                scores = 2.0 * scores - np.einsum("ij,ij->i", vectors, vectors)
            found += len(truth.intersection(candidates[np.argsort(-scores)[:10]].tolist()))
        return found / (10 * len(self.truth))


def tune(
    probe: Probe, index: Graph, overfetch: int, lookup: Lookup, metric: str, target: float = RECALL_TARGET
) -> tuple[int, float] | None:
    """The narrowest width that reaches the target (with its measured recall), or None."""
    for ef in EF_LADDER:
        recall = probe.recall(index, ef, overfetch, lookup, metric)
        if recall >= target + PROBE_MARGIN:
            return ef, recall
    return None


class LiveRecall:
    """recall@k of live queries, checked exactly now and then, over a rolling window."""

    def __init__(self) -> None:
        self.window: collections.deque[float] = collections.deque(maxlen=LIVE_WINDOW)
        self.last = 0.0
        self.checking = False

    def due(self) -> bool:
        now = time.monotonic()
        if self.checking or now - self.last < LIVE_INTERVAL_S:
            return False
        self.last = now
        return True

    def record(self, recall: float) -> None:
        self.window.append(recall)

    def mean(self) -> float | None:
        return float(np.mean(self.window)) if self.window else None

    def failing(self, target: float = RECALL_TARGET) -> bool:
        return len(self.window) >= LIVE_MIN and (self.mean() or 0.0) < target

    def reset(self) -> None:
        self.window.clear()


def next_width(ef: int) -> int | None:
    wider = [w for w in EF_LADDER if w > ef]
    return wider[0] if wider else None


def wide_count(top_k: int, overfetch: int, n: int, passing: int) -> int:
    """Candidates to ask a graph for so that about top_k × overfetch of them pass a filter that `passing`
    of `n` rows pass (with half as many again for luck)."""
    return math.ceil(top_k * overfetch * n / max(passing, 1) * 1.5) + 10
