"""The metadata filter language: a table of meanings, a table of faults, and properties (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.stores.vectors.filters import FilterError, check

DOC = {"genre": "drama", "year": 2021, "rating": 4.5, "draft": False, "tags": ["a", "b"]}

MEANINGS = [
    ({"genre": "drama"}, True),
    ({"genre": {"$eq": "comedy"}}, False),
    ({"genre": {"$ne": "comedy"}}, True),
    ({"missing": {"$ne": "x"}}, True),
    ({"missing": {"$eq": "x"}}, False),
    ({"year": {"$gt": 2020}}, True),
    ({"year": {"$gt": 2021}}, False),
    ({"year": {"$gte": 2021}}, True),
    ({"year": {"$lt": 2021}}, False),
    ({"year": {"$lte": 2021.0}}, True),
    ({"year": {"$gte": 2020, "$lt": 2022}}, True),
    ({"genre": {"$gt": 1}}, False),  # strings never compare with numbers
    ({"genre": {"$in": ["drama", "comedy"]}}, True),
    ({"genre": {"$nin": ["drama"]}}, False),
    ({"missing": {"$nin": ["drama"]}}, True),
    ({"tags": "a"}, True),  # a list matches when any element does
    ({"tags": {"$in": ["z", "b"]}}, True),
    ({"tags": {"$ne": "a"}}, False),
    ({"tags": {"$nin": ["x", "y"]}}, True),
    ({"draft": False}, True),
    ({"draft": 0}, False),  # booleans are not numbers
    ({"year": True}, False),
    ({"rating": {"$exists": True}}, True),
    ({"missing": {"$exists": False}}, True),
    ({"$and": [{"genre": "drama"}, {"year": 2021}]}, True),
    ({"$and": [{"genre": "drama"}, {"year": 1999}]}, False),
    ({"$or": [{"genre": "comedy"}, {"year": 2021}]}, True),
    ({"$or": [{"genre": "comedy"}, {"$and": [{"year": 2021}, {"draft": True}]}]}, False),
    ({"genre": "drama", "year": {"$lt": 2000}}, False),  # several keys: all of them
]


@pytest.mark.parametrize(("filter", "expected"), MEANINGS)
def test_each_operator_means_what_pinecone_documents(filter, expected):
    assert check(filter)(DOC) is expected


FAULTS = [
    ([], "filter", "expected an object"),
    ({}, "filter", "empty filter"),
    ({"year": {"$gt": "2020"}}, "filter.year.$gt", "expected a number"),
    ({"year": {"$between": [1, 2]}}, "filter.year.$between", "unknown operator"),
    ({"year": {}}, "filter.year", "at least one operator"),
    ({"year": {"nested": 1}}, "filter.year.nested", "expected an operator"),
    ({"tags": ["a"]}, "filter.tags", "bare list"),
    ({"tags": {"$in": []}}, "filter.tags.$in", "non-empty list"),
    ({"tags": {"$in": ["a", {"b": 1}]}}, "filter.tags.$in[1]", "expected a string"),
    ({"tags": {"$nin": "a"}}, "filter.tags.$nin", "non-empty list"),
    ({"x": {"$exists": 1}}, "filter.x.$exists", "true or false"),
    ({"x": None}, "filter.x", "expected a string, number or boolean"),
    ({"$and": {"a": 1}}, "filter.$and", "non-empty list"),
    ({"$or": [{"a": 1}, {"b": {"$lt": "z"}}]}, "filter.$or[1].b.$lt", "expected a number"),
    ({"$nor": [{"a": 1}]}, "filter.$nor", "unknown operator"),
    ({"$and": [{"$or": [{"$and": [5]}]}]}, "filter.$and[0].$or[0].$and[0]", "expected an object"),
]


@pytest.mark.parametrize(("filter", "path", "message"), FAULTS)
def test_a_malformed_filter_is_refused_naming_where(filter, path, message):
    with pytest.raises(FilterError) as caught:
        check(filter)
    assert caught.value.path == path
    assert message in caught.value.message


def test_nesting_is_bounded():
    deep: dict = {"a": 1}
    for _ in range(40):
        deep = {"$and": [deep]}
    with pytest.raises(FilterError, match="nested deeper"):
        check(deep)


# --- properties -------------------------------------------------------------------------------------

FIELDS = ["a", "b", "c"]
scalars = st.one_of(
    st.sampled_from(["x", "y", "z"]), st.integers(-3, 3), st.floats(-3, 3, allow_nan=False), st.booleans()
)
metadata = st.dictionaries(
    st.sampled_from(FIELDS), st.one_of(scalars, st.lists(st.sampled_from(["x", "y", "z"]), max_size=3)), max_size=3
)
numbers = st.one_of(st.integers(-3, 3), st.floats(-3, 3, allow_nan=False))
conditions = st.one_of(
    scalars,
    st.builds(lambda op, v: {op: v}, st.sampled_from(["$eq", "$ne"]), scalars),
    st.builds(lambda op, v: {op: v}, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), numbers),
    st.builds(lambda op, v: {op: v}, st.sampled_from(["$in", "$nin"]), st.lists(scalars, min_size=1, max_size=3)),
    st.builds(lambda v: {"$exists": v}, st.booleans()),
)
leaves = st.builds(lambda f, c: {f: c}, st.sampled_from(FIELDS), conditions)
filters = st.recursive(
    leaves,
    lambda inner: st.builds(lambda op, parts: {op: parts}, st.sampled_from(["$and", "$or"]), st.lists(inner, min_size=1, max_size=3)),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(filters, metadata)
def test_and_or_combine_their_parts_as_all_and_any(filter, doc):
    key, value = next(iter(filter.items()))
    if key in ("$and", "$or"):
        parts = [check(part)(doc) for part in value]
        assert check(filter)(doc) is (all(parts) if key == "$and" else any(parts))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIELDS), st.lists(scalars, min_size=1, max_size=4), metadata)
def test_in_is_an_or_of_eq_and_nin_is_its_negation(field, options, doc):
    as_in = check({field: {"$in": options}})(doc)
    assert as_in is check({"$or": [{field: {"$eq": o}} for o in options]})(doc)
    assert check({field: {"$nin": options}})(doc) is (not as_in)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIELDS), scalars, metadata)
def test_ne_is_the_negation_of_eq(field, value, doc):
    assert check({field: {"$ne": value}})(doc) is (not check({field: value})(doc))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIELDS), numbers, metadata)
def test_comparisons_split_the_numbers_and_skip_everything_else(field, bound, doc):
    gt, lte = check({field: {"$gt": bound}})(doc), check({field: {"$lte": bound}})(doc)
    value = doc.get(field)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        assert gt is (not lte)
        assert gt is (value > bound)
    else:
        assert not gt and not lte


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(json_values, metadata)
def test_any_json_is_either_a_working_filter_or_a_filter_error(raw, doc):
    try:
        predicate = check(raw)
    except FilterError as exc:
        assert exc.path.startswith("filter")
        return
    assert predicate(doc) in (True, False)
