"""What each way of answering a filtered query costs a namespace, measured as it answers them.

A filtered query is answered by one of three paths (local.py, `_filtered`): every passing row scored exactly,
the rows of the partition's nearest lists, or a wider walk of the graph. Which is cheapest is not a constant
of the code. A graph candidate cost about 2 us at a million rows of the mixture (i8 graph, ef 320) but 12 us
on 100,000 anisotropic rows (f16 graph, ef 192), where scoring a tenth of the rows exactly took 2.1 ms
against the graph's 3.8 (and found all ten, where the graph found 97%). A passing row costs more or less
with the machine too (i8 copies, codes.py: AVX-512 VNNI scans them twice as fast as AVX2).

So each path's cost per unit of its work (a passing row scored, a row read through the lists, a step of
the graph's walk: max(candidates, ef)) starts from a prior and follows what its queries take here. A path
that is not taken is not measured, so a prior too high for this machine would never be corrected (seen: on
AVX-512 a passing row cost 0.07 us against the prior's 0.2, and a tenth of 100,000 anisotropic rows kept
walking the graph, 1.6 ms in process, where the exact scan took 0.8): now and then a path not taken is
taken once to be measured, where it is expected to cost at most EXPLORE_WITHIN times the cheapest. The first
such query is the dearest: in the daemon it reads rows no query read before (a tenth of 100,000 anisotropic
rows: 2.9 ms, where the next ones took 0.9-1.1), so a path is looked at again soon after, then less often.
"""

from __future__ import annotations

# Seconds a unit, before any measurement: 0.16-0.24 us a passing row gathered and scored (384 dimensions,
# two scan threads, bound by memory), about 2 us a candidate of the i8 graph at a million rows.
PRIORS = {"exact": 0.2e-6, "lists": 0.2e-6, "graph": 1.6e-6}
# Rows are measured only from this many on: under it a query's fixed costs (ranking, the answer) would be
# counted as the rows' own and make a small filter's path look dear for a large one. A walk of the graph is
# at least ef (32 or more) steps, each dearer than those fixed costs.
MIN_UNITS = {"exact": 1_000, "lists": 1_000, "graph": 1}
WEIGHT = 0.5  # of each new measurement in the running figure
SPIKE = 4.0  # one measurement moves a figure at most this many times what it was (a pause for the GC, a
# thread preempted on a loaded machine), so a single slow query does not turn a namespace off a path
# A path not taken is taken once to measure it: first at this filtered query (the first few measure the
# cheapest), then after twice as many queries each time it was taken (8, 16, 32), at most EXPLORE_EVERY; and
# only where expected at most EXPLORE_WITHIN times the cheapest: the price is one slower query in 64 at worst,
# not a slow path kept for good.
EXPLORE_FIRST = 4
EXPLORE_EVERY = 64
EXPLORE_WITHIN = 4.0


class PathCosts:
    def __init__(self) -> None:
        self.per_unit = dict(PRIORS)
        self.queries = 0  # filtered queries that chose a path
        self.looked_at: dict[str, int] = {}  # path -> the query that last took it
        self.taken: dict[str, int] = {}  # path -> the queries that took it

    def cheapest(self, units: dict[str, float]) -> str:
        """Of these paths (name -> its units of work for this query), the one expected to take least time;
        or, now and then, another within EXPLORE_WITHIN of it, to measure that one."""
        self.queries += 1
        expected = {path: units[path] * self.per_unit[path] for path in units}
        best = min(expected, key=expected.__getitem__)
        due = [path for path in expected if path != best and expected[path] <= EXPLORE_WITHIN * expected[best]
               and self.queries - self.looked_at.get(path, 0) >= self._gap(path)]
        chosen = min(due, key=expected.__getitem__) if due else best
        self.looked_at[chosen] = self.queries
        self.taken[chosen] = self.taken.get(chosen, 0) + 1
        return chosen

    def _gap(self, path: str) -> int:
        """Queries after its last that a path not taken is taken again, to measure it."""
        return min(EXPLORE_EVERY, EXPLORE_FIRST << min(self.taken.get(path, 0), 16))

    def record(self, path: str, units: float, seconds: float) -> None:
        if units < MIN_UNITS[path]:
            return
        now = self.per_unit[path]
        self.per_unit[path] = now + WEIGHT * (min(seconds / units, SPIKE * now) - now)
