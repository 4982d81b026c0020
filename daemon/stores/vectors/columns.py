"""Metadata in columns, so that a filter is a few numpy operations over arrays, not a Python call per vector.

One `Columns` per namespace, its rows aligned with the namespace's slots. Per metadata field:
  present   bool per row: the field is set;
  code      int32 per row: the code of a scalar value (string, boolean or number; -1 when none), codes
            given out by a dictionary of typed values, so "1", 1 and True never share one (the filter
            language's rule: True is not 1) while 1 and 1.0 do;
  number    float64 per row: the value when it is a number (not a boolean), NaN otherwise, for ranges;
            None until the field holds a number (8 MB at a million rows of a field of strings);
  members   per string that occurs inside a list value, a bool column of the rows whose list holds it.
A filter already checked by filters.check compiles to masks over these: `$eq` one comparison of the code
column (or a member column), ranges one comparison of the number column, `$and`/`$or` `&`/`|`.

Numbers compare as float64, which is what JSON numbers are to nearly every client; integers beyond
2^53 in metadata lose their last bits in range comparisons (equality uses the exact value).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from daemon.stores.vectors.arena import close_up, grown


def _typed(value: Any) -> tuple[str, Any]:
    """The dictionary key of a scalar: booleans, strings and numbers never equal one another."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, str):
        return ("s", value)
    return ("n", value)


class _Field:
    def __init__(self, capacity: int) -> None:
        self.present = np.zeros(capacity, dtype=bool)
        self.code = np.full(capacity, -1, dtype=np.int32)
        self.number: np.ndarray | None = None
        self.members: dict[int, np.ndarray] = {}

    def grow(self, capacity: int) -> None:
        self.present = grown(self.present, capacity, fill=False)
        self.code = grown(self.code, capacity, fill=-1)
        if self.number is not None:
            self.number = grown(self.number, capacity, fill=np.nan)
        for key, column in self.members.items():
            self.members[key] = grown(column, capacity, fill=False)

    def keep(self, kept: np.ndarray, n: int) -> None:
        """Keep only these of the first n rows (ascending), closed up in their order; the rest left empty."""
        columns = [(self.present, False), (self.code, -1), *((column, False) for column in self.members.values())]
        if self.number is not None:
            columns.append((self.number, np.nan))
        for column, empty in columns:
            close_up(column, kept, n, fill=empty)


