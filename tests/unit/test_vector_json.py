"""The upsert route's decoder (daemon/pipeline/vector_json.py): orjson's reading of every body, except that a
vector's `values` of numbers only come out as one float64 array; properties with hypothesis."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.pipeline import vector_json
from daemon.pipeline.vector_json import decode_upsert


def as_lists(value):
    """What the decoder gave, with its arrays as lists of floats (orjson's reading, up to int -> float)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: as_lists(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_lists(v) for v in value]
    return value


def numbers_as_floats(value, inside_values=False):
    if inside_values and isinstance(value, list) and all(type(v) in (int, float) for v in value):
        return [float(v) for v in value]
    if isinstance(value, dict):
        return {k: numbers_as_floats(v, k == "values") for k, v in value.items()}
    if isinstance(value, list):
        return [numbers_as_floats(v) for v in value]
    return value


def test_values_of_numbers_only_come_out_as_one_float64_array():
    raw = b'{"vectors": [{"id": "a", "values": [1, -0.5, 2.5e-3, 0], "metadata": {"n": 1, "xs": ["a"]}}], "namespace": "n"}'
    found = decode_upsert(raw)
    values = found["vectors"][0]["values"]
    assert isinstance(values, np.ndarray) and values.dtype == np.float64
    assert values.tolist() == [1.0, -0.5, 2.5e-3, 0.0]
    assert found["vectors"][0]["metadata"] == {"n": 1, "xs": ["a"]} and found["namespace"] == "n"


@pytest.mark.parametrize("values", [
    '[1, "2", 0]', "[1, true, 0]", "[1, null, 0]", "[[1, 0, 0]]", '[1, {"x": 1}, 0]', '"1,0,0"', "null", "{}",
    "[[1], [0], [0]]", "[[], [1, 2], 3]", "[[2], 1, 3]",  # as many numbers as elements, but nested
])
def test_values_that_are_not_numbers_only_come_out_as_orjson_reads_them(values):
    raw = ('{"vectors": [{"id": "a", "values": %s}]}' % values).encode()
    assert decode_upsert(raw) == orjson.loads(raw)


def test_the_kept_parser_gives_arrays_of_their_own_and_makes_way_when_its_document_lives():
    first = decode_upsert(b'{"vectors": [{"id": "a", "values": [1, 2, 3]}]}')
    # The parser is kept between bodies: what it gave for the first must not change with the second.
    second = decode_upsert(b'{"vectors": [{"id": "b", "values": [7, 8, 9, 10]}]}')
    assert first["vectors"][0]["values"].tolist() == [1.0, 2.0, 3.0]
    assert second["vectors"][0]["values"].tolist() == [7.0, 8.0, 9.0, 10.0]
    # An object of its last document still alive (as an exception's frame may hold one): it refuses to
    # parse again, and a new parser takes over rather than every body falling back to orjson.
    alive = vector_json._parser.parse(b'{"x": [1]}')["x"]
    kept = vector_json._parser
    third = decode_upsert(b'{"vectors": [{"id": "c", "values": [4, 5]}]}')
    assert isinstance(third["vectors"][0]["values"], np.ndarray) and vector_json._parser is not kept
    assert alive.as_list() == [1]


def test_an_empty_array_is_an_empty_array():
    assert decode_upsert(b'{"vectors": [{"id": "a", "values": []}]}')["vectors"][0]["values"].tolist() == []


@pytest.mark.parametrize("raw", [
    b'{"vectors": [{"id": "a", "id": "b", "values": [1]}]}',  # orjson keeps the last
    b'{"vectors": [], "vectors": [{"id": "b", "values": [1]}]}',
    b"[1, 2]", b'"text"', b"3",
    b'{"vectors": [{"id": "a", "values": [123456789012345678901234567890]}]}',  # beyond 64 bits
    # as many escaped '[' in a string as '[' nested in the values: the escape sends it to orjson
    b'{"vectors": [{"id": "\\u005b\\u005b", "values": [[1], [0]]}]}',
    b'{"vectors": [{"id": "[[", "values": [1, 0]}]}',
])
def test_bodies_simdjson_would_read_otherwise_are_read_by_orjson(raw):
    assert as_lists(decode_upsert(raw)) == numbers_as_floats(orjson.loads(raw))


@pytest.mark.parametrize("raw", [
    b"", b"  ", b"{", b'{"vectors": [1, 2}', b"[NaN]", b'{"vectors": [{"values": [1e400]}]}', b'"\xff"',
    b'{"a": 1} x', b"[" * 2000 + b"]" * 2000,
])
def test_malformed_bodies_raise_orjsons_error(raw):
    with pytest.raises(orjson.JSONDecodeError):
        decode_upsert(raw)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
                           max_leaves=12)
number_lists = st.lists(st.one_of(st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False)), max_size=8)
vectors = st.lists(st.fixed_dictionaries({"id": st.text(max_size=4)}, optional={
    "values": st.one_of(number_lists, json_values), "metadata": json_values, "text": st.text(max_size=4)}), max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({"vectors": st.one_of(vectors, json_values)}, optional={"namespace": json_values}))
def test_any_body_reads_as_orjson_reads_it(body):
    raw = orjson.dumps(body)
    assert as_lists(decode_upsert(raw)) == numbers_as_floats(orjson.loads(raw))
