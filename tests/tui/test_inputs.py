"""What an operator types or points at as a vector: accepted as numbers, or refused in one line naming why."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from shared.models.vectors import CollectionCreate, Metric, Precision
from tui.inputs import METRICS, PRECISIONS, InputError, parse_vector, read_vector


def test_a_collections_choices_are_the_apis_with_its_defaults_first() -> None:
    # Written out in tui/inputs.py so the console starts without loading pydantic's models; they must not drift.
    assert (set(METRICS), set(PRECISIONS)) == (set(get_args(Metric)), set(get_args(Precision)))
    defaults = CollectionCreate.model_fields
    assert (METRICS[0], PRECISIONS[0]) == (defaults["metric"].default, defaults["precision"].default)


@pytest.mark.parametrize(("text", "values"), [
    ("1,0,0", [1.0, 0.0, 0.0]), ("1 0 0", [1.0, 0.0, 0.0]), (" 0.5, -2 ,3e-1 ", [0.5, -2.0, 0.3]),
    ("[1, 0.25]", [1.0, 0.25]),
])
def test_a_typed_vector_is_read_as_people_type_it(text: str, values: list[float]) -> None:
    assert parse_vector(text, "--vector") == values


@pytest.mark.parametrize(("text", "message"), [
    ("", "--vector is empty"), ("[]", "--vector is empty"), ("1,x", "--vector: 'x' is not a number"),
    ("[true, false]", "--vector holds true, which is not a number"),
    ('["1"]', '--vector holds "1", which is not a number'),
    ("[[1, 2]]", "--vector holds [1, 2], which is not a number"),
    ('{"values": [1]}', "--vector: '{\"values\":' is not a number"),
    ("1,inf", "--vector holds a value that is not a finite number"),
    ("[1, NaN]", "--vector holds a value that is not a finite number"),
])
def test_a_typed_vector_that_is_not_numbers_is_named(text: str, message: str) -> None:
    with pytest.raises(InputError, match="^" + re.escape(message)):
        parse_vector(text, "--vector")


@pytest.mark.parametrize(("content", "values"), [
    ("[1, 0, 2.5]", [1.0, 0.0, 2.5]), ('{"id": "a", "values": [0, 1]}', [0.0, 1.0]),
])
def test_a_vector_file_holds_a_list_or_a_jsonl_line(tmp_path: Path, content: str, values: list[float]) -> None:
    (tmp_path / "q.json").write_text(content)
    assert read_vector(tmp_path / "q.json") == values


@pytest.mark.parametrize(("content", "message"), [
    ("[1, false]", "holds false, which is not a number"), ("[1, null]", "holds null, which is not a number"),
    ("[1, NaN]", "not a finite number"), ("[]", "is empty"),
    ('{"id": "a"}', "holds no vector"), ('"0.1,0.2"', "holds no vector"), ("[1,", "is not JSON"),
])
def test_a_vector_file_of_something_else_is_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "q.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as refused:
        read_vector(path)
    assert str(path) in str(refused.value)
