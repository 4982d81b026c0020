"""`python -m bench.text` (bench/README.md): a short run measures every part and reports it; the labelled
set's gains are what its docstring says. (Figures are not judged here: the machine is shared and noisy.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from tests.daemon_process import ROOT


def test_a_short_run_reports_every_part() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.text", "--n", "2000", "--queries", "20", "--embed-n", "200",
                           "--instructions", "500", "--instructions-requests", "50", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["tantivy"]["count"] == 20 and 0 < result["tantivy"]["ndcg10"] <= 1
    http = result["http"]
    for part in ("keyword_http", "vector_http", "hybrid_http"):
        assert http[part]["count"] == 20 and 0 < http[part]["ndcg10"] <= 1
    assert http["healthz"]["count"] == 20 and http["ingest_text_sequential_per_s"] > 0
    assert http["embedding_ingest"]["failures"] == 0 and http["embedding_ingest"]["records"] == 200
    # The daemon's CPU time, the figure that hardly moves with the machine's load.
    for part in ("ingest_cpu_us_per_record_sequential", "ingest_cpu_us_per_record_4_connections",
                 "keyword_daemon_cpu_us", "healthz_daemon_cpu_us"):
        assert http[part] >= 0
    # Instructions per keyword query and per /healthz under callgrind, which the machine's load does not move.
    counted = result["instructions"]
    if shutil.which("valgrind"):
        assert counted["documents"] == 500 and counted["requests"] == 50
        assert counted["keyword_query"] > counted["healthz"] > 0
    else:
        assert "valgrind" in counted["error"]
    # Keyword search over HTTP ranks as the engine does in-process: the same words, the same BM25 (documents
    # of equal score may come in another order, as the two indexes were written in other batches).
    assert abs(http["keyword_http"]["ndcg10"] - result["tantivy"]["ndcg10"]) < 0.03


def test_the_gain_of_a_document_is_how_many_query_concepts_it_holds_in_either_form() -> None:
    from bench.text import LabelledSet

    data = LabelledSet(20_000, 5)  # about 50 documents a topic
    for q in range(5):
        for doc, gain in data.gains(q).items():
            words = set(data.texts[doc].split())
            held = sum(any(LabelledSet.word(int(c), f) in words for f in (0, 1)) for c in data.query_concepts[q])
            assert gain == held
        best_first = sorted(data.gains(q), key=lambda d: -data.gains(q)[d])
        assert data.ndcg(q, best_first) == 1.0 and data.ndcg(q, best_first[::-1]) < 1.0
