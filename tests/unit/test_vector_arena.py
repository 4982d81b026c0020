"""The shelf's ids and metadata in one buffer each (daemon/stores/vectors/arena.py), against plain lists
driven through the same appends, replacements and removals."""

from __future__ import annotations

import random

import numpy as np
import pytest

from daemon.stores.vectors.arena import Blobs, Ids


def _drive(ids: Ids, meta: Blobs, seed: int, steps: int = 2000, universe: int = 3000) -> None:
    rng = random.Random(seed)
    held: list[str] = []
    values: list[bytes | None] = []
    for step in range(steps):
        roll = rng.random()
        if roll < 0.5:
            present = set(held)
            new = [i for i in dict.fromkeys(f"id-{rng.randrange(universe)}-é" * (1 + rng.randrange(2))
                                             for _ in range(rng.randrange(1, 40))) if i not in present]
            new_values = [None if rng.random() < 0.2 else rng.randbytes(rng.randrange(30)) for _ in new]
            ids.append(new)
            meta.extend(new_values)
            held += new
            values += new_values
        elif roll < 0.75 and held:
            slot = rng.randrange(len(held))
            ids.remove(slot)
            meta.remove(slot)
            held[slot], values[slot] = held[-1], values[-1]
            held.pop()
            values.pop()
        elif roll < 0.8 and held:  # many at once: the kept close up in their order
            kept = sorted(rng.sample(range(len(held)), rng.randrange(len(held) + 1)))
            ids.keep(np.array(kept, dtype=np.int64))
            meta.keep(np.array(kept, dtype=np.int64))
            held = [held[slot] for slot in kept]
            values = [values[slot] for slot in kept]
        elif held:
            slot = rng.randrange(len(held))
            values[slot] = meta_value = None if rng.random() < 0.3 else rng.randbytes(rng.randrange(100))
            meta[slot] = meta_value
        if step % 97 == 0 or step == steps - 1:
            assert ids.all() == held and list(ids) == held and len(ids) == len(held)
            assert list(meta) == values
            asked = held + [f"id-{i}-é" for i in range(universe)] + ["", "absent"]
            where = {record_id: slot for slot, record_id in enumerate(held)}
            assert ids.slots(asked).tolist() == [where.get(i, -1) for i in asked]
            assert all((i in ids) == (i in where) for i in asked[-50:])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ids_and_metadata_follow_appends_replacements_and_removals(seed):
    _drive(Ids(), Blobs(), seed)


def test_ids_that_share_a_hash_are_told_apart_by_their_text():
    """A 64-bit hash shared by two ids is rare, not impossible: here every id of one length shares one."""
    ids = Ids()
    ids.hash_of = len
    _drive(ids, Blobs(), seed=4, steps=600, universe=400)


def test_an_ascii_and_a_non_ascii_namespace_list_their_ids_alike():
    ids = Ids()
    ids.append(["a", "bb", "ccc"])
    assert ids.all() == ["a", "bb", "ccc"]
    ids.append(["ü"])
    assert ids.all() == ["a", "bb", "ccc", "ü"] and ids[3] == "ü"


def test_replaced_metadata_is_taken_back_by_compaction():
    meta = Blobs()
    meta.extend([b"x" * 100] * 1000)
    for round_ in range(20):
        for slot in range(1000):
            meta[slot] = bytes([round_]) * 100
    assert list(meta) == [bytes([19]) * 100] * 1000
    assert len(meta._buffer) <= 2 * 100 * 1000  # without compaction: 2,100,000


def test_a_slot_out_of_range_is_an_index_error():
    meta = Blobs()
    meta.extend([b"a", None])
    assert meta[1] is None
    with pytest.raises(IndexError):
        meta[2]
    with pytest.raises(IndexError):
        meta[-1]
