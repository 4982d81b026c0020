"""The vector index and the embedders live in one daemon process: loading the index first, then the
embedding engine (what a collection request followed by GET /api/v1/embedders does) must not crash it.
Run in a child process, since the failure this guards against is a segmentation fault."""

import subprocess
import sys


def test_the_embedding_engine_loads_after_the_vector_index():
    child = subprocess.run(
        [sys.executable, "-c", "import daemon.stores.vectors.local; import fastembed; print('loaded')"],
        capture_output=True, text=True, timeout=120,
    )
    assert child.returncode == 0, f"exit {child.returncode}: {child.stderr[-2000:]}"
    assert child.stdout.strip() == "loaded"
