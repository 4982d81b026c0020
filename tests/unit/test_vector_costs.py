"""A filtered query's path follows what each path has cost the namespace (costs.py)."""

from __future__ import annotations

from daemon.stores.vectors.costs import MIN_UNITS, PRIORS, SPIKE, PathCosts

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
