"""A coarse partition of a namespace's rows into lists around k-means centres (an IVF index), for the queries
the graph cannot answer: while it is first built, and while a thread adds to it (usearch makes a search wait
for an add). Without it those queries read every row, which over HTTP is slower than numpy's brute force in
the client (1.06x at 1M, 1.26x at 100k, issue 16).

A query scores the centres, then scores exactly the rows of its `probes` nearest lists and those written
since the partition was made: it reads a share of the matrix, and its scores are exact. It is made in
seconds where the graph takes minutes (k-means on a sample, then one pass of the rows against the centres),
holds 4 bytes a row, and is used only where its recall, measured like the graph's on queries that are not
among the rows, reaches the target while reading at most MAX_SHARE of them. Data with no structure (uniform
noise) has none to find, and stays exact.

It also serves filtered queries once the graph is built: a filter that passes a share s of the rows has its
k nearest passing rows about as deep as the k/s nearest of all, which a graph reaches only by walking k/s
times as wide, while the partition reads just the passing rows of its nearest lists. How many lists that
takes is measured like the rest, per rung of FILTER_LADDER, on random filters of that share over the same
held-out queries (`tune_filtered`); a query uses the rung at or under its filter's share (a smaller share
needs more lists), and falls back to an exact search where its lists hold far fewer passing rows than the
share promises (a filter whose rows lie away from the query's).

Slots are the shelf's: a removal moves the last slot's list into the hole.
"""

from __future__ import annotations

import math

import numpy as np

from daemon.stores.vectors.arena import close_up, grown

SAMPLE_PER_LIST = 32  # rows k-means is trained on, per list
ROUNDS = 8  # of k-means
# Lists to read, tried in turn; the first whose measured recall reaches the target is kept.
PROBE_LADDER = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
# Rows gathered by slot cost 2-3x rows read in order (local.py, GATHER_ROWS), so a partition must read
# well under half of them to beat the brute force it stands in for.
MAX_SHARE = 0.2
# Measured recall must clear the target by this much (the graph's margin is 0.01): at a million rows of the
# issue's mixture, lists chosen at 0.96 or more on the 200 probe queries answered the benchmark's held-out
# queries at 0.943 during the build. Reading more lists costs little: 15 ms there against 75 for the brute force.
MARGIN = 0.03
# Shares of the rows a filter passes, each measured on a random filter of that share (nested: one random
# number a row, a row passing the rungs above that number). Under the last, the passing rows are few enough
# to score them all: 7,800 at a million.
FILTER_LADDER = (1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128)
# A filtered query may read up to this share of the lists: it stands in for scoring every passing row.
FILTER_MAX_SHARE = 0.5
# A filtered query whose lists hold under this share of the passing rows the filter's share promises falls
# back to an exact search: its passing rows lie elsewhere, where the measured rungs say nothing.
FILTER_FOUND_MIN = 0.5
UNLISTED = -1  # a row written since the partition was made: every query reads it
BLOCK = 16_384  # rows scored against the centres at once


def distinct(slots: np.ndarray) -> np.ndarray:
    """np.unique by sorting: numpy 2.4's np.unique hashes, which for these slot arrays cost 15-40x as much
    (0.30 against 0.01 ms for 500 slots, 23 against 1.4 ms for 100,000), on every query through the lists."""
    ordered = np.sort(slots)
    keep = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def list_count(n: int) -> int:
    """sqrt(n) lists (316 at 100,000; 1,000 at a million): a list and the centres cost about as much to read."""
    return max(2, math.isqrt(n))


def _centre_terms(centres: np.ndarray, metric: str) -> np.ndarray | None:
    return -np.einsum("ij,ij->i", centres, centres) if metric == "euclidean" else None


def _nearness(rows: np.ndarray, centres: np.ndarray, terms: np.ndarray | None) -> np.ndarray:
    """Of each row to each centre, higher is nearer: the inner product, or for euclidean 2 r.c - |c|^2
    (whose argmax is the argmin of |r - c|^2)."""
    scores = rows @ centres.T
    if terms is not None:
        scores *= 2.0
        scores += terms
    return scores


