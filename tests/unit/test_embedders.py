"""The embedders (daemon/stores/embedders.py), loading and running a real ONNX model the test writes
(tests/tiny_model.py) through fastembed and ONNX Runtime."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import numpy as np
import pytest

from daemon.stores.embedders import EMBED_NICE, Embedders, EmbedderError
from tests import tiny_model


@pytest.fixture
def embedders(tmp_path):
    tiny_model.write(tmp_path / "models" / tiny_model.NAME)
    found = Embedders(tmp_path / "models", threads=1, cache_dir=tmp_path / "empty-cache")
    yield found
    found.close()


def test_the_list_shows_a_model_on_disk_as_available_and_fastembeds_others_as_not(embedders):
    items = {item.name: item for item in embedders.list()}
    assert items[tiny_model.NAME].available and items[tiny_model.NAME].dimension == tiny_model.DIMENSION
    assert items["BAAI/bge-small-en-v1.5"].dimension == 384
    assert not items["BAAI/bge-small-en-v1.5"].available  # the cache is empty, and nothing is downloaded
    assert embedders.list()[0].name == tiny_model.NAME  # what can run comes first


async def test_documents_are_embedded_by_the_model_in_batches(embedders):
    texts = ["apple banana", "river boat water", "Python code"] * 50  # more than one batch
    vectors = await embedders.embed_documents(tiny_model.NAME, texts)
    assert vectors.shape == (150, tiny_model.DIMENSION) and vectors.dtype == np.float32
    for text, vector in zip(texts[:3], vectors[:3]):
        np.testing.assert_allclose(vector, tiny_model.expected(text), rtol=1e-5, atol=1e-6)


async def test_a_query_lands_nearest_the_documents_that_share_its_words(embedders):
    documents = await embedders.embed_documents(tiny_model.NAME, ["apple orchard tree", "train station city"])
    query = await embedders.embed_query(tiny_model.NAME, "apple tree")
    assert np.argmax(documents @ query) == 0


async def test_an_unknown_or_absent_model_is_refused_by_name(embedders):
    with pytest.raises(EmbedderError, match="no model named 'nope/nothing'"):
        await embedders.embed_query("nope/nothing", "text")
    with pytest.raises(EmbedderError, match="not on this machine"):
        embedders.dimension("BAAI/bge-small-en-v1.5")


async def test_a_model_fastembed_knows_needs_no_manifest(tmp_path):
    # all-MiniLM-L6-v2's layout: fastembed's own file name (model.onnx) and description (mean pooling,
    # normalised, 384 wide) decide; the tiny graph stands in for the real weights.
    directory = tmp_path / "models" / "sentence-transformers" / "all-MiniLM-L6-v2"
    tiny_model.write(directory, manifest=False)
    embedders = Embedders(tmp_path / "models", cache_dir=tmp_path / "cache")
    try:
        assert embedders.dimension("sentence-transformers/all-MiniLM-L6-v2") == 384
        vector = await embedders.embed_query("sentence-transformers/all-MiniLM-L6-v2", "apple banana")
        np.testing.assert_allclose(vector, tiny_model.expected("apple banana"), rtol=1e-5, atol=1e-6)
    finally:
        embedders.close()


def test_a_directory_without_a_usable_manifest_is_skipped(tmp_path):
    tiny_model.write(tmp_path / "models" / "mine", manifest=False)
    (tmp_path / "models" / "bad").mkdir()
    tiny_model.write(tmp_path / "models" / "bad")
    (tmp_path / "models" / "bad" / "bastion-embedder.json").write_text('{"dimension": 0}')
    embedders = Embedders(tmp_path / "models", cache_dir=tmp_path / "cache")
    try:
        names = {item.name for item in embedders.list() if item.available}
        assert "mine" not in names and "bad" not in names
    finally:
        embedders.close()


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own nice value is Linux's")
async def test_embedding_runs_in_a_thread_below_the_event_loops_priority(embedders):
    """A large ingest must yield the CPU to requests: the worker thread alone is reniced, not the daemon."""
    def priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    loop_priority = priority()
    worker_priority = await asyncio.get_running_loop().run_in_executor(embedders._worker, priority)
    assert worker_priority == min(19, loop_priority + EMBED_NICE) > loop_priority
    assert priority() == loop_priority
