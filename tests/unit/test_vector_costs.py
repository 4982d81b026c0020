"""A filtered query's path follows what each path has cost the namespace (costs.py)."""

from __future__ import annotations

from daemon.stores.vectors.costs import (
    EXPLORE_EVERY, EXPLORE_FIRST, EXPLORE_WITHIN, MIN_UNITS, PRIORS, SPIKE, PathCosts,
)

# A tenth of 100,000 rows passes: 10,000 rows to score exactly, or a graph walk of 310 steps.
WORK = {"exact": 10_000.0, "graph": 310.0}


def test_the_priors_send_a_tenth_to_the_graph_and_its_measured_cost_sends_it_back():
    costs = PathCosts()
    assert costs.cheapest(WORK) == "graph"  # 0.5 ms expected against 2 ms
    for _ in range(3):  # the anisotropic shape: 3.8 ms for the walk
        costs.record("graph", WORK["graph"], 3.8e-3)
    assert costs.cheapest(WORK) == "exact"
    costs.record("exact", WORK["exact"], 2.1e-3)
    assert costs.cheapest(WORK) == "exact"
    assert costs.per_unit["exact"] > PRIORS["exact"]


def test_one_slow_query_moves_a_figure_at_most_spike_times():
    costs = PathCosts()
    costs.record("exact", 10_000, 5.0)  # a 5 s pause
    assert costs.per_unit["exact"] <= PRIORS["exact"] * (1 + (SPIKE - 1) * 0.5) * 1.0001
    assert costs.cheapest(WORK) == "graph"


def test_small_scans_are_not_measured_as_rows():
    costs = PathCosts()
    costs.record("exact", MIN_UNITS["exact"] - 1, 1e-3)  # fixed costs over 999 rows: 1 us a row
    assert costs.per_unit["exact"] == PRIORS["exact"]
    costs.record("graph", 48, 1e-3)  # every walk counts
    assert costs.per_unit["graph"] != PRIORS["graph"]


def test_a_path_not_taken_is_taken_now_and_then_to_measure_it():
    # On AVX-512 a passing row cost 0.07 us, not the prior's 0.2: the exact scan must get a chance to show it.
    costs = PathCosts()
    work = {"exact": 8_000.0, "graph": 310.0}  # 1.6 ms expected against 0.5: within EXPLORE_WITHIN
    chosen = [costs.cheapest(work) for _ in range(EXPLORE_FIRST)]
    assert chosen == ["graph"] * (EXPLORE_FIRST - 1) + ["exact"]
    for _ in range(4):  # 0.025 us a row: the figure follows it down
        costs.record("exact", work["exact"], 0.2e-3)
    # The graph, taken by the first EXPLORE_FIRST - 1 queries, is taken again EXPLORE_FIRST << 3 queries after
    # the last of them (32), to be measured; and from then on once in EXPLORE_EVERY.
    rest = [costs.cheapest(work) for _ in range(EXPLORE_FIRST << 3)]
    assert rest == ["exact"] * ((EXPLORE_FIRST << 3) - 2) + ["graph", "exact"]
    costs.record("graph", work["graph"], 1.4e-3)
    rest = [costs.cheapest(work) for _ in range(3 * EXPLORE_EVERY)]
    graph_at = [i for i, path in enumerate(rest) if path == "graph"]
    assert graph_at == [EXPLORE_EVERY * k + EXPLORE_EVERY - 2 for k in range(3)]


def test_a_first_look_that_read_cold_rows_is_followed_by_a_second_soon():
    # In the daemon the exploring query is the first to read those rows: 2.9 ms for a tenth of 100,000
    # anisotropic rows, where the next took 0.9-1.1 ms and the graph 1.6-2.5 (its units of work: 458 steps).
    costs = PathCosts()
    work = {"exact": 10_066.0, "graph": 458.0}
    exact_at = []
    for query in range(1, 200):
        path = costs.cheapest(work)
        exact_at += [query] if path == "exact" else []
        costs.record(path, work[path], {"graph": 1.9e-3, "exact": 2.9e-3 if len(exact_at) == 1 else 1.0e-3}[path])
    # Looked at again 8 queries after the first look (not 64), and from the next query on the cheapest; the
    # graph, last taken at query 11, is looked at once in EXPLORE_EVERY.
    assert exact_at[:3] == [4, 12, 13]
    assert set(range(12, 200)) - set(exact_at) == {11 + EXPLORE_EVERY, 11 + 2 * EXPLORE_EVERY}


def test_a_path_expected_to_cost_far_more_is_never_taken_to_measure_it():
    costs = PathCosts()
    far = {"exact": WORK["graph"] * PRIORS["graph"] / PRIORS["exact"] * EXPLORE_WITHIN * 1.1, "graph": WORK["graph"]}
    assert {costs.cheapest(far) for _ in range(3 * EXPLORE_EVERY)} == {"graph"}
