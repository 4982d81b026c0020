"""The indexed filter (metadata columns, numpy masks) passes exactly the rows the reference predicate does
(filters.check, Pinecone's rules written out one value at a time), for random metadata and random filters,
and stays so while rows are replaced and removed (a removal moves the last row into the hole; a bulk one
closes the kept rows up), and after the columns are saved and restored as a clean restart does."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.stores.vectors import Space
from daemon.stores.vectors.filters import check
from daemon.stores.vectors.local import _Shelf

FIELDS = ["a", "b", "c"]
# Few distinct values, so filters and metadata meet often; 1 and 1.0 and True and "1" side by side.
SCALARS = st.one_of(
    st.sampled_from(["x", "y", "1", ""]),
    st.sampled_from([0, 1, 2, -3, 1.0, 2.5, 1e15]),
    st.booleans(),
)
VALUES = st.one_of(SCALARS, st.lists(st.sampled_from(["x", "y", "z", "1"]), max_size=3))
METADATA = st.one_of(st.none(), st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=3))


def _condition() -> st.SearchStrategy:
    number = st.sampled_from([0, 1, 1.5, 2, -3, 1e15])
    return st.one_of(
        SCALARS,
        st.dictionaries(
            st.sampled_from(["$eq", "$ne"]), SCALARS, min_size=1, max_size=2
        ),
        st.dictionaries(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), number, min_size=1, max_size=2),
        st.dictionaries(st.sampled_from(["$in", "$nin"]), st.lists(SCALARS, min_size=1, max_size=3), min_size=1),
        st.fixed_dictionaries({"$exists": st.booleans()}),
    )


FILTERS = st.recursive(
    st.dictionaries(st.sampled_from(FIELDS), _condition(), min_size=1, max_size=2),
    lambda inner: st.one_of(
        st.fixed_dictionaries({"$and": st.lists(inner, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"$or": st.lists(inner, min_size=1, max_size=3)}),
    ),
    max_leaves=6,
)


def _reference(shelf: _Shelf, filter: dict) -> list[str]:
    predicate = check(filter)
    return sorted(shelf.ids[slot] for slot in range(shelf.n) if predicate(shelf.metadata(slot) or {}))


def _indexed(shelf: _Shelf, filter: dict) -> list[str]:
    return sorted(shelf.ids[slot] for slot in np.flatnonzero(shelf.columns.mask(filter, shelf.n)))


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(METADATA, min_size=1, max_size=40),
    changes=st.lists(
        st.tuples(
            st.integers(0, 39),
            st.one_of(st.none(), METADATA.map(lambda m: ("put", m)), st.sets(st.integers(0, 39)).map(lambda s: ("bulk", s))),
        ),
        max_size=15,
    ),
    filters=st.lists(FILTERS, min_size=1, max_size=4),
)
def test_the_indexed_filter_passes_the_rows_the_reference_predicate_passes(rows, changes, filters):
    import orjson

    shelf = _Shelf(Space("s", 2, "dot"))
    label = 1
    vector = np.ones(2, dtype=np.float32)

    def put(record_id: str, metadata: dict | None) -> None:
        nonlocal label
        raw = orjson.dumps(metadata) if metadata else None
        shelf.put_many([record_id], vector[None, :], [metadata], [raw], np.array([label]))
        label += 1

    # The first rows in one batch (one write per field), the changes one at a time.
    raws = [orjson.dumps(m) if m else None for m in rows]
    shelf.put_many([f"r{i}" for i in range(len(rows))], np.ones((len(rows), 2), dtype=np.float32), rows, raws,
                   np.arange(1, len(rows) + 1))
    label = len(rows) + 1
    for i, change in changes:  # replace (new metadata for an id), remove, or remove many, in random order
        if change is None:
            shelf.remove(f"r{i}")
        elif change[0] == "bulk":
            shelf.remove_many([f"r{j}" for j in change[1]])
        else:
            put(f"r{i}", change[1])
    # As a clean restart takes them up again: the columns and their dictionary of codes through saved().
    restored = _Shelf.restored(Space("s", 2, "dot"), shelf.saved())
    assert [restored.metadata(slot) for slot in range(restored.n)] == [shelf.metadata(slot) for slot in range(shelf.n)]
    for filter in filters:
        check(filter)  # well-formed, as the service guarantees before the store sees it
        assert _indexed(shelf, filter) == _reference(shelf, filter), filter
        assert _indexed(restored, filter) == _indexed(shelf, filter), filter
