"""`python -m bench`, the README's benchmark command, and `bench.vectors`, whose rows it folds in: a missing
prerequisite is one line, and a short run prints every scenario. (Figures are not judged here: the machine
is shared and noisy.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import installed
from tests.daemon_process import ROOT


def bench(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})


def test_without_wrk_it_says_how_to_get_it(tmp_path) -> None:
    done = bench("--modes", "embedded", PATH=str(tmp_path))  # an empty PATH: no wrk on it
    assert done.returncode == 2
    assert done.stderr.strip() == "python -m bench needs wrk, the load generator: apt-get install wrk"
    assert "Traceback" not in done.stderr


def test_an_unknown_mode_is_a_usage_error() -> None:
    done = bench("--modes", "embeded")
    assert done.returncode == 2 and "unknown mode embeded" in done.stderr


def test_a_short_run_prints_every_scenario_without_errors() -> None:
    installed("wrk")
    done = bench("--modes", "embedded", "--skip-others", "--duration", "1", "--rounds", "1", "--soak", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    scenarios = {cells[0].strip(): cells for cells in rows[1:]}
    for scenario in ("bare aiohttp, same JSON", "GET /users/me", "bare aiohttp at Bastion's rate",
                     "argon2id verify, 2 threads", "POST /auth/login", "/healthz during login flood",
                     "mixed (reads, writes, lists)", "soak, mixed 1 s"):
        assert scenario in scenarios, f"no row for {scenario!r}:\n{done.stdout}"
    for cells in rows[1:]:
        assert float(cells[3].replace(",", "")) > 0, cells  # requests/s
        assert cells[6].strip() == "0", cells  # errors


def test_ratios_come_from_pairs_run_in_turns_and_the_median_pair_speaks() -> None:
    from bench.run import in_turns

    order: list[str] = []
    bases = iter([100.0, 100.0, 50.0])  # the third pair ran while the machine was busy elsewhere
    runs = iter([40.0, 45.0, 10.0])

    def run(side: str, rates, p99: float, errors: int) -> dict:
        order.append(side)
        return {"rps": next(rates), "p50_us": 1000.0, "p99_us": p99, "errors": errors}

    base, measured, ratios = in_turns(lambda: run("base", bases, 2000.0, 0), lambda: run("run", runs, 9000.0, 1), 3)
    assert order == ["base", "run"] * 3
    assert ratios == [0.4, 0.45, 0.2]
    assert (base["rps"], measured["rps"]) == (100.0, 40.0)  # the pair whose ratio is the median
    assert measured["p99_us"] == 9000.0 and measured["errors"] == 3  # the worst p99, every run's errors
    assert measured["p99s_us"] == [9000.0] * 3


def test_a_small_vector_run_answers_every_query_and_reports_recall() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.vectors", "--n", "2000", "--queries", "10", "--skip-chroma",
                           "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout[done.stdout.index("["):])
    queried = [r for r in rows if r["scenario"].startswith("vector query over HTTP")]
    assert {r["scenario"] for r in queried} == {f"vector query over HTTP, {shape} 2,000x384"
                                                for shape in ("mixture", "uniform", "anisotropic")}
    for row in queried:
        assert row["errors"] == 0 and row["rps"] > 0, row
        recall = float(row["note"].split("recall@10 ")[1].split(";")[0])
        assert recall >= 0.95, row  # at 2,000 points the index is exact or close to it
    # The ceilings are also read at the recall Bastion is held to (a width on their ladder, and its p50).
    ceilings = [line for line in done.stderr.splitlines() if line.startswith("ceilings at recall 0.95")]
    assert len(ceilings) == 3 and all(" usearch ef " in line and " ms (" in line for line in ceilings), ceilings


def test_instructions_are_counted_for_bastion_and_bare_aiohttp() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.instructions", "--requests", "20", "--modes", "embedded",
                           "--json"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {row["scenario"]: row for row in json.loads(done.stdout[done.stdout.index("["):])}
    assert set(rows) == {"bare aiohttp, same JSON: instructions per request",
                         "GET /api/v1/users/me: instructions per request", "GET /healthz: instructions per request"}

    def thousands(row: dict) -> float:
        return float(row["note"].split("k instructions")[0].replace(",", ""))

    bare, me = (thousands(rows[name]) for name in ("bare aiohttp, same JSON: instructions per request",
                                                   "GET /api/v1/users/me: instructions per request"))
    # Tens of thousands at least for the smallest server (a count of nothing would read 0), and the whole
    # pipeline costs more than no pipeline.
    assert 20 < bare < me, rows
    ratio = int(rows["GET /api/v1/users/me: instructions per request"]["ratio"].removesuffix("% of bare"))
    assert abs(ratio - 100 * bare / me) <= 1, rows  # the counts in the note are rounded to thousands
