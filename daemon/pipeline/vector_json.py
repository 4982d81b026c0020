"""The upsert route's JSON decoder: each vector's `values` straight from the text into numpy.

With orjson, 1,000 vectors of 384 JSON numbers (7.6 MB) cost 29-60 ms to parse, most of it making 384,000
Python floats, and another 10-30 ms to check their types and turn them into one float32 matrix: over half
of such a request. simdjson parses the document without making them, and hands a homogeneous array of
numbers over as one buffer of doubles: 12 ms to parse, 4 ms for the buffers (measured on this machine).

Only that is different. Everything else comes out as orjson would give it, and the service still checks
the values (dimension, finite, float32) with numpy, naming the field of each fault. An array that is not all
numbers (a string, `true`, a nested list) comes out as a list, as before, so the same checks name it. A body
simdjson refuses, or one it would read differently from orjson (a repeated key: orjson keeps the last),
is decoded by orjson, so malformed JSON gets the same 400 as on every route.
"""

from __future__ import annotations

from typing import Any

import orjson
import simdjson


def _plain(value: Any) -> Any:
    kind = type(value)  # not isinstance: these types have no subclasses, and this runs for each value
    if kind is simdjson.Object:
        return value.as_dict()
    if kind is simdjson.Array:
        return value.as_list()
    return value


class _Ambiguous(Exception):
    """A key twice in one object: orjson keeps the last, simdjson's look-up the first."""


def _object(found: simdjson.Object, fields: dict[str, Any]) -> dict[str, Any]:
    """The object as a dict, each of `fields` read by its own function. A loop rather than a comprehension
    over a list and a set of the keys: this runs a thousand times a request (7.9 against 9.3 ms)."""
    read: dict[str, Any] = {}
    keys = 0
    for key in found.keys():
        keys += 1
        read[key] = fields.get(key, _plain)(found[key])
    if len(read) != keys:
        raise _Ambiguous
    return read


def _values(found: Any) -> Any:
    import numpy as np  # here, not at the top: a daemon serving no vectors does not load numpy

    if type(found) is simdjson.Array:
        try:
            # float64: every JSON number simdjson takes (integers too) as a double; float32 comes later,
            # in the service, where an overflow becomes infinity and is refused with the field named.
            values = np.frombuffer(found.as_buffer(of_type="d"), dtype=np.float64)
        except (TypeError, ValueError):  # not numbers only: the list, for the service to name what is wrong
            pass
        else:
            if len(values) == len(found):  # as_buffer flattens nested arrays: [[1, 0, 0]] is no vector
                return values  # ...nor is [[1], [0], [0]], which decode_upsert catches
    return _plain(found)


_VECTOR = {"values": _values}


def _vector(found: Any) -> Any:
    return _object(found, _VECTOR) if type(found) is simdjson.Object else _plain(found)


def _vectors(found: Any) -> Any:
    return [_vector(item) for item in found] if isinstance(found, simdjson.Array) else _plain(found)


def decode_upsert(raw: bytes | bytearray) -> Any:
    """The body as orjson.loads gives it, but with each vector's `values` a float64 array when it holds
    numbers only. Raises orjson.JSONDecodeError where orjson would."""
    raw = bytes(raw)
    # as_buffer also flattens an array of arrays ([[1], [0], [0]] to [1, 0, 0]). Each array of values taken
    # is flat if the body has no more '[' than `found` written with each such array as []: a '[' inside a
    # string is in both, except where the body escapes it (\u005b), so a body with escapes goes to orjson
    # at once, before simdjson spends a parse on it. About 1 ms for 7.6 MB.
    brackets = _brackets(raw)
    if brackets is not None:
        try:
            document = _parse(raw)
            if isinstance(document, simdjson.Object):
                found = _object(document, {"vectors": _vectors})
                if brackets == orjson.dumps(found, default=_as_empty).count(b"["):
                    return found
        except (ValueError, RuntimeError, UnicodeDecodeError, _Ambiguous):
            pass  # orjson decides: its error, or its reading
    return orjson.loads(raw)


_parser = simdjson.Parser()


def _parse(raw: bytes) -> Any:
    """simdjson's document of `raw`, from a parser kept between requests: a new one allocates its buffers for
    every body (22 against 15 ms for 1,000 vectors of 384). It keeps them sized for the largest body so far
    (several times its bytes, under max_upsert_bytes). A parser refuses to parse while objects of its last
    document live (an exception's frames may hold one): then a new one takes its place."""
    global _parser
    try:
        return _parser.parse(raw)
    except RuntimeError:
        _parser = simdjson.Parser()
        return _parser.parse(raw)


def _brackets(raw: bytes) -> int | None:
    """The '[' in `raw`, or None where it has a \\u escape (or what may be one: a backslash, then u)."""
    import numpy as np

    # numpy: a quarter of bytes.count's time, a tenth of `b"\\u" in raw`'s (0.5 against 6 ms for 7.6 MB).
    text = np.frombuffer(raw, dtype=np.uint8)
    backslashes = np.flatnonzero(text[:-1] == ord("\\"))
    if len(backslashes) and (text[backslashes + 1] == ord("u")).any():
        return None
    return int(np.count_nonzero(text == ord("[")))


def _as_empty(value: Any) -> list:
    return []  # an array of values (orjson writes no numpy array unless asked to)