class Partition:
    """`cells` holds each slot's list (UNLISTED: read by every query). A query finds the slots of its lists
    through `order` (the slots sorted by list, as of the last indexing) rather than by reading every slot's
    cell, which at a million rows cost more than the rows it then scored (1-4 ms). A slot whose cell changed
    since (moved, unlisted) is noted as loose, and so is every slot from `tail` on (rows written since); a
    query checks those by their cell as it is now, and a listed slot by whether its cell is still its list."""

    def __init__(self, centres: np.ndarray, cells: np.ndarray, metric: str, n: int = 0) -> None:
        self.centres = centres
        self.cells = cells
        self.metric = metric
        self._terms = _centre_terms(centres, metric)
        self.probes: int | None = None
        self.recall: float | None = None
        self.filtered: dict[float, int] = {}  # share a filter passes (a rung) -> lists its queries read
        self._index(n)

    def _index(self, n: int) -> None:
        """Sort the first n slots by list: `order`, with each list's run from starts[list + 1] (UNLISTED
        first), and the rows of each list, `sizes`."""
        listed = self.cells[:n]
        self.order = np.argsort(listed, kind="stable").astype(np.int32)
        counts = np.bincount(listed + 1, minlength=len(self.centres) + 1)
        self.starts = np.concatenate([[0], np.cumsum(counts)])
        self.sizes = counts[1:]
        self._loose = self.order[: self.starts[1]].astype(np.int64)  # unlisted when indexed
        self._distinct = len(self._loose)
        self._loosened: list[int] = []  # slots whose cell changed since
        self.tail = n

    @staticmethod
    def make(matrix: np.ndarray, metric: str, capacity: int, seed: int) -> Partition:
        """k-means over a sample of these rows (as stored: cosine needs no normalising, since a row's length
        does not change which centre it is nearest in angle), then every row put in its nearest list."""
        n = len(matrix)
        lists = list_count(n)
        rng = np.random.default_rng(seed)
        sample = matrix[np.sort(rng.choice(n, min(n, SAMPLE_PER_LIST * lists), replace=False))]
        if metric == "cosine":
            sample = sample / np.maximum(np.linalg.norm(sample, axis=1, keepdims=True), 1e-30)
        centres = sample[rng.choice(len(sample), lists, replace=False)].copy()
        for _ in range(ROUNDS):
            assigned = np.argmax(_nearness(sample, centres, _centre_terms(centres, metric)), axis=1)
            counts = np.bincount(assigned, minlength=lists)
            order = np.argsort(assigned, kind="stable")
            filled = counts > 0
            starts = np.searchsorted(assigned[order], np.flatnonzero(filled))
            centres[filled] = np.add.reduceat(sample[order], starts, axis=0) / counts[filled, None]
            if metric == "cosine":
                centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-30)
        cells = np.full(max(capacity, n), UNLISTED, dtype=np.int32)
        partition = Partition(centres, cells, metric)
        cells[:n] = partition.nearest_of(matrix[:n])
        partition._index(n)
        return partition

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return _nearness(rows, self.centres, self._terms)

    def nearest(self, rows: np.ndarray) -> np.ndarray:
        return np.argmax(self._scores(rows), axis=1).astype(np.int32)

    def nearest_of(self, matrix: np.ndarray, slots: np.ndarray | None = None) -> np.ndarray:
        """The nearest list of each of these slots' rows (None: of every row of `matrix`, read in place, not
        gathered), BLOCK rows at a time (their scores against every centre at once would take a million rows
        × 1,000 lists × 4 bytes)."""
        count = len(matrix) if slots is None else len(slots)
        return np.concatenate([
            self.nearest(matrix[start : start + BLOCK] if slots is None else matrix[slots[start : start + BLOCK]])
            for start in range(0, count, BLOCK)
        ] or [np.empty(0, dtype=np.int32)])

    def _ranks(self, queries: np.ndarray, truth_slots: list[np.ndarray]) -> np.ndarray:
        """For each true neighbour of each query, the rank of its list among the query's nearest."""
        lists = len(self.centres)
        rank = np.empty((len(queries), lists), dtype=np.int32)
        np.put_along_axis(rank, np.argsort(-self._scores(queries), axis=1), np.arange(lists, dtype=np.int32), axis=1)
        return np.concatenate([
            rank[q, self.cells[slots]] if len(slots) else np.empty(0, dtype=np.int32)
            for q, slots in enumerate(truth_slots)
        ] or [np.empty(0, dtype=np.int32)])

    def _fewest(self, ranks: np.ndarray, goal: float, max_share: float) -> tuple[int, float] | None:
        """The fewest lists on the ladder (up to max_share of them) whose reading finds `goal` of the neighbours
        with these ranks. A query finds a true neighbour exactly when it reads its list (the rows read are
        scored exactly), so one ranking of the centres per query measures every rung."""
        lists = len(self.centres)
        for probes in PROBE_LADDER:
            if probes > max_share * lists:
                break
            recall = float(np.mean(ranks < probes))
            if recall >= goal:
                return probes, recall
        return None

    def tune(self, queries: np.ndarray, truth_slots: list[np.ndarray], target: float, margin: float) -> bool:
        """Keep the fewest lists to read whose recall@k on these queries (not among the rows; `truth_slots`:
        each one's true neighbours) reaches target + margin. False where no rung within MAX_SHARE does."""
        ranks = self._ranks(queries, truth_slots)
        chosen = self._fewest(ranks, target + margin, MAX_SHARE) if len(ranks) else None
        if chosen is None:
            return False
        self.probes, self.recall = chosen
        return True

    def tune_filtered(self, queries: np.ndarray, truths: list[list[np.ndarray]], target: float, margin: float) -> None:
        """Lists a filtered query reads, per rung of FILTER_LADDER: `truths[r]` holds each query's true
        neighbours among the rows of a random filter of that rung's share. A rung no count reaches is left out."""
        self.filtered = {}
        for share, truth_slots in zip(FILTER_LADDER, truths):
            ranks = self._ranks(queries, truth_slots)
            chosen = self._fewest(ranks, target + margin, FILTER_MAX_SHARE) if len(ranks) else None
            if chosen is not None:
                self.filtered[share] = chosen[0]

    def probes_for(self, share: float) -> int | None:
        """Lists a filter passing this share of the rows reads: those measured at the largest rung at or
        under the share, None where that rung reached no count, or the share is under every rung."""
        at_or_under = [rung for rung in FILTER_LADDER if rung <= share]
        return self.filtered.get(at_or_under[0]) if at_or_under else None

    def _read(self, query: np.ndarray, probes: int) -> np.ndarray:
        """By list (and UNLISTED, last), whether a query reading `probes` lists reads it."""
        scores = self._scores(query[None, :])[0]
        read = np.zeros(len(self.centres) + 1, dtype=bool)
        read[np.argpartition(-scores, probes - 1)[:probes]] = True
        read[UNLISTED] = True
        return read

    def _loose_slots(self, n: int) -> np.ndarray:
        """Slots (of the first n) whose cell may not be what `order` says: checked by their cell as it is now.
        A slot loosened again is listed again; the repeats are dropped once they could make up half the list
        (sorting the whole list at each query after a write cost more than the query at a million rows)."""
        if self._loosened:
            self._take_loosened()
            if len(self._loose) > 2 * self._distinct:
                self._drop_repeats()
        loose = self._loose[self._loose < n]
        return np.concatenate([loose, np.arange(self.tail, n)]) if n > self.tail else loose

    def _take_loosened(self) -> None:
        self._loose = np.concatenate([self._loose, np.asarray(self._loosened, dtype=np.int64)])
        self._loosened = []

    def _drop_repeats(self) -> None:
        if self._loosened:
            self._take_loosened()
        self._loose = distinct(self._loose)
        self._distinct = len(self._loose)

    def _slots_read(self, read: np.ndarray, n: int) -> np.ndarray:
        """The slots (of the first n, ascending) of the lists `read` marks, and those in no list."""
        chosen = np.flatnonzero(read[:-1])
        runs = [self.order[self.starts[c + 1] : self.starts[c + 2]] for c in chosen.tolist()]
        members = np.concatenate(runs).astype(np.int64) if runs else np.empty(0, dtype=np.int64)
        of = np.repeat(chosen, [len(run) for run in runs]) if runs else np.empty(0, dtype=np.int64)
        members = members[(members < n) & (self.cells[members] == of)]
        loose = self._loose_slots(n)
        loose = loose[read[self.cells[loose]]]  # cell -1 (UNLISTED) reads read[-1]: always read
        return distinct(np.concatenate([members, loose]))

    def slots(self, query: np.ndarray, n: int) -> np.ndarray:
        """The slots a query reads: those of its nearest lists, and those not in any list yet."""
        assert self.probes is not None
        return self._slots_read(self._read(query, self.probes), n)

    def passing_slots(self, query: np.ndarray, mask: np.ndarray, passing: int, n: int, probes: int) -> np.ndarray | None:
        """Of the slots `mask` passes (`passing` of n), those a filtered query reads in its `probes` nearest
        lists (and those in no list); None where the lists hold under FILTER_FOUND_MIN of the passing rows
        expected of them at the filter's share (their sizes as last indexed)."""
        read = self._read(query, probes)
        slots = self._slots_read(read, n)
        found = slots[mask[slots]]
        expected = passing / n * float(self.sizes[read[:-1]].sum())
        # Less the count's own spread (about its square root), so that a few rows short of a small expectation
        # is not taken for a filter whose rows lie elsewhere.
        return found if len(found) >= FILTER_FOUND_MIN * expected - 2 * math.sqrt(expected) else None

    def unlisted(self, n: int) -> np.ndarray:
        loose = self._loose_slots(n)
        return distinct(loose[self.cells[loose] == UNLISTED])

    def unlisted_count(self, n: int) -> int:
        """At most this many of the first n slots are unlisted (without reading their cells)."""
        return len(self._loose) + len(self._loosened) + max(0, n - self.tail)

    def assign(self, slots: np.ndarray, lists: np.ndarray, n: int) -> None:
        """List these (unlisted) slots' rows in the lists given (`nearest` of their rows), as if made with
        them: the centres and the lists measured stay, which the next making (at a quarter's growth) measures
        again. Rows written since the partition was made are otherwise read by every query: a million-row
        namespace loaded in bulk kept its last partition from 800,000 rows or so, and a 10% filter read its
        passing rows among the 200,000 unlisted. Sorting the slots again holds the caller 0.11 s at a million
        rows, once a bulk load."""
        self.cells[slots] = lists
        self._index(n)

    def covers(self, n: int) -> bool:
        """Whether a namespace of n rows has few enough unlisted ones (read by every query) to search it here."""
        if self.unlisted_count(n) > MAX_SHARE * n and (self._loosened or len(self._loose) > self._distinct):
            self._drop_repeats()  # a slot loosened twice is counted once
        return self.unlisted_count(n) <= MAX_SHARE * n

    # Kept in step with the shelf's slots.

    def grow(self, capacity: int) -> None:
        self.cells = grown(self.cells, capacity, fill=UNLISTED)

    def unlist(self, slots: np.ndarray | int) -> None:
        self.cells[slots] = UNLISTED
        self._loosened += np.atleast_1d(slots).tolist()

    def move(self, slot: int, last: int) -> None:
        self.cells[slot], self.cells[last] = self.cells[last], UNLISTED
        self._loosened += [slot, last]  # `last` too: a row written there later is in no list

    def keep(self, kept: np.ndarray, n: int) -> None:
        close_up(self.cells, kept, n, fill=UNLISTED)
        self._index(len(kept))

    def saved(self, n: int) -> dict[str, np.ndarray]:
        rungs = sorted(self.filtered)
        return {"centres": self.centres, "cells": self.cells[:n], "probes": np.asarray(self.probes),
                "recall": np.asarray(self.recall, dtype=np.float64), "rungs": np.asarray(rungs, dtype=np.float64),
                "rung_probes": np.asarray([self.filtered[r] for r in rungs], dtype=np.int64)}

    @staticmethod
    def restored(arrays: dict[str, np.ndarray], metric: str, capacity: int) -> Partition:
        cells = arrays["cells"]
        partition = Partition(arrays["centres"], grown(cells, max(capacity, len(cells)), fill=UNLISTED), metric, len(cells))
        partition.probes = int(arrays["probes"])
        partition.recall = float(arrays["recall"])
        partition.filtered = {float(r): int(p) for r, p in zip(arrays["rungs"], arrays["rung_probes"])}
        return partition

    @property
    def nbytes(self) -> int:
        return self.cells.nbytes + self.centres.nbytes + self.order.nbytes + self._loose.nbytes
