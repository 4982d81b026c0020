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
    # The graph, last taken at query EXPLORE_FIRST - 1, is taken again EXPLORE_EVERY queries later, to be measured.
    rest = [costs.cheapest(work) for _ in range(EXPLORE_EVERY - 1)]
    assert rest == ["exact"] * (EXPLORE_EVERY - 2) + ["graph"]
    costs.record("graph", work["graph"], 1.4e-3)
    assert costs.cheapest(work) == "exact"


def test_a_path_expected_to_cost_far_more_is_never_taken_to_measure_it():
    costs = PathCosts()
    far = {"exact": WORK["graph"] * PRIORS["graph"] / PRIORS["exact"] * EXPLORE_WITHIN * 1.1, "graph": WORK["graph"]}
    assert {costs.cheapest(far) for _ in range(3 * EXPLORE_EVERY)} == {"graph"}
