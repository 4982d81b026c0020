"""The exact search over i8 copies (daemon/stores/vectors/codes.py) answers what scoring every float32 row
answers: the same rows with the same scores, for every metric, over all rows or some, on data where the
copies' own ranking is wrong, after replacements and removals, and across a save and restore."""

from __future__ import annotations

import concurrent.futures

import numpy as np
import pytest

from daemon.stores.vectors import Space, codes
from daemon.stores.vectors.local import _Shelf, nested, unnested

DIM = 64
N = 6_000


def clusters(rng: np.random.Generator, n: int) -> np.ndarray:
    """Tight clusters (many rows within the copies' error of each other), a few rows far beyond the
    fitted range (clipped in their copies) and some exact repeats."""
    centres = rng.normal(size=(40, DIM))
    rows = centres[rng.integers(0, 40, n)] + 0.05 * rng.normal(size=(n, DIM))
    rows[rng.integers(0, n, 20)] *= 40.0
    rows[n // 2 : n // 2 + 30] = rows[n // 2]
    return rows.astype(np.float32)


def shelf_of(metric: str, rows: np.ndarray, precision: str = "f16") -> _Shelf:
    shelf = _Shelf(Space("s", DIM, metric, precision))
    for start in range(0, len(rows), 1_000):  # in requests' batches: the copies are made on the way
        batch = rows[start : start + 1_000]
        shelf.put_many([f"id{i}" for i in range(start, start + len(batch))], batch, [None] * len(batch),
                       [None] * len(batch), np.arange(start, start + len(batch)) + 1)
    return shelf


def float32_top(shelf: _Shelf, query: np.ndarray, k: int, slots: np.ndarray | None = None) -> list[tuple[int, float]]:
    held, shelf.codes = shelf.codes, None
    try:
        return shelf.top(query, k, slots)
    finally:
        shelf.codes = held


def assert_same(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    """The same scores in the same order, and the same rows but where two score alike at the last place."""
    assert len(got) == len(want)
    # float32 rounds a row's score a little differently when it is scored among fewer rows
    assert np.allclose([score for _, score in got], [score for _, score in want], rtol=1e-5, atol=1e-4)
    last = want[-1][1] + 1e-4 + 1e-5 * abs(want[-1][1])  # as allclose's tolerance: a score of 2,477 rounds by 2e-4
    assert {slot for slot, score in got if score > last} == {slot for slot, score in want if score > last}


def queries(rng: np.random.Generator, rows: np.ndarray, count: int) -> np.ndarray:
    """Near the data but none of it: rows moved a little, and a few random directions."""
    near = rows[rng.integers(0, len(rows), count - 5)] + 0.03 * rng.normal(size=(count - 5, DIM))
    return np.concatenate([near, rng.normal(size=(5, DIM))]).astype(np.float32)


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
def test_the_coded_scan_answers_as_the_float32_scan(metric):
    rng = np.random.default_rng(7)
    rows = clusters(rng, N)
    shelf = shelf_of(metric, rows)
    assert shelf.codes is not None and shelf.n >= codes.MIN_ROWS
    passing = np.flatnonzero(rng.random(N) < 0.8)  # a filter's rows, still more than codes.MIN_ROWS
    few = np.flatnonzero(np.random.default_rng(70).random(N) < 0.1)  # gathered: through the copies from codes.MIN_GATHERED on
    assert codes.MIN_GATHERED <= len(few) < codes.MIN_ROWS
    for query in queries(rng, rows, 40):
        for k in (1, 10, 100):
            assert_same(shelf.top(query, k), float32_top(shelf, query, k))
        assert_same(shelf.top(query, 10, passing), float32_top(shelf, query, 10, passing))
        assert_same(shelf.top(query, 10, few), float32_top(shelf, query, 10, few))


def test_the_bound_does_the_work_the_copies_ranking_cannot():
    """On these clusters the copies' own top 10 differs from the true one for some queries, so a scan that
    trusted the estimates (no slack) would answer wrongly; and the rows scored exactly stay few."""
    rng = np.random.default_rng(8)
    rows = clusters(rng, N)
    shelf = shelf_of("cosine", rows)
    assert shelf.codes is not None
    wrong_without_slack, scored = 0, []
    for query in queries(rng, rows, 40):
        unit = query / np.linalg.norm(query)
        estimate, _ = shelf.codes.estimates(unit, None, shelf.n)
        truth = {slot for slot, _ in float32_top(shelf, query, 10)}
        wrong_without_slack += set(np.argsort(-estimate)[:10].tolist()) != truth
        scored.append(len(shelf._contenders(query, 10, None, None)))
    assert wrong_without_slack > 0
    assert np.median(scored) < N / 10


def test_replacements_and_removals_keep_the_copies_in_step():
    rng = np.random.default_rng(9)
    rows = clusters(rng, N)
    shelf = shelf_of("cosine", rows)
    moved = rng.normal(size=(500, DIM)).astype(np.float32)  # replaced values for 500 ids
    shelf.put_many([f"id{i}" for i in range(500)], moved, [None] * 500, [None] * 500, np.arange(500) + N + 1)
    for i in range(600, 700):  # one at a time: the last row moves into each hole
        shelf.remove(f"id{i}")
    shelf.remove_many([f"id{i}" for i in range(1_000, 1_400)])  # at once: the rest close up
    assert shelf.n == N - 500
    for query in [*queries(rng, rows, 20), *moved[:5]]:
        assert_same(shelf.top(query, 10), float32_top(shelf, query, 10))
    ids = {shelf.ids[slot] for slot, _ in shelf.top(moved[3], 1)}
    assert ids == {"id3"}


def test_the_copies_survive_a_save_and_are_made_again_from_older_saves():
    rng = np.random.default_rng(10)
    rows = clusters(rng, N)
    shelf = shelf_of("euclidean", rows)
    arrays = unnested("x", nested("x", shelf.saved()))
    again = _Shelf.restored(Space("s", DIM, "euclidean"), arrays)
    assert again.codes is not None and np.array_equal(again.codes.rows[: again.n], shelf.codes.rows[: shelf.n])
    older = _Shelf.restored(Space("s", DIM, "euclidean"), {k: v for k, v in arrays.items() if not k.startswith("codes/")})
    assert older.codes is not None
    for query in queries(rng, rows, 10):
        want = float32_top(shelf, query, 10)
        assert_same(again.top(query, 10), want)
        assert_same(older.top(query, 10), want)
    more = rng.normal(size=(100, DIM)).astype(np.float32)  # a restored shelf grows: the copies grow with it
    again.put_many([f"new{i}" for i in range(100)], more, [None] * 100, [None] * 100, np.arange(100) + 2 * N)
    assert_same(again.top(more[0], 10), float32_top(again, more[0], 10))


def test_no_copies_where_the_graph_is_i8_or_the_namespace_small():
    rng = np.random.default_rng(11)
    assert shelf_of("cosine", clusters(rng, N), precision="i8").codes is None
    assert shelf_of("cosine", clusters(rng, codes.MIN_ROWS - 1)).codes is None


def test_estimates_in_blocks_on_threads_are_those_of_one_pass():
    rng = np.random.default_rng(12)
    shelf = shelf_of("dot", clusters(rng, N))
    assert shelf.codes is not None
    query = rng.normal(size=DIM).astype(np.float32)
    passing = np.flatnonzero(rng.random(N) < 0.5)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for slots in (None, passing):
            whole, slack = shelf.codes.estimates(query, slots, shelf.n)
            split, split_slack = shelf.codes.estimates(query, slots, shelf.n, 3, pool)
            assert np.array_equal(whole, split) and np.array_equal(slack, split_slack)
