"""A bulk removal (_Shelf.remove_many: the kept rows close up in one pass) leaves a namespace holding what
removing the same rows one at a time (remove: the last row moves into each hole) does: each kept id with
its vector, label, norm, metadata, graph flag and partition list; the removed ones gone, their graph copies
marked dead."""

from __future__ import annotations

import random

import numpy as np
import orjson
import pytest

from daemon.stores.vectors import Space
from daemon.stores.vectors.local import _Shelf
from daemon.stores.vectors.partition import Partition

DIM = 8


def filled_shelf(n: int, seed: int) -> _Shelf:
    rng = np.random.default_rng(seed)
    shelf = _Shelf(Space("s", DIM, "cosine"))
    metadata = [{"g": int(i % 5), "tags": ["a", "b"][: i % 3]} if i % 7 else None for i in range(n)]
    shelf.put_many([f"id{i}" for i in range(n)], rng.normal(size=(n, DIM)).astype(np.float32), metadata,
                   [orjson.dumps(m) if m else None for m in metadata], np.arange(1, n + 1) * 3)
    shelf.partition = Partition.make(shelf.matrix, "cosine", len(shelf.in_graph), seed)
    shelf.in_graph[: n] = rng.random(n) < 0.7  # as if a graph held these
    shelf.graphed = int(shelf.in_graph[: n].sum())
    return shelf


def by_id(shelf: _Shelf) -> dict[str, tuple]:
    assert shelf.partition is not None
    return {
        shelf.ids[slot]: (
            shelf.matrix[slot].tobytes(), int(shelf.labels[slot]), float(shelf._norms[slot]), shelf.meta[slot],
            bool(shelf.in_graph[slot]), int(shelf.partition.cells[slot]),
        )
        for slot in range(shelf.n)
    }


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_removing_many_at_once_leaves_what_removing_them_one_by_one_does(seed):
    n = 3000
    one_by_one, at_once = filled_shelf(n, seed), filled_shelf(n, seed)
    rng = random.Random(seed)
    doomed = rng.sample([f"id{i}" for i in range(n)], rng.choice([1, 40, 1500, n - 1]))
    doomed.append("never-there")

    for record_id in doomed:
        one_by_one.remove(record_id)
    at_once.remove_many(doomed)

    assert at_once.n == one_by_one.n == n - len(doomed) + 1
    assert by_id(at_once) == by_id(one_by_one)
    assert sorted(at_once.dead) == sorted(one_by_one.dead) and at_once.graphed == one_by_one.graphed
    assert int(at_once.in_graph.sum()) == at_once.graphed  # no flag left behind the last row
    for slot, label in enumerate(at_once.labels.tolist()):
        assert at_once.slot_by_label[label] == slot and at_once.ids.slot(at_once.ids[slot]) == slot
    gone = set(doomed)
    for i in range(n):
        label = (i + 1) * 3
        assert (at_once.slot_by_label[label] == -1) == (f"id{i}" in gone)
    assert all(at_once.ids.slot(record_id) is None for record_id in doomed)
    # Their metadata is gone from the columns too: a filter passes only kept rows.
    passing = {at_once.ids[slot] for slot in np.flatnonzero(at_once.columns.mask({"g": 1}, at_once.n))}
    assert passing == {f"id{i}" for i in range(n) if i % 7 and i % 5 == 1} - gone
    assert not at_once.columns.fields["g"].present[at_once.n : n].any()
    assert (at_once.partition.cells[at_once.n : n] == -1).all()