class Columns:
    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity
        self.fields: dict[str, _Field] = {}
        self.codes: dict[tuple[str, Any], int] = {}

    def _code(self, value: Any) -> int:
        key = _typed(value)
        code = self.codes.get(key)
        if code is None:
            code = self.codes[key] = len(self.codes)
        return code

    def grow(self, capacity: int) -> None:
        if capacity > self.capacity:
            for field in self.fields.values():
                field.grow(capacity)
            self.capacity = capacity

    def _field(self, name: str) -> _Field:
        field = self.fields.get(name)
        if field is None:
            field = self.fields[name] = _Field(self.capacity)
        return field

    def set_many(self, rows: list[int], metadata: list[Mapping[str, Any] | None]) -> None:
        """Write rows that are empty (new, or cleared first): the values are gathered per field and written
        with one numpy assignment each, not one per value."""
        scalars: dict[str, tuple[list[int], list[int], list[int], list[float]]] = {}
        for row, fields in zip(rows, metadata):
            for name, value in (fields or {}).items():
                if isinstance(value, list):
                    field = self._field(name)
                    field.present[row] = True
                    for item in value:
                        code = self._code(item)
                        column = field.members.get(code)
                        if column is None:
                            column = field.members[code] = np.zeros(self.capacity, dtype=bool)
                        column[row] = True
                    continue
                found = scalars.get(name)
                if found is None:
                    found = scalars[name] = ([], [], [], [])
                found[0].append(row)
                found[1].append(self._code(value))
                if not isinstance(value, (bool, str)):
                    found[2].append(row)
                    found[3].append(value)
        for name, (where, codes, number_rows, numbers) in scalars.items():
            field = self._field(name)
            field.present[where] = True
            field.code[where] = codes
            if number_rows:
                if field.number is None:
                    field.number = np.full(len(field.present), np.nan)
                field.number[number_rows] = numbers

    def clear(self, row: int, metadata: Mapping[str, Any] | None) -> None:
        """Empty a row that holds `metadata`."""
        for name, value in (metadata or {}).items():
            field = self.fields[name]
            field.present[row] = False
            field.code[row] = -1
            if field.number is not None:
                field.number[row] = np.nan
            if isinstance(value, list):
                for item in value:
                    field.members[self.codes[_typed(item)]][row] = False

    def keep(self, kept: np.ndarray, n: int) -> None:
        """Keep only these of the first n rows (ascending), closed up in their order (a bulk removal)."""
        for field in self.fields.values():
            field.keep(kept, n)

    def saved(self, n: int) -> dict[str, np.ndarray]:
        """The first n rows' columns and the dictionary of codes, as arrays restored() takes back."""
        layout = {
            "fields": list(self.fields),
            "codes": [[kind, value, code] for (kind, value), code in self.codes.items()],
            "members": [list(field.members) for field in self.fields.values()],
        }
        arrays = {"layout": np.frombuffer(json.dumps(layout).encode(), dtype=np.uint8)}
        for i, field in enumerate(self.fields.values()):
            arrays |= {f"{i}.present": field.present[:n], f"{i}.code": field.code[:n]}
            if field.number is not None:
                arrays[f"{i}.number"] = field.number[:n]
            arrays |= {f"{i}.member.{code}": column[:n] for code, column in field.members.items()}
        return arrays

    @classmethod
    def restored(cls, arrays: Mapping[str, np.ndarray], n: int) -> Columns:
        layout = json.loads(arrays["layout"].tobytes())
        columns = cls(n)
        columns.codes = {(kind, value): code for kind, value, code in layout["codes"]}
        for i, (name, members) in enumerate(zip(layout["fields"], layout["members"])):
            field = columns.fields[name] = _Field(0)
            field.present, field.code = arrays[f"{i}.present"], arrays[f"{i}.code"]
            field.number = arrays.get(f"{i}.number")
            field.members = {code: arrays[f"{i}.member.{code}"] for code in members}
        return columns

    # --- filters ---------------------------------------------------------------------------------------

    def mask(self, filter: Mapping[str, Any], n: int) -> np.ndarray:
        """The rows (of the first n) a checked filter passes. Each part's mask is combined into the first,
        rather than into a mask of all rows: two passes over n fewer (a few percent of a filtered query)."""
        result = None
        for found in self._parts(filter, n):
            if result is None:
                result = found
            else:
                result &= found
        return np.ones(n, dtype=bool) if result is None else result

    def _parts(self, filter: Mapping[str, Any], n: int) -> Iterator[np.ndarray]:
        """A fresh mask for each condition of the filter, which passes the rows where all of them do."""
        for key, value in filter.items():
            if key == "$and":
                for part in value:
                    yield self.mask(part, n)
            elif key == "$or":
                either = self.mask(value[0], n)
                for part in value[1:]:
                    either |= self.mask(part, n)
                yield either
            elif isinstance(value, dict):
                for op, arg in value.items():
                    yield self._condition(key, op, arg, n)
            else:
                yield self._equal(key, value, n)

    def _equal(self, name: str, value: Any, n: int) -> np.ndarray:
        field = self.fields.get(name)
        code = self.codes.get(_typed(value))
        if field is None or code is None:
            return np.zeros(n, dtype=bool)
        found = field.code[:n] == code
        members = field.members.get(code)
        if members is not None:
            found |= members[:n]
        return found

    def _condition(self, name: str, op: str, arg: Any, n: int) -> np.ndarray:
        if op == "$eq":
            return self._equal(name, arg, n)
        if op == "$ne":
            return ~self._equal(name, arg, n)
        if op in ("$in", "$nin"):
            found = np.zeros(n, dtype=bool)
            for option in arg:
                found |= self._equal(name, option, n)
            return found if op == "$in" else ~found
        field = self.fields.get(name)
        if op == "$exists":
            present = field.present[:n].copy() if field is not None else np.zeros(n, dtype=bool)
            return present if arg else ~present
        if field is None or field.number is None:
            return np.zeros(n, dtype=bool)
        numbers = field.number[:n]
        # NaN (no number there) compares False, as the language wants: ranges match numbers only.
        if op == "$gt":
            return numbers > arg
        if op == "$gte":
            return numbers >= arg
        if op == "$lt":
            return numbers < arg
        return numbers <= arg
