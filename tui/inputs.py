"""What an operator types or points at, read and checked before it goes to the server (TUI and CLI alike)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


# A collection's choices, as docs/api.md lists them (POST /api/v1/collections); the server's defaults first.
METRICS = ("cosine", "dot", "euclidean")
PRECISIONS = ("bf16", "f16", "f32", "i8")


class InputError(ValueError):
    """Bad input, with a message that names what is wrong and where."""


def read_vector(path: str | Path) -> list[float]:
    """A vector from a file: a JSON list of numbers, or an object with `values` (one JSONL line's shape)."""
    try:
        data = json.loads(Path(path).expanduser().read_text())
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise InputError(f'{path} is not JSON: give a list of numbers or an object with "values"') from None
    if isinstance(data, dict):
        data = data.get("values")
    if not isinstance(data, list):
        raise InputError(f'{path} holds no vector: give a list of numbers or an object with "values"')
    return _finite_numbers(data, f"the vector in {path}")


def parse_vector(text: str, what: str) -> list[float]:
    """A vector typed on a command line: a JSON list, or numbers separated by commas or spaces (`1,0,0`, as
    people type them)."""
    stripped = text.strip()
    if stripped.startswith("["):  # JSON that starts so is a list
        return _finite_numbers(read_json(stripped, what), what)
    values = []
    for part in stripped.replace(",", " ").split():
        try:
            values.append(float(part))
        except ValueError:
            raise InputError(f"{what}: {part!r} is not a number; give numbers like 0.1,0.2,0.3") from None
    return _finite_numbers(values, what)


def _finite_numbers(values: list[Any], what: str) -> list[float]:
    """The one check of a vector's values, from a file or a command line. true and false are not numbers
    here, though Python's bools are ints; NaN and infinity are refused before the server sees them."""
    if not values:
        raise InputError(f"{what} is empty; give numbers like 0.1,0.2,0.3")
    wrong = [v for v in values if type(v) not in (int, float)]
    if wrong:
        raise InputError(f"{what} holds {json.dumps(wrong[0])[:40]}, which is not a number")
    if not all(math.isfinite(v) for v in values):
        raise InputError(f"{what} holds a value that is not a finite number")
    return [float(v) for v in values]


def read_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"{what} is not JSON: {getattr(exc, 'msg', exc)} at column {getattr(exc, 'colno', '?')}") \
            from None


def read_filter(text: str) -> dict[str, Any] | None:
    if not text.strip():
        return None
    value = read_json(text, "the filter")
    if not isinstance(value, dict):
        raise InputError('the filter is a JSON object, like {"genre": {"$eq": "jazz"}}')
    return value
