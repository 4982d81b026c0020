"""The coarse partition searched while a graph cannot answer (daemon/stores/vectors/partition.py): its recall
on queries that are not among the rows, the data it refuses, and its lists kept in step with the slots."""

from __future__ import annotations

import numpy as np
import pytest

from daemon.stores.vectors import partition as partition_module
from daemon.stores.vectors.partition import MAX_SHARE, UNLISTED, Partition


def mixture(seed: int, n: int, dim: int = 64, clusters: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(clusters, dim))  # the same clusters for every seed
    return (centres[rng.integers(clusters, size=n)] + 0.35 * rng.normal(size=(n, dim))).astype(np.float32)


def true_top(rows: np.ndarray, queries: np.ndarray, metric: str, k: int = 10) -> np.ndarray:
    x, q = rows.astype(np.float64), queries.astype(np.float64)
    if metric == "cosine":
        scores = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (x / np.linalg.norm(x, axis=1, keepdims=True)).T
    elif metric == "dot":
        scores = q @ x.T
    else:
        scores = -(np.einsum("ij,ij->i", q, q)[:, None] - 2 * q @ x.T + np.einsum("ij,ij->i", x, x)[None, :])
    return np.argsort(-scores, axis=1)[:, :k]


def searched(partition: Partition, rows: np.ndarray, query: np.ndarray, metric: str, k: int = 10) -> list[int]:
    """What a query over the partition's rows finds: its slots scored exactly."""
    slots = partition.slots(query, len(rows))
    return slots[true_top(rows[slots], query[None, :], metric, k)[0]].tolist()


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dot"])
def test_a_partition_tuned_on_some_unseen_queries_keeps_its_recall_on_others(metric):
    rows = mixture(1, 20_000)
    tuning, checking = mixture(2, 100), mixture(3, 100)  # drawn like the rows, none of them stored
    partition = Partition.make(rows, metric, len(rows), seed=1)
    assert partition.tune(tuning, list(true_top(rows, tuning, metric)), target=0.95, margin=0.01)
    assert partition.probes is not None and partition.probes <= MAX_SHARE * len(partition.centres)
    truth = true_top(rows, checking, metric)
    found = np.mean([len(set(searched(partition, rows, q, metric)) & set(t)) / 10 for q, t in zip(checking, truth)])
    assert found >= 0.95, found
    assert len(partition.slots(checking[0], len(rows))) < MAX_SHARE * len(rows)  # it reads a share, not all


def test_data_with_no_structure_is_refused():
    """Uniform noise has no lists worth reading alone: every rung within MAX_SHARE misses the target."""
    rng = np.random.default_rng(4)
    rows = rng.uniform(-1, 1, size=(20_000, 128)).astype(np.float32)
    queries = rng.uniform(-1, 1, size=(100, 128)).astype(np.float32)
    partition = Partition.make(rows, "cosine", len(rows), seed=4)
    assert not partition.tune(queries, list(true_top(rows, queries, "cosine")), target=0.95, margin=0.01)
    assert partition.probes is None


def test_its_recall_is_what_reading_the_lists_finds(monkeypatch):
    """tune() counts a neighbour found when its list is read: checked against searching for real at each rung."""
    rows = mixture(5, 5_000, clusters=80)
    queries = mixture(6, 60, clusters=80) + np.random.default_rng(6).normal(size=(60, 64)).astype(np.float32)
    truth = true_top(rows, queries, "cosine")
    partition = Partition.make(rows, "cosine", len(rows), seed=5)
    for probes in (1, 2, 4, 8):
        monkeypatch.setattr(partition_module, "PROBE_LADDER", (probes,))
        monkeypatch.setattr(partition_module, "MAX_SHARE", 1.0)
        assert partition.tune(queries, list(truth), target=0.0, margin=0.0) and partition.probes == probes
        real = np.mean([len(set(searched(partition, rows, q, "cosine")) & set(t)) / 10 for q, t in zip(queries, truth)])
        assert partition.recall == pytest.approx(real), probes


