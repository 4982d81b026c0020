"""Pinecone's metadata filter language: checked once, compiled to a predicate over a metadata dict.

    {"genre": "drama"}                          a bare value means $eq
    {"year": {"$gte": 2020, "$lt": 2025}}       several operators on one field all apply
    {"$or": [{"genre": "drama"}, {"tags": {"$in": ["a", "b"]}}]}

Semantics, as Pinecone documents them: a field that is a list of strings matches $eq / $in when any
element does, and $ne / $nin when none does; a field that is missing matches only $ne, $nin and
`$exists: false`; $gt/$gte/$lt/$lte compare numbers only; booleans are not numbers (True != 1).
`check` raises FilterError naming the path to the first wrong part, e.g. `filter.$and[1].year.$gt`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]

COMPARE = ("$gt", "$gte", "$lt", "$lte")
OPERATORS = ("$eq", "$ne", *COMPARE, "$in", "$nin", "$exists")
MAX_DEPTH = 16


class FilterError(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, bool)) or _is_number(value)


def _same(a: Any, b: Any) -> bool:
    # Python says True == 1; the filter language does not.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return a == b


def _any_equal(stored: Any, wanted: Any) -> bool:
    if isinstance(stored, list):
        return any(_same(item, wanted) for item in stored)
    return _same(stored, wanted)


_MISSING = object()


def _operator(field: str, op: str, arg: Any, path: str) -> Predicate:
    if op in ("$eq", "$ne"):
        if not _is_scalar(arg):
            raise FilterError(path, "expected a string, number or boolean")
        if op == "$eq":
            return lambda m: (v := m.get(field, _MISSING)) is not _MISSING and _any_equal(v, arg)
        return lambda m: (v := m.get(field, _MISSING)) is _MISSING or not _any_equal(v, arg)
    if op in COMPARE:
        if not _is_number(arg):
            raise FilterError(path, "expected a number")
        compare: Callable[[float], bool] = {
            "$gt": lambda v: v > arg,
            "$gte": lambda v: v >= arg,
            "$lt": lambda v: v < arg,
            "$lte": lambda v: v <= arg,
        }[op]
        return lambda m: _is_number(v := m.get(field)) and compare(v)
    if op in ("$in", "$nin"):
        if not isinstance(arg, list) or not arg:
            raise FilterError(path, "expected a non-empty list")
        for i, item in enumerate(arg):
            if not _is_scalar(item):
                raise FilterError(f"{path}[{i}]", "expected a string, number or boolean")
        options = list(arg)

        def hit(m: Mapping[str, Any]) -> bool:
            v = m.get(field, _MISSING)
            return v is not _MISSING and any(_any_equal(v, option) for option in options)

        if op == "$in":
            return hit
        return lambda m: not hit(m)
    if op == "$exists":
        if not isinstance(arg, bool):
            raise FilterError(path, "expected true or false")
        return lambda m: (field in m) == arg
    raise FilterError(path, f"unknown operator; expected one of {', '.join(OPERATORS)}")


def _all(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    return lambda m: all(p(m) for p in predicates)


def _field(field: str, condition: Any, path: str) -> Predicate:
    if isinstance(condition, dict):
        if not condition:
            raise FilterError(path, "expected at least one operator")
        preds = []
        for op, arg in condition.items():
            if not isinstance(op, str) or not op.startswith("$"):
                raise FilterError(f"{path}.{op}", "expected an operator such as $eq (nested fields are not supported)")
            preds.append(_operator(field, op, arg, f"{path}.{op}"))
        return _all(preds)
    if isinstance(condition, list):
        raise FilterError(path, "a bare list is not a condition; use {\"$in\": [...]}")
    return _operator(field, "$eq", condition, path)


def _compile(node: Any, path: str, depth: int) -> Predicate:
    if depth > MAX_DEPTH:
        raise FilterError(path, f"nested deeper than {MAX_DEPTH} levels")
    if not isinstance(node, dict):
        raise FilterError(path, "expected an object")
    preds = []
    for key, value in node.items():
        if key in ("$and", "$or"):
            here = f"{path}.{key}"
            if not isinstance(value, list) or not value:
                raise FilterError(here, "expected a non-empty list of filters")
            parts = [_compile(item, f"{here}[{i}]", depth + 1) for i, item in enumerate(value)]
            if key == "$and":
                preds.append(_all(parts))
            else:
                preds.append(lambda m, parts=parts: any(p(m) for p in parts))
        elif key.startswith("$"):
            raise FilterError(f"{path}.{key}", "unknown operator at this level; expected $and, $or or a field name")
        elif not key:
            raise FilterError(path, "a field name is empty")
        else:
            preds.append(_field(key, value, f"{path}.{key}"))
    if not preds:
        raise FilterError(path, "an empty filter; leave it out to match everything")
    return _all(preds)


def check(filter: Any, path: str = "filter") -> Predicate:
    """The predicate of a filter, or FilterError naming the first wrong part."""
    return _compile(filter, path, 0)
