"""The keyword index (daemon/stores/keywords.py) on its own: BM25 over folded words, writes visible at
once, replacements and deletes gone at once, namespaces apart, and caught up with the table after a crash."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from daemon.stores.keywords import KeywordIndex, words

SPACE = "c1"


@pytest.fixture
async def index(tmp_path):
    keywords = KeywordIndex(tmp_path / "text")
    yield keywords
    await keywords.close()


def ids(hits) -> list[str]:
    return [hit.id for hit in hits]


def test_words_are_folded_for_case_and_accents():
    assert words("Crème BRÛLÉE, Straße; naïve café CAFE") == ["creme", "brulee", "strasse", "naive", "cafe"]


async def test_a_written_text_is_found_at_once_by_any_of_its_words_folded(index):
    await index.write(SPACE, "", {"a": "The Café on the Rue de Rivoli", "b": "A bakery in Lyon"})
    hits, total = index.search(SPACE, "", "CAFE rivoli", 10)
    assert ids(hits) == ["a"] and total == 1
    assert ids(index.search(SPACE, "", "lyon", 10)[0]) == ["b"]


async def test_bm25_ranks_the_rarer_and_denser_match_first(index):
    await index.write(SPACE, "", {
        "common": "apple apple banana cherry",
        "rare": "durian apple",
        "filler1": "apple banana", "filler2": "apple cherry", "filler3": "banana cherry",
    })
    hits, _ = index.search(SPACE, "", "durian apple", 10)
    assert hits[0].id == "rare"
    assert hits[0].score > hits[1].score > 0


async def test_a_replacement_takes_the_old_text_out_at_once(index):
    await index.write(SPACE, "", {"a": "old words here"})
    await index.write(SPACE, "", {"a": "new phrase instead"})
    assert index.search(SPACE, "", "old", 10) == ([], 0)
    assert ids(index.search(SPACE, "", "phrase", 10)[0]) == ["a"]
    assert index.count(SPACE, "") == 1


async def test_a_delete_takes_the_text_out_at_once(index):
    await index.write(SPACE, "", {"a": "lighthouse keeper", "b": "lighthouse"})
    await index.write(SPACE, "", {"a": None})
    assert ids(index.search(SPACE, "", "lighthouse keeper", 10)[0]) == ["b"]


async def test_namespaces_keep_their_own_texts_and_statistics(index):
    await index.write(SPACE, "left", {"a": "river boat"})
    await index.write(SPACE, "right", {"a": "mountain goat", "b": "river"})
    assert ids(index.search(SPACE, "left", "goat", 10)[0]) == []
    assert ids(index.search(SPACE, "right", "goat", 10)[0]) == ["a"]
    await index.clear(SPACE, "right")
    assert index.search(SPACE, "right", "river", 10) == ([], 0)
    assert ids(index.search(SPACE, "left", "river", 10)[0]) == ["a"]


async def test_a_query_of_no_words_matches_nothing(index):
    await index.write(SPACE, "", {"a": "words"})
    assert index.search(SPACE, "", " ,;! ", 10) == ([], 0)


async def test_a_filter_never_loses_a_match_that_exists(index):
    # 200 records match "common"; only the two worst-scoring pass the filter: the first candidates are
    # all turned away, and the search must go on to every match.
    texts = {f"r{i}": "common " * (i + 2) for i in range(200)}
    texts["weak1"] = "common " + "padding " * 40
    texts["weak2"] = "common " + "padding " * 50
    await index.write(SPACE, "", texts)

    async def only_weak(candidates: list[str]) -> list[bool]:
        return [c.startswith("weak") for c in candidates]

    found = await index.search_where(SPACE, "", "common", 5, only_weak)
    assert ids(found) == ["weak1", "weak2"]


async def test_reconcile_adds_what_is_missing_and_removes_what_is_stale(tmp_path):
    first = KeywordIndex(tmp_path / "text")
    await first.write(SPACE, "", {"kept": "alpha", "gone": "beta", "changed": "gamma"})
    await first.write(SPACE, "other", {"x": "delta"})
    await first.close()

    table = {"": {"kept": "alpha", "changed": "epsilon", "new": "zeta"}}  # "other" was emptied meanwhile
    second = KeywordIndex(tmp_path / "text")
    assert await second.reconcile(SPACE, table) == 4  # gone, old changed out; new changed, new in
    assert set(ids(second.search(SPACE, "", "alpha beta gamma epsilon zeta", 10)[0])) == {"kept", "changed", "new"}
    assert second.search(SPACE, "other", "delta", 10) == ([], 0)
    assert second.search(SPACE, "", "beta gamma", 10) == ([], 0)
    assert len(list((tmp_path / "text" / SPACE).iterdir())) == 1  # the emptied namespace's directory is gone
    assert await second.reconcile(SPACE, table) == 0
    await second.close()


async def test_a_kill_9_after_a_write_loses_nothing_written(tmp_path):
    # A separate process writes and is killed with SIGKILL without closing; the texts it wrote (and any
    # the table holds that it never wrote) are found after a reconcile with the table.
    script = textwrap.dedent(f"""
        import asyncio, os, sys
        from daemon.stores.keywords import KeywordIndex
        async def main():
            index = KeywordIndex({str(tmp_path / "text")!r})
            await index.write("c1", "", {{"a": "orchard", "b": "vineyard"}})
            print("written", flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
    """)
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout.readline().strip() == "written"
        finally:
            child.send_signal(signal.SIGKILL)
    index = KeywordIndex(tmp_path / "text")
    assert await index.reconcile(SPACE, {"": {"a": "orchard", "b": "vineyard", "c": "meadow"}}) == 1
    assert ids(index.search(SPACE, "", "vineyard", 10)[0]) == ["b"]
    assert ids(index.search(SPACE, "", "meadow", 10)[0]) == ["c"]
    await index.close()


async def test_writes_apply_in_the_order_their_turns_were_taken(index):
    import asyncio

    first = await index.enqueue(SPACE, "", {"a": "first version"})
    second_turn = asyncio.create_task(index.enqueue(SPACE, "", {"a": "second version"}))
    await asyncio.sleep(0.01)
    assert not second_turn.done()  # waits for the first write to be applied
    await first()
    second = await second_turn
    await second()
    assert index.search(SPACE, "", "first", 10) == ([], 0)
    assert ids(index.search(SPACE, "", "second", 10)[0]) == ["a"]