def test_rows_written_since_are_read_by_every_query_and_moves_follow_the_slots():
    rows = mixture(7, 2_000)
    partition = Partition.make(rows, "cosine", len(rows), seed=7)
    partition.probes = 1
    query = rows[0]
    first = set(partition.slots(query, len(rows)).tolist())
    far = [s for s in range(len(rows)) if s not in first][:3]
    partition.unlist(np.asarray(far[:2]))  # replaced: its new value may belong anywhere
    assert set(far[:2]) <= set(partition.slots(query, len(rows)).tolist())
    partition.grow(3_000)  # room for new rows, unlisted
    assert (partition.cells[2_000:] == UNLISTED).all()
    assert set(range(2_000, 2_010)) <= set(partition.slots(query, 2_010).tolist())
    last = len(rows) - 1
    listed_last = int(partition.cells[last])
    partition.move(far[2], last)  # the last row moves into a removed row's slot, its list with it
    assert partition.cells[far[2]] == listed_last and partition.cells[last] == UNLISTED
    assert partition.covers(len(rows)) and not partition.covers(int(len(rows) / (1 - MAX_SHARE)) + 10)


def passes(slots: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """A filter's mask over n rows passing these slots, and their count: what passing_slots takes."""
    mask = np.zeros(n, dtype=bool)
    mask[slots] = True
    return mask, len(slots)


def filtered_truths(rows: np.ndarray, queries: np.ndarray, draw: np.ndarray) -> list[list[np.ndarray]]:
    """Each query's true neighbours among the rows of a random filter of each rung's share (nested draws)."""
    truths = []
    for share in partition_module.FILTER_LADDER:
        passing = np.flatnonzero(draw < share)
        truths.append(list(passing[true_top(rows[passing], queries, "cosine")]))
    return truths


def tuned_for_filters(seed: int) -> tuple[Partition, np.ndarray]:
    rows = mixture(seed, 20_000)
    tuning = mixture(seed + 1, 100)
    partition = Partition.make(rows, "cosine", len(rows), seed=seed)
    assert partition.tune(tuning, list(true_top(rows, tuning, "cosine")), target=0.95, margin=0.01)
    partition.tune_filtered(tuning, filtered_truths(rows, tuning, np.random.default_rng(seed).random(len(rows))),
                            target=0.95, margin=0.01)
    return partition, rows


def test_a_filter_reads_its_passing_rows_in_the_lists_measured_for_its_share_and_keeps_its_recall():
    """Lists per share are measured on random filters over some unseen queries; a filter the measurement never
    saw (a metadata value, a tenth of the rows) reads the lists of the rung at or under its share, a fraction
    of its passing rows, and finds the true neighbours among them for other unseen queries."""
    partition, rows = tuned_for_filters(11)
    assert set(partition.filtered) <= set(partition_module.FILTER_LADDER) and partition.filtered
    passing = np.flatnonzero(np.random.default_rng(14).integers(10, size=len(rows)) == 3)
    probes = partition.probes_for(len(passing) / len(rows))
    assert probes == partition.filtered[1 / 16]  # 10% lies between the rungs of 1/8 and 1/16
    found, read_counts = [], []
    for query in mixture(13, 100):
        read = partition.passing_slots(query, *passes(passing, len(rows)), len(rows), probes)
        assert read is not None and set(read.tolist()) <= set(passing.tolist())
        read_counts.append(len(read))
        top = read[true_top(rows[read], query[None, :], "cosine")[0]]
        truth = passing[true_top(rows[passing], query[None, :], "cosine")[0]]
        found.append(len(set(top.tolist()) & set(truth.tolist())) / 10)
    assert np.mean(found) >= 0.95, np.mean(found)
    assert np.mean(read_counts) < len(passing) / 4


def test_the_rung_at_or_under_a_share_decides_and_a_share_under_every_rung_reads_every_passing_row():
    partition = Partition(np.eye(4, dtype=np.float32), np.zeros(8, dtype=np.int32), "cosine")
    partition.filtered = {1 / 2: 1, 1 / 8: 3, 1 / 16: 4}  # 1/4 reached no count
    assert partition.probes_for(0.9) == 1 and partition.probes_for(0.5) == 1
    assert partition.probes_for(0.3) is None  # the rung under it, 1/4, was not reached
    assert partition.probes_for(0.2) == 3 and partition.probes_for(0.1) == 4  # 1/8 and 1/16
    assert partition.probes_for(0.001) is None


def test_a_filter_whose_rows_lie_away_from_the_query_is_refused_the_lists():
    """Where the query's nearest lists hold far fewer passing rows than the filter's share promises of them,
    the measured rungs (random filters) say nothing of it: passing_slots gives None, and the caller searches
    every passing row."""
    partition, rows = tuned_for_filters(15)
    query = rows[0]
    probes = partition.filtered[1 / 4]
    near = partition._read(query, probes)[partition.cells[: len(rows)]]
    away = np.flatnonzero(~near)
    passing = np.sort(np.concatenate([away[: len(rows) // 4], np.flatnonzero(near)[:2]]))
    assert partition.passing_slots(query, *passes(passing, len(rows)), len(rows), probes) is None
    everywhere = np.arange(0, len(rows), 4)
    assert partition.passing_slots(query, *passes(everywhere, len(rows)), len(rows), probes) is not None


def test_a_partition_saved_and_restored_reads_the_same_lists():
    partition, rows = tuned_for_filters(17)
    partition.unlist(np.arange(5))
    back = Partition.restored(partition.saved(len(rows)), "cosine", len(rows) + 100)
    assert back.filtered == partition.filtered and back.probes == partition.probes and back.recall == partition.recall
    assert (back.cells[: len(rows)] == partition.cells[: len(rows)]).all() and (back.cells[len(rows):] == UNLISTED).all()
    passing = np.arange(0, len(rows), 3)
    for query in mixture(18, 5):
        assert (back.passing_slots(query, *passes(passing, len(rows)), len(rows), 4) == partition.passing_slots(query, *passes(passing, len(rows)), len(rows), 4)).all()


def test_the_slots_a_query_reads_are_those_whose_cell_it_reads_through_every_change():
    """A query finds its lists' slots through the sorted order of the last indexing, plus the loose ones; after
    any run of the changes the shelf makes (replacements, removals moving the last row, bulk removals, growth,
    rows written, rows assigned), that must be exactly the slots whose cell as it is now it reads."""
    rng = np.random.default_rng(21)
    rows = mixture(21, 3_000)
    partition = Partition.make(rows, "cosine", len(rows), seed=21)
    n, lists = len(rows), len(partition.centres)

    def check() -> None:
        for _ in range(3):
            read = np.zeros(lists + 1, dtype=bool)
            read[rng.choice(lists, rng.integers(1, 6), replace=False)] = True
            read[-1] = True
            assert (partition._slots_read(read, n) == np.flatnonzero(read[partition.cells[:n]])).all()

    for step in range(300):
        kind = rng.integers(6)
        if kind == 0 and n:  # a row replaced
            partition.unlist(int(rng.integers(n)))
        elif kind == 1 and n > 1:  # a row removed: the last moves into its slot
            partition.move(int(rng.integers(n)), n - 1)
            n -= 1
        elif kind == 2:  # rows written at the end (the shelf grows first where it must)
            added = int(rng.integers(1, 40))
            if n + added > len(partition.cells):
                partition.grow(2 * (n + added))
            n += added
        elif kind == 3 and n > 10:  # a bulk removal
            kept = np.sort(rng.choice(n, n - int(rng.integers(1, n // 10 + 2)), replace=False))
            partition.keep(kept, n)
            n = len(kept)
        elif kind == 4:  # the unlisted rows listed
            unlisted = partition.unlisted(n)
            assert (unlisted == np.flatnonzero(partition.cells[:n] == UNLISTED)).all()
            partition.assign(unlisted, rng.integers(lists, size=len(unlisted)).astype(np.int32), n)
        check()
        assert partition.unlisted_count(n) >= np.count_nonzero(partition.cells[:n] == UNLISTED)
