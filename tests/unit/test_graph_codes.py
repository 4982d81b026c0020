"""The graph's i8 copies: coded on a scale fitted to the data, so the graph's own ranking is nearly f32's."""

from __future__ import annotations

import numpy as np

from daemon.stores.vectors.graph import Graph

DIM = 384
N = 5000


def unit_mixture(seed: int, n: int) -> np.ndarray:
    """Unit vectors around 20 centres at 384 dimensions: components of about 0.05, like embeddings'."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, DIM))
    points = (centres[rng.integers(20, size=n)] + rng.normal(scale=0.35, size=(n, DIM))).astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def graph_recall(graph: Graph, rows: np.ndarray, queries: np.ndarray) -> float:
    """recall@10 of the graph's own top 10, with no re-ranking: how well its copies keep the order."""
    graph.add(np.arange(len(rows)), rows, threads=2)
    truth = np.argsort(-(queries @ rows.T), axis=1)[:, :10]
    found = sum(len(set(graph.search(q, 10).tolist()) & set(t.tolist())) for q, t in zip(queries, truth))
    return found / (10 * len(queries))


def test_i8_copies_keep_the_graphs_ranking_nearly_as_f32_does():
    """usearch's own cast (x 127, truncated) left these components a dozen levels: the graph's top 10
    held 0.58 of the true top 10 against f32's 0.83, and at a million points it took 400-512 candidates
    re-ranked to reach 0.95."""
    points = unit_mixture(1, N + 100)
    rows, queries = points[:N], points[N:]  # the queries are not in the graph
    full = graph_recall(Graph.new(DIM, "cosine", "f32", rows), rows, queries)
    coded = Graph.new(DIM, "cosine", "i8", rows[:2000])
    assert coded.scale is not None and coded.scale > 127 * 4  # the values' range, not [-1, 1]
    assert graph_recall(coded, rows, queries) >= full - 0.05


def test_the_scale_fits_values_of_any_range_for_euclidean_distance():
    """Raw rows (euclidean) are not in [-1, 1]: usearch's cast clipped every value beyond 1 to 127."""
    points = unit_mixture(2, N + 100) * 40.0
    rows, queries = points[:N], points[N:]
    graph = Graph.new(DIM, "euclidean", "i8", rows)
    assert np.abs(graph.code(rows)).max() == 127 and np.abs(graph.code(rows)).mean() > 8
    graph.add(np.arange(N), rows, threads=2)
    truth = np.argsort(((queries[:, None, :] - rows[None, :, :]) ** 2).sum(axis=2), axis=1)[:, :10]
    found = sum(len(set(graph.search(q, 10).tolist()) & set(t.tolist())) for q, t in zip(queries, truth))
    assert found / (10 * len(queries)) >= 0.78  # usearch's cast: 0.705


def test_a_graph_saved_before_the_scale_keeps_usearchs_cast(tmp_path):
    """Its copies were made by usearch's cast: queries must be coded the same way, or they miss."""
    rows = unit_mixture(3, 500)
    fitted = Graph.new(DIM, "cosine", "i8", rows)
    assert not np.array_equal(fitted.code(rows[:1]), rows[:1])
    path = str(tmp_path / "graph.usearch")
    fitted.save(path)
    again = Graph.restore(path, None)
    first = rows[:1]
    assert again is not None and again.scale is None and again.code(first) is first
    assert Graph.restore(path, fitted.scale).scale == fitted.scale
